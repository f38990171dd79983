//! `SessionService`: ADK's session-service semantics on top of [`AdkStore`].

use chrono::{DateTime, Utc};

use super::event::{Event, JsonMap};
use super::record::stored_time;
use super::scopes;
use super::store::{AdkStore, Deltas, Scoped, Version};
use crate::error::Result;
use crate::support::check_id;

pub use super::scopes::TEMP_PREFIX;

/// A conversation as the agent sees it (ADK's `Session`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct AgentSession {
    /// The session's id.
    pub id: String,
    /// The application.
    pub app_name: String,
    /// The user.
    pub user_id: String,
    /// The state, after every appended event's delta.
    pub state: JsonMap,
    /// The events read or appended, in chronological order.
    pub events: Vec<Event>,
    /// The stored update time this copy reflects: appending from an older copy than the
    /// database holds fails with [`Error::StaleSession`](crate::Error::StaleSession).
    pub last_update_time: DateTime<Utc>,
}

impl AgentSession {
    /// The session as the agent sees it: its own state merged with its app's and user's.
    fn from_scoped(scoped: Scoped, events: Vec<Event>) -> AgentSession {
        let Scoped { record, app, user } = scoped;
        let state = match record.state {
            serde_json::Value::Object(map) => map,
            other => {
                tracing::warn!(target: "session_pool::adk", session = %record.id,
                    "stored state is not a JSON object ({other}); reading it as empty");
                JsonMap::new()
            }
        };
        AgentSession {
            id: record.id,
            app_name: record.app_name,
            user_id: record.user_id,
            state: scopes::merge(state, &app, &user),
            events,
            last_update_time: record.update_time,
        }
    }
}

/// Which events [`SessionService::get_session`] loads (ADK's `GetSessionConfig`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use]
#[non_exhaustive]
pub struct GetSessionConfig {
    /// Only this many events (`Some(0)`: none): the newest, as ADK's services keep them,
    /// unless [`keep_oldest`](GetSessionConfig::keep_oldest). `None` loads them all.
    pub num_recent_events: Option<usize>,
    /// Only events at or after this time (inclusive, as in ADK's services; the store's
    /// [`get_events`](super::AdkStore::get_events) keeps the seed's exclusive `>`).
    pub after_timestamp: Option<DateTime<Utc>>,
    /// With `num_recent_events`, keep the oldest events rather than the newest, as SQLSpec
    /// 0.41.1's service does.
    pub keep_oldest: bool,
}

impl GetSessionConfig {
    /// Only the newest `n` events.
    pub fn num_recent_events(mut self, n: usize) -> Self {
        self.num_recent_events = Some(n);
        self
    }

    /// Only events at or after `t`.
    pub fn after_timestamp(mut self, t: DateTime<Utc>) -> Self {
        self.after_timestamp = Some(t);
        self
    }

    /// Keeps the oldest `num_recent_events` events rather than the newest (SQLSpec
    /// 0.41.1's behaviour).
    pub fn keep_oldest(mut self) -> Self {
        self.keep_oldest = true;
        self
    }
}

/// ADK's session service (`SQLSpecSessionService`, `DatabaseSessionService`) over an
/// [`AdkStore`], with ADK's state scopes:
///
/// - `app:` keys are shared by every session of the app, `user:` keys by every session of
///   the user (kept, without their prefix, in the store's app-state and user-state tables,
///   as ADK's `app_states` and `user_states`); the other keys belong to the session;
///   `temp:` keys last the invocation: they are applied to the in-memory state and never
///   stored.
/// - `create_session`, `get_session` and `list_sessions` return the merged state (the
///   session's keys, then `app:` and `user:` keys with their prefixes).
/// - `append_event` ignores partial (streaming) events; otherwise it splits the event's
///   `actions.state_delta` by prefix and writes the event, the session's state and, only
///   when the delta holds such keys, the app's and the user's state, in one atomic step
///   (one statement on PostgreSQL, one transaction on SQLite), as a compare-and-swap on the
///   session's update time: a stale copy gets
///   [`Error::StaleSession`](crate::Error::StaleSession) and changes nothing. App and
///   user keys are merged key by key, so concurrent appends to other sessions keep
///   theirs.
pub struct SessionService {
    store: AdkStore,
}

impl Clone for SessionService {
    fn clone(&self) -> Self {
        SessionService {
            store: self.store.clone(),
        }
    }
}

impl std::fmt::Debug for SessionService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionService")
            .field("store", &self.store)
            .finish()
    }
}

impl SessionService {
    /// A service over `store` (scoped stores give scoped services).
    pub fn new(store: AdkStore) -> Self {
        SessionService { store }
    }

    /// The store underneath.
    pub fn store(&self) -> &AdkStore {
        &self.store
    }

    /// Creates a session with `state` (less its `temp:` keys) and the id given, or a fresh
    /// UUID when `session_id` is `None`.
    pub async fn create_session(
        &self,
        app_name: &str,
        user_id: &str,
        state: Option<JsonMap>,
        session_id: Option<&str>,
    ) -> Result<AgentSession> {
        let id = match session_id {
            Some(id) => id.to_owned(),
            None => uuid::Uuid::new_v4().to_string(),
        };
        let split = scopes::split(&state.unwrap_or_default());
        let scoped = self
            .store
            .create_session_scoped(&id, app_name, user_id, &split)
            .await?;
        Ok(AgentSession::from_scoped(scoped, Vec::new()))
    }

    /// The session with its events (as `config` says), or `None` if there is no such
    /// session for this app and user. Session, app and user state, and events are read in
    /// one statement, so they are one consistent snapshot even while others append.
    pub async fn get_session(
        &self,
        app_name: &str,
        user_id: &str,
        session_id: &str,
        config: &GetSessionConfig,
    ) -> Result<Option<AgentSession>> {
        check_id("app_name", app_name)?;
        check_id("user_id", user_id)?;
        if config.num_recent_events == Some(0) {
            // No events: the session alone.
            let Some(scoped) = self.store.get_session_scoped(session_id).await? else {
                return Ok(None);
            };
            if scoped.record.app_name != app_name || scoped.record.user_id != user_id {
                return Ok(None);
            }
            return Ok(Some(AgentSession::from_scoped(scoped, Vec::new())));
        }
        let read = self
            .store
            .read_session(
                session_id,
                config.after_timestamp,
                config.num_recent_events,
                config.keep_oldest,
            )
            .await?;
        let Some((scoped, events)) = read else {
            return Ok(None);
        };
        if scoped.record.app_name != app_name || scoped.record.user_id != user_id {
            return Ok(None);
        }
        Ok(Some(AgentSession::from_scoped(scoped, events)))
    }

    /// The app's sessions (of one user when `user_id` is given), newest first, without
    /// their events.
    pub async fn list_sessions(
        &self,
        app_name: &str,
        user_id: Option<&str>,
    ) -> Result<Vec<AgentSession>> {
        let sessions = self.store.list_sessions_scoped(app_name, user_id).await?;
        Ok(sessions
            .into_iter()
            .map(|s| AgentSession::from_scoped(s, Vec::new()))
            .collect())
    }

    /// Deletes the session and its events; returns whether it existed for this app and user.
    pub async fn delete_session(
        &self,
        app_name: &str,
        user_id: &str,
        session_id: &str,
    ) -> Result<bool> {
        self.store.delete_for(app_name, user_id, session_id).await
    }

    /// Appends `event` to `session` and returns it as stored.
    ///
    /// A partial event is returned as it is and neither stored nor applied. Otherwise its
    /// state delta is applied to `session.state` (`temp:` keys too), and the event (without
    /// its `temp:` keys), the session's keys, and the `app:` and `user:` keys are written
    /// atomically, provided the database still holds the version `session` was read at;
    /// then `session` is updated in place. On any error, `session` is unchanged.
    pub async fn append_event(
        &self,
        session: &mut AgentSession,
        mut event: Event,
    ) -> Result<Event> {
        if event.partial == Some(true) {
            return Ok(event);
        }
        let delta = std::mem::take(&mut event.actions.state_delta);
        let split = scopes::split(&delta);
        let deltas = Deltas::of(&split);
        // The session's stored keys with the delta's over them; `session` itself changes
        // only once the write succeeded.
        let mut stored = scopes::session_part(&session.state);
        stored.extend(split.session);
        let stored_state = serde_json::Value::Object(stored);
        event.actions.state_delta = without_temp(&delta);
        // The content moves into the record for the write and back after it, rather than
        // being copied (its JSON tree is most of an event; on an error the event is dropped).
        let content = event.content.take();
        let mut record = event.to_record_with(
            self.store.actions_codec(),
            &session.app_name,
            &session.user_id,
            &session.id,
        )?;
        record.content = content;
        let (Version(version), postgres) = self
            .store
            .append_and_update::<Version>(
                &record,
                &stored_state,
                Some(session.last_update_time),
                &deltas,
            )
            .await?;
        event.content = record.content.take();
        event.timestamp = stored_time(event.timestamp, postgres);
        // In memory, every key applies, `temp:` ones included.
        session.state.extend(delta);
        session.last_update_time = version;
        session.events.push(event.clone());
        Ok(event)
    }
}

fn without_temp(map: &JsonMap) -> JsonMap {
    map.iter()
        .filter(|(k, _)| !k.starts_with(TEMP_PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

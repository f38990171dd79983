//! `SessionService`: ADK's session-service semantics on top of [`AdkStore`].

use chrono::{DateTime, Utc};

use super::event::{Event, JsonMap};
use super::record::{SessionRecord, stored_time};
use super::store::AdkStore;
use crate::error::Result;
use crate::support::check_id;

/// State keys with this prefix live only for one invocation and are never stored.
pub const TEMP_PREFIX: &str = "temp:";

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
    fn from_record(record: SessionRecord, events: Vec<Event>) -> AgentSession {
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
            state,
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
    /// Only the newest this many events (`Some(0)`: none). `None` loads them all.
    pub num_recent_events: Option<usize>,
    /// Only events after this time.
    pub after_timestamp: Option<DateTime<Utc>>,
}

impl GetSessionConfig {
    /// Only the newest `n` events.
    pub fn num_recent_events(mut self, n: usize) -> Self {
        self.num_recent_events = Some(n);
        self
    }

    /// Only events after `t`.
    pub fn after_timestamp(mut self, t: DateTime<Utc>) -> Self {
        self.after_timestamp = Some(t);
        self
    }
}

/// ADK's session service (`SQLSpecSessionService`) over an [`AdkStore`].
///
/// - `append_event` ignores partial (streaming) events, merges the event's
///   `actions.state_delta` into the session state, drops `temp:` keys from what is stored,
///   and saves the event and the new state in one atomic step, as a compare-and-swap on
///   the session's update time: a stale copy gets
///   [`Error::StaleSession`](crate::Error::StaleSession) and changes
///   nothing.
/// - `app:` and `user:` keys are kept in the session's own state: the seed's schema has
///   no app-wide or user-wide state tables.
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
        let state = serde_json::Value::Object(without_temp(state.unwrap_or_default()));
        let record = self
            .store
            .create_session(&id, app_name, user_id, &state, None)
            .await?;
        Ok(AgentSession::from_record(record, Vec::new()))
    }

    /// The session with its events (as `config` says), or `None` if there is no such
    /// session for this app and user.
    pub async fn get_session(
        &self,
        app_name: &str,
        user_id: &str,
        session_id: &str,
        config: &GetSessionConfig,
    ) -> Result<Option<AgentSession>> {
        check_id("app_name", app_name)?;
        check_id("user_id", user_id)?;
        let Some(record) = self.store.get_session(session_id).await? else {
            return Ok(None);
        };
        if record.app_name != app_name || record.user_id != user_id {
            return Ok(None);
        }
        let events = self
            .store
            .get_events(session_id, config.after_timestamp, config.num_recent_events)
            .await?
            .into_iter()
            .map(Event::from_record)
            .collect();
        Ok(Some(AgentSession::from_record(record, events)))
    }

    /// The app's sessions (of one user when `user_id` is given), newest first, without
    /// their events.
    pub async fn list_sessions(
        &self,
        app_name: &str,
        user_id: Option<&str>,
    ) -> Result<Vec<AgentSession>> {
        let records = self.store.list_sessions(app_name, user_id).await?;
        Ok(records
            .into_iter()
            .map(|r| AgentSession::from_record(r, Vec::new()))
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
    /// A partial event is returned as it is and neither stored nor applied. Otherwise the
    /// `temp:` keys are removed from its state delta, the delta is merged into the state,
    /// and event and state are written atomically, provided the database still holds the
    /// version `session` was read at; then `session` is updated in place. On any error,
    /// `session` is unchanged.
    pub async fn append_event(
        &self,
        session: &mut AgentSession,
        mut event: Event,
    ) -> Result<Event> {
        if event.partial == Some(true) {
            return Ok(event);
        }
        event.actions.state_delta = without_temp(std::mem::take(&mut event.actions.state_delta));
        let mut state = session.state.clone();
        for (key, value) in &event.actions.state_delta {
            state.insert(key.clone(), value.clone());
        }
        let state = serde_json::Value::Object(state);
        let record = event.to_record(&session.app_name, &session.user_id, &session.id)?;
        let (stored, postgres) = self
            .store
            .append_and_update(&record, &state, Some(session.last_update_time))
            .await?;
        event.timestamp = stored_time(event.timestamp, postgres);
        if let serde_json::Value::Object(state) = state {
            session.state = state;
        }
        session.last_update_time = stored.update_time;
        session.events.push(event.clone());
        Ok(event)
    }
}

fn without_temp(mut map: JsonMap) -> JsonMap {
    map.retain(|k, _| !k.starts_with(TEMP_PREFIX));
    map
}

//! `SessionService`: ADK's session-service semantics on top of [`AdkStore`].

use chrono::{DateTime, Utc};

use super::database::{DatabaseSessionTables, Loaded};
use super::event::{Event, JsonMap};
use super::record::{stored_time, truncate_micros};
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

    /// The session as the agent sees it, from ADK's `DatabaseSessionService` tables.
    fn from_loaded(app_name: &str, loaded: Loaded) -> AgentSession {
        let Loaded {
            id,
            user_id,
            state,
            app,
            user,
            update_time,
            events,
        } = loaded;
        AgentSession {
            id,
            app_name: app_name.to_owned(),
            user_id,
            state: scopes::merge(state, &app, &user),
            events,
            last_update_time: update_time,
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
/// [`AdkStore`] ([`new`](SessionService::new)) or over the tables of google-adk's own
/// `DatabaseSessionService` ([`on_tables`](SessionService::on_tables)), with ADK's state
/// scopes:
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
///
/// On [`DatabaseSessionTables`] the behaviour is Python's `DatabaseSessionService`'s where
/// the two differ: `list_sessions` is oldest update first, and an event's append sets the
/// session's update time to the event's timestamp.
#[derive(Clone)]
pub struct SessionService {
    backend: Backend,
}

/// Where a service keeps sessions.
#[derive(Clone)]
enum Backend {
    /// The seed's (or SQLSpec's) tables.
    Store(AdkStore),
    /// google-adk's `DatabaseSessionService` tables.
    Tables(DatabaseSessionTables),
}

impl std::fmt::Debug for SessionService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("SessionService");
        match &self.backend {
            Backend::Store(store) => d.field("store", store),
            Backend::Tables(tables) => d.field("tables", tables),
        };
        d.finish()
    }
}

impl SessionService {
    /// A service over `store` (scoped stores give scoped services).
    pub fn new(store: AdkStore) -> Self {
        SessionService {
            backend: Backend::Store(store),
        }
    }

    /// A service over the tables of google-adk's `DatabaseSessionService`, shared with
    /// Python ADK apps using it (see [`DatabaseSessionTables`]).
    pub fn on_tables(tables: DatabaseSessionTables) -> Self {
        SessionService {
            backend: Backend::Tables(tables),
        }
    }

    /// The store underneath; `None` for a service [`on_tables`](SessionService::on_tables).
    pub fn store(&self) -> Option<&AdkStore> {
        match &self.backend {
            Backend::Store(store) => Some(store),
            Backend::Tables(_) => None,
        }
    }

    /// The pool sessions are kept through.
    pub fn pool(&self) -> &crate::pool::SharedPool {
        match &self.backend {
            Backend::Store(store) => store.pool(),
            Backend::Tables(tables) => tables.pool(),
        }
    }

    /// Creates a session with `state` (less its `temp:` keys) and the id given, or a fresh
    /// UUID when `session_id` is `None` or empty (as every ADK session service takes an
    /// empty id: ADK's web server sends one).
    pub async fn create_session(
        &self,
        app_name: &str,
        user_id: &str,
        state: Option<JsonMap>,
        session_id: Option<&str>,
    ) -> Result<AgentSession> {
        let id = match session_id {
            Some(id) if !id.is_empty() => id.to_owned(),
            _ => uuid::Uuid::new_v4().to_string(),
        };
        let split = scopes::split(&state.unwrap_or_default());
        let store = match &self.backend {
            Backend::Store(store) => store,
            Backend::Tables(tables) => {
                let loaded = tables.create(app_name, user_id, &id, &split).await?;
                return Ok(AgentSession::from_loaded(app_name, loaded));
            }
        };
        let scoped = store
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
        let store = match &self.backend {
            Backend::Store(store) => store,
            Backend::Tables(tables) => {
                let loaded = tables
                    .get(
                        app_name,
                        user_id,
                        session_id,
                        config.after_timestamp,
                        config.num_recent_events,
                        config.keep_oldest,
                    )
                    .await?;
                return Ok(loaded.map(|l| AgentSession::from_loaded(app_name, l)));
            }
        };
        if config.num_recent_events == Some(0) {
            // No events: the session alone.
            let Some(scoped) = store.get_session_scoped(session_id).await? else {
                return Ok(None);
            };
            if scoped.record.app_name != app_name || scoped.record.user_id != user_id {
                return Ok(None);
            }
            return Ok(Some(AgentSession::from_scoped(scoped, Vec::new())));
        }
        let read = store
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

    /// The app's sessions (of one user when `user_id` is given), newest first (on
    /// [`DatabaseSessionTables`], oldest first, as ADK's `DatabaseSessionService`), without
    /// their events.
    pub async fn list_sessions(
        &self,
        app_name: &str,
        user_id: Option<&str>,
    ) -> Result<Vec<AgentSession>> {
        let store = match &self.backend {
            Backend::Store(store) => store,
            Backend::Tables(tables) => {
                let list = tables.list(app_name, user_id).await?;
                return Ok(list
                    .into_iter()
                    .map(|l| AgentSession::from_loaded(app_name, l))
                    .collect());
            }
        };
        let sessions = store.list_sessions_scoped(app_name, user_id).await?;
        Ok(sessions
            .into_iter()
            .map(|s| AgentSession::from_scoped(s, Vec::new()))
            .collect())
    }

    /// The user's state, ADK's `user:` scope shared by the user's sessions, with its keys
    /// as stored (without the prefix), as ADK's `get_user_state`; empty when the user has
    /// none.
    pub async fn get_user_state(&self, app_name: &str, user_id: &str) -> Result<JsonMap> {
        match &self.backend {
            Backend::Store(store) => store.user_state(app_name, user_id).await,
            Backend::Tables(tables) => tables.user_state(app_name, user_id).await,
        }
    }

    /// Deletes the session and its events; returns whether it existed for this app and user.
    pub async fn delete_session(
        &self,
        app_name: &str,
        user_id: &str,
        session_id: &str,
    ) -> Result<bool> {
        match &self.backend {
            Backend::Store(store) => store.delete_for(app_name, user_id, session_id).await,
            Backend::Tables(tables) => tables.delete(app_name, user_id, session_id).await,
        }
    }

    /// The session with this id (of `owner`'s app and user when given) without its events,
    /// for an append by id: ADK-Rust names a session by id alone. Its state holds at least
    /// the session's own keys, all an append needs.
    #[cfg(feature = "adk-rust")]
    pub(crate) async fn current(
        &self,
        session_id: &str,
        owner: Option<(&str, &str)>,
    ) -> Result<Option<AgentSession>> {
        let none = GetSessionConfig::default().num_recent_events(0);
        let (app, user) = match (&self.backend, owner) {
            (_, Some(owner)) => owner,
            (Backend::Store(store), None) => {
                let Some(scoped) = store.get_session_scoped(session_id).await? else {
                    return Ok(None);
                };
                return Ok(Some(AgentSession::from_scoped(scoped, Vec::new())));
            }
            (Backend::Tables(tables), None) => {
                // The session's own keys and version, in one statement: the append merges
                // app and user keys into their rows itself.
                let mut found = tables.by_id(session_id).await?;
                if found.len() > 1 {
                    return Err(crate::Error::invalid(format!(
                        "session id `{session_id}` is used by {} apps or users; append with \
                         append_event_for_identity to say which",
                        found.len()
                    )));
                }
                return Ok(found
                    .pop()
                    .map(|(app, loaded)| AgentSession::from_loaded(&app, loaded)));
            }
        };
        self.get_session(app, user, session_id, &none).await
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
        let delta = take_delta(&mut event);
        self.commit_events(session, std::slice::from_mut(&mut event), delta)
            .await?;
        Ok(event)
    }

    /// Appends `events` to `session` in order, all or none (ADK's `append_events`), and
    /// returns them as [`append_event`](SessionService::append_event) returns each.
    ///
    /// The effect on `session` and on the database is that of appending the events one by
    /// one, but in one atomic step: either every event is stored, with every state delta
    /// applied, or (on any error, a stale `session` included) none is and `session` is
    /// unchanged. Partial events are returned as they are and neither stored nor applied.
    /// On PostgreSQL the events take one statement, as one event does (on the store's
    /// tables up to 64 events; more take a transaction); on SQLite one transaction.
    ///
    /// Two events with one id are [`Error::InvalidArgument`](crate::Error::InvalidArgument)
    /// before anything is written (appended one by one, the second would fail).
    pub async fn append_events(
        &self,
        session: &mut AgentSession,
        events: Vec<Event>,
    ) -> Result<Vec<Event>> {
        // Stored events leave their slot for the write and come back to it after.
        let mut slots: Vec<Option<Event>> = Vec::with_capacity(events.len());
        let mut stored = Vec::new();
        let mut delta = JsonMap::new();
        for mut event in events {
            if event.partial == Some(true) {
                slots.push(Some(event));
                continue;
            }
            delta.extend(take_delta(&mut event));
            stored.push(event);
            slots.push(None);
        }
        if stored.is_empty() {
            return Ok(slots.into_iter().flatten().collect());
        }
        check_distinct_ids(&stored)?;
        self.commit_events(session, &mut stored, delta).await?;
        let mut stored = stored.into_iter();
        Ok(slots
            .into_iter()
            .filter_map(|slot| slot.or_else(|| stored.next()))
            .collect())
    }

    /// Stores `events` (their deltas without `temp:` keys already; `delta`, all their
    /// deltas in order, `temp:` keys included) at `session`'s version; then applies them
    /// to `session`. On an error `session` is unchanged.
    async fn commit_events(
        &self,
        session: &mut AgentSession,
        events: &mut [Event],
        delta: JsonMap,
    ) -> Result<()> {
        let version = self.write(session, events, &delta).await?;
        // In memory, every key applies, `temp:` ones included.
        session.state.extend(delta);
        session.last_update_time = version;
        session.events.extend(events.iter().cloned());
        Ok(())
    }

    /// Writes `events` and `delta` as [`commit_events`](SessionService::commit_events)
    /// says; sets each event's stored timestamp and returns the session's new version.
    async fn write(
        &self,
        session: &AgentSession,
        events: &mut [Event],
        delta: &JsonMap,
    ) -> Result<DateTime<Utc>> {
        let split = scopes::split(delta);
        let deltas = Deltas::of(&split);
        let store = match &self.backend {
            Backend::Store(store) => store,
            Backend::Tables(tables) => {
                let version = tables
                    .append(
                        &session.app_name,
                        &session.user_id,
                        &session.id,
                        session.last_update_time,
                        events,
                        &split,
                    )
                    .await?;
                // Each stored at its timestamp to the microsecond.
                for event in events.iter_mut() {
                    event.timestamp = truncate_micros(event.timestamp);
                }
                return Ok(version);
            }
        };
        // The session's stored keys with the deltas over them. On SQLSpec 0.42–0.50's
        // tables, whose service reads the whole state from the row, `app:` and `user:` keys
        // go there too.
        let stored = if store.form_now().await?.state_in_row() {
            let mut all = without_temp(&session.state);
            all.extend(without_temp(delta));
            all
        } else {
            let mut own = scopes::session_part(&session.state);
            own.extend(split.session);
            own
        };
        let stored_state = serde_json::Value::Object(stored);
        let codec = store.actions_codec();
        let (app, user, id) = (&session.app_name, &session.user_id, &session.id);
        if let [event] = events {
            // The content moves into the record for the write and back after it, rather
            // than being copied (its JSON tree is most of an event; on an error the event
            // is dropped).
            let content = event.content.take();
            let mut record = event.to_record_with(codec, app, user, id)?;
            record.content = content;
            let written = store
                .append_and_update::<Version>(
                    &record,
                    &stored_state,
                    Some(session.last_update_time),
                    &deltas,
                )
                .await;
            event.content = record.content.take();
            let (Version(version), postgres) = written?;
            event.timestamp = stored_time(event.timestamp, postgres);
            return Ok(version);
        }
        let mut records = Vec::with_capacity(events.len());
        for event in events.iter() {
            records.push(event.to_record_with(codec, app, user, id)?);
        }
        let (version, postgres) = store
            .append_many(&records, &stored_state, session.last_update_time, &deltas)
            .await?;
        for event in events.iter_mut() {
            event.timestamp = stored_time(event.timestamp, postgres);
        }
        Ok(version)
    }
}

/// Refuses a batch naming one event id twice: appended one by one, the second would fail.
fn check_distinct_ids(events: &[Event]) -> Result<()> {
    if events.len() < 2 {
        return Ok(());
    }
    let mut seen = std::collections::HashSet::with_capacity(events.len());
    for event in events {
        if !seen.insert(event.id.as_str()) {
            return Err(crate::Error::invalid(format!(
                "event id `{}` appears more than once in one append_events call",
                event.id
            )));
        }
    }
    Ok(())
}

/// Takes `event`'s state delta, leaving it without its `temp:` keys (what is stored).
fn take_delta(event: &mut Event) -> JsonMap {
    let delta = std::mem::take(&mut event.actions.state_delta);
    event.actions.state_delta = without_temp(&delta);
    delta
}

fn without_temp(map: &JsonMap) -> JsonMap {
    map.iter()
        .filter(|(k, _)| !k.starts_with(TEMP_PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

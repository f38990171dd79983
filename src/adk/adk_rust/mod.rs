//! `adk_session::SessionService` (ADK-Rust) for this crate's `SessionService`: the trait
//! impl, its sessions, and the event mapping.

mod convert;
mod session;

use async_trait::async_trait;

use adk_core::{AdkError, ErrorCategory, ErrorComponent};
use adk_session::{CreateRequest, DeleteRequest, GetRequest, ListRequest, Session};

use super::service::{AgentSession, GetSessionConfig, SessionService};
use crate::error::{Error, ErrorKind};
use session::AdkRustSession;

/// This crate's error as ADK-Rust's, by category, keeping it as the source.
fn adk_error(e: Error) -> AdkError {
    let (category, code) = match e.kind() {
        ErrorKind::NotFound => (ErrorCategory::NotFound, "session.not_found"),
        ErrorKind::InvalidArgument => (ErrorCategory::InvalidInput, "session.invalid_input"),
        ErrorKind::AlreadyExists => (ErrorCategory::InvalidInput, "session.already_exists"),
        ErrorKind::Unsupported => (ErrorCategory::Unsupported, "session.unsupported"),
        ErrorKind::PoolTimeout | ErrorKind::StatementTimeout | ErrorKind::DeadlineExceeded => {
            (ErrorCategory::Timeout, "session.timeout")
        }
        ErrorKind::PoolClosed
        | ErrorKind::Connect
        | ErrorKind::SessionLost
        | ErrorKind::TooManyConnections
        | ErrorKind::Conflict
        | ErrorKind::Aborted => (ErrorCategory::Unavailable, "session.unavailable"),
        _ => (ErrorCategory::Internal, "session.store"),
    };
    AdkError::new(ErrorComponent::Session, category, code, e.to_string()).with_source(e)
}

fn not_found(app_name: &str, user_id: &str, session_id: &str) -> AdkError {
    AdkError::not_found(
        ErrorComponent::Session,
        "session.not_found",
        format!("session '{session_id}' was not found for app '{app_name}' and user '{user_id}'"),
    )
}

fn event_error(e: serde_json::Error) -> AdkError {
    AdkError::new(
        ErrorComponent::Session,
        ErrorCategory::Internal,
        "session.event_encoding",
        format!("event does not convert between ADK-Rust's model and the store's: {e}"),
    )
    .with_source(e)
}

fn boxed(session: AgentSession, events: Vec<adk_core::Event>) -> Box<dyn Session> {
    Box::new(AdkRustSession::new(session, events))
}

impl SessionService {
    /// Appends to the session with this id, owned by `owner` when given, retrying when a
    /// concurrent append moved the session on.
    async fn append_adk(
        &self,
        session_id: &str,
        owner: Option<(&str, &str)>,
        event: &adk_core::Event,
    ) -> adk_core::Result<()> {
        let event = convert::from_adk(event).map_err(event_error)?;
        // The schedule `run_in_transaction` retries aborts on: jittered exponential pauses
        // (from 5 ms) within its deadline (30 s), so that appends racing for one session
        // spread out instead of meeting again at once.
        let options = crate::TransactionOptions::default();
        let timeout = options.timeout;
        let mut backoff = crate::transaction::retry::Backoff::new(options);
        loop {
            backoff.attempts += 1;
            // The session's own keys and version are all an append needs (the app and
            // user keys are merged into their rows by the store).
            let Some(mut session) = self.current(session_id, owner).await.map_err(adk_error)?
            else {
                let (app, user) = owner.unwrap_or(("?", "?"));
                return Err(not_found(app, user, session_id));
            };
            match self.append_event(&mut session, event.clone()).await {
                Err(stale @ Error::StaleSession { .. }) => {
                    if backoff.after_abort(stale).await.is_err() {
                        break;
                    }
                }
                other => return other.map(drop).map_err(adk_error),
            }
        }
        Err(AdkError::new(
            ErrorComponent::Session,
            ErrorCategory::Unavailable,
            "session.contended",
            format!(
                "session '{session_id}': concurrent appends kept winning for {timeout:?} \
                 ({} attempts); try again",
                backoff.attempts
            ),
        ))
    }
}

/// ADK-Rust's session service trait (feature `adk-rust`): an ADK-Rust `Runner` keeps its
/// sessions in the seed's tables through these pools.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use session_pool::adk::{AdkConfig, AdkStore, SessionService};
/// use session_pool::{Database, FixedSizePool};
///
/// let db = Database::open("sqlite://agent.db").await?;
/// let store = AdkStore::new(FixedSizePool::builder().size(8).build(&db).await?, AdkConfig::default())?;
/// store.create_tables().await?;
/// // What an ADK-Rust Runner takes as its session service.
/// let sessions: Arc<dyn adk_session::SessionService> = Arc::new(SessionService::new(store));
/// # Ok(()) }
/// ```
///
/// **Semantics**, as ADK-Rust's own services and the trait document them:
///
/// - `create`: a fresh UUID when no id is given; `app:` and `user:` keys of the initial
///   state go to the app's and user's state, `temp:` keys are dropped. An id in use is an
///   invalid-input error (`session.already_exists`).
/// - `get`: the merged state (session keys, `app:` and `user:` keys with their prefixes)
///   and the events, the newest `num_recent_events` of them, those at or after `after`
///   (inclusive), read in one statement. A missing session is a not-found error with code
///   `session.not_found`.
/// - `list`: the user's sessions, most recently updated first, `offset` and `limit` applied,
///   without events.
/// - `delete`, `delete_all_sessions`: gone with their events; deleting a missing session
///   is not an error.
/// - `append_event`: `temp:` keys are dropped from the stored delta; the event, the
///   session's keys and the `app:`/`user:` keys are written atomically. Concurrent appends
///   to one session are serialized by the store's compare-and-swap and retried after
///   jittered pauses (as `run_in_transaction` retries aborts, within 30 s), so no delta is
///   lost. A partial (streaming) event is not stored, as in ADK-Python.
///
/// **Events** keep every field: those the seed's columns have are stored there, the rest
/// (`usage_metadata`, `event_metadata`, `tool_confirmation`, `route`, …) as JSON beside
/// them (see [`Event::extra`](crate::adk::Event::extra) and
/// [`EventActions::extra`](crate::adk::EventActions::extra)). Sessions and events written by
/// ADK-Python through these tables read too, as far as ADK-Rust's model has their fields.
///
/// Errors are [`adk_core::AdkError`]s of component `Session`, with this crate's
/// [`Error`] as their `source()`.
#[async_trait]
impl adk_session::SessionService for SessionService {
    async fn create(&self, req: CreateRequest) -> adk_core::Result<Box<dyn Session>> {
        req.try_app_name()?;
        req.try_user_id()?;
        req.try_session_id()?;
        let state = req.state.into_iter().collect();
        let session = self
            .create_session(
                &req.app_name,
                &req.user_id,
                Some(state),
                req.session_id.as_deref(),
            )
            .await
            .map_err(adk_error)?;
        Ok(boxed(session, Vec::new()))
    }

    async fn get(&self, req: GetRequest) -> adk_core::Result<Box<dyn Session>> {
        req.try_identity()?;
        let config = GetSessionConfig {
            num_recent_events: req.num_recent_events,
            after_timestamp: req.after,
            keep_oldest: false,
        };
        let Some(mut session) = self
            .get_session(&req.app_name, &req.user_id, &req.session_id, &config)
            .await
            .map_err(adk_error)?
        else {
            return Err(not_found(&req.app_name, &req.user_id, &req.session_id));
        };
        let events = std::mem::take(&mut session.events)
            .iter()
            .map(convert::to_adk)
            .collect::<Result<_, _>>()
            .map_err(event_error)?;
        Ok(boxed(session, events))
    }

    async fn list(&self, req: ListRequest) -> adk_core::Result<Vec<Box<dyn Session>>> {
        req.try_app_name()?;
        req.try_user_id()?;
        let sessions = self
            .list_sessions(&req.app_name, Some(&req.user_id))
            .await
            .map_err(adk_error)?;
        Ok(sessions
            .into_iter()
            .skip(req.offset.unwrap_or(0))
            .take(req.limit.unwrap_or(usize::MAX))
            .map(|s| boxed(s, Vec::new()))
            .collect())
    }

    async fn delete(&self, req: DeleteRequest) -> adk_core::Result<()> {
        req.try_identity()?;
        self.delete_session(&req.app_name, &req.user_id, &req.session_id)
            .await
            .map(drop)
            .map_err(adk_error)
    }

    async fn append_event(&self, session_id: &str, event: adk_core::Event) -> adk_core::Result<()> {
        self.append_adk(session_id, None, &event).await
    }

    async fn append_event_for_identity(
        &self,
        req: adk_session::AppendEventRequest,
    ) -> adk_core::Result<()> {
        let id = &req.identity;
        let owner = (id.app_name.as_ref(), id.user_id.as_ref());
        self.append_adk(id.session_id.as_ref(), Some(owner), &req.event)
            .await
    }

    async fn delete_all_sessions(&self, app_name: &str, user_id: &str) -> adk_core::Result<()> {
        let sessions = self
            .list_sessions(app_name, Some(user_id))
            .await
            .map_err(adk_error)?;
        for s in sessions {
            self.delete_session(app_name, user_id, &s.id)
                .await
                .map_err(adk_error)?;
        }
        Ok(())
    }

    async fn health_check(&self) -> adk_core::Result<()> {
        let mut session = crate::support::checkout(self.pool())
            .await
            .map_err(adk_error)?;
        session.ping().await.map_err(adk_error)
    }
}

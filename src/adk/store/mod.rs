//! `AdkStore`: the seed's store operations over any pool, plus the atomic append, paging,
//! owner scoping and idle cleanup.
//!
//! This file holds the store, its tables and its binds; `sessions.rs` the session rows,
//! `events.rs` the events and the atomic append, `scoped.rs` ADK's app and user state
//! scopes, and `layout.rs` which form the events table has.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::codec::ActionsCodec;
use super::config::{AdkConfig, Tables};
use super::record::{SessionRecord, time_param};
use super::schema;
use super::sql::{StateBinds, Stmt};
use crate::conn::{ExecResult, RowRef};
use crate::error::{Error, Result};
use crate::pool::AbstractSessionPool;
use crate::pool::SharedPool;
use crate::support::{Binds, Placeholder, SqlCache, checkout, is_postgres};
use crate::value::Value;

mod events;
mod layout;
mod scoped;
mod sessions;

pub(crate) use events::Version;
pub(crate) use scoped::{Deltas, Scoped};

/// The ADK session and event store (SQLSpec's `AsyncpgADKStore` and its SQLite sibling) over
/// any [`AbstractSessionPool`].
///
/// Every call checks one session out for its duration and puts it back, so the store is
/// cheap to clone and share between tasks. Ids are at most 128 characters and are checked
/// before any query; state must be a JSON object.
///
/// **Owner scoping.** With an owner-id column configured, [`scoped`](AdkStore::scoped)
/// returns a store that creates sessions for one owner and whose reads, lists, updates,
/// appends and deletes only see that owner's sessions: a tenant never sees another's.
///
/// **Lost sessions.** When the session a call checked out turns out to be lost (a server
/// restart, a failover, a killed backend), these calls run once more on another session,
/// so the caller sees no error for a loss the pool could not have known of:
///
/// - reads: [`get_session`](AdkStore::get_session), [`get_events`](AdkStore::get_events),
///   [`list_sessions`](AdkStore::list_sessions) and
///   [`list_sessions_page`](AdkStore::list_sessions_page);
/// - writes idempotent by key: [`create_tables`](AdkStore::create_tables),
///   [`delete_session`](AdkStore::delete_session) and
///   [`delete_idle_sessions`](AdkStore::delete_idle_sessions) (after such a retry,
///   `delete_session` may report `false` for a session the first attempt deleted).
///
/// The other writes (`create_session`, `update_session_state`, `append_event`, …) are not
/// retried: the first attempt may have been applied, so the error is returned.
///
/// **Tables changed underneath.** The events table's layout is asked of the catalog on
/// first use and kept. When a statement that depends on it then fails on a table or
/// column missing (SQLSpec's migration to 0.51 drops its ADK tables and makes them again
/// in its new layout), the store forgets the layout, asks again and runs the call once
/// more (`append_event`, `append_event_and_update_state`, `get_events` and the service's
/// reads and appends; the failed statement wrote nothing), so a running service follows a
/// migration without a restart.
pub struct AdkStore {
    pool: SharedPool,
    tables: Arc<Tables>,
    /// Statement texts, shared with clones and scoped stores (same tables).
    sql: Arc<SqlCache<Stmt>>,
    owner: Option<Value>,
    /// The events table's form (the seed's columns, SQLSpec 0.41's JSONB tool ids, or one
    /// of SQLSpec's whole-event layouts), learned on first use, forgotten when the tables
    /// change under the store, and shared with clones.
    form: Arc<layout::FormCell>,
    actions_codec: ActionsCodec,
    portable_ddl: bool,
    staleness: crate::Staleness,
}

impl Clone for AdkStore {
    fn clone(&self) -> Self {
        AdkStore {
            pool: Arc::clone(&self.pool),
            tables: Arc::clone(&self.tables),
            sql: Arc::clone(&self.sql),
            owner: self.owner.clone(),
            form: Arc::clone(&self.form),
            actions_codec: self.actions_codec,
            portable_ddl: self.portable_ddl,
            staleness: self.staleness,
        }
    }
}

impl fmt::Debug for AdkStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdkStore")
            .field("session_table", &self.tables.sessions.as_str())
            .field("events_table", &self.tables.events.as_str())
            .field("owner", &self.owner)
            .finish()
    }
}

/// One page of [`AdkStore::list_sessions_page`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SessionPage {
    /// The sessions, newest update first.
    pub sessions: Vec<SessionRecord>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<SessionCursor>,
}

impl SessionCursor {
    /// A cursor at the session with this update time and id (as kept from an earlier
    /// page, say in a web API's page token).
    pub fn new(update_time: DateTime<Utc>, id: impl Into<String>) -> Self {
        SessionCursor {
            update_time,
            id: id.into(),
        }
    }
}

/// A position in a session listing: the last session of a page. Listings are ordered by
/// `(update_time, id)` descending, so a cursor stays valid while sessions are added.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionCursor {
    /// The update time of the last session seen.
    pub update_time: DateTime<Utc>,
    /// Its id.
    pub id: String,
}

impl AdkStore {
    /// A store on `pool` with the tables named by `config`. A bad table name or owner column
    /// is [`Error::InvalidArgument`]; nothing is sent to the database until a call.
    pub fn new(pool: impl AbstractSessionPool, config: AdkConfig) -> Result<Self> {
        let pool: SharedPool = Arc::new(pool);
        Ok(AdkStore {
            pool,
            tables: Arc::new(Tables::new(&config)?),
            sql: Arc::default(),
            owner: None,
            form: Arc::default(),
            actions_codec: config.actions_codec,
            portable_ddl: config.portable_ddl,
            staleness: crate::Staleness::Strong,
        })
    }

    /// The same store, its reads bounded by `bound` (default [`Staleness::Strong`](crate::Staleness)):
    /// with a bound, they go to a read replica of the pool's database that is fresh enough
    /// (see [`Session::read_at`](crate::Session::read_at)). A [`SessionService`](super::SessionService) on such a store reads stale sessions, and its `append_event` then fails with [`Error::StaleSession`] until it reads a fresh one, else to the primary. Writes
    /// always go to the primary. A write followed by a read of it: take
    /// [`commit_token`](Self::commit_token) after the write and read with
    /// [`Staleness::AtLeast`](crate::Staleness::AtLeast).
    pub fn with_staleness(mut self, bound: crate::Staleness) -> Self {
        self.staleness = bound;
        self
    }

    /// A [`CommitToken`](crate::CommitToken) at or after every write the primary has
    /// committed so far (one round trip on a pooled session); see
    /// [`Session::commit_token`](crate::Session::commit_token).
    #[cfg(feature = "postgres")]
    pub async fn commit_token(&self) -> Result<crate::CommitToken> {
        let mut session = crate::support::checkout(&self.pool).await?;
        session.commit_token().await
    }

    /// The pool the store checks sessions out of.
    pub fn pool(&self) -> &SharedPool {
        &self.pool
    }

    /// The sessions table's name.
    pub fn session_table(&self) -> &str {
        self.tables.sessions.as_str()
    }

    /// The events table's name.
    pub fn events_table(&self) -> &str {
        self.tables.events.as_str()
    }

    /// The format events' actions are written in ([`AdkConfig::actions_codec`]).
    pub fn actions_codec(&self) -> ActionsCodec {
        self.actions_codec
    }

    /// The owner-id column's name, when one is configured.
    pub fn owner_id_column_name(&self) -> Option<&str> {
        self.tables.owner.as_ref().map(|o| o.name.as_str())
    }

    /// The owner this store is scoped to, if any.
    pub fn owner(&self) -> Option<&Value> {
        self.owner.as_ref()
    }

    /// This store limited to the sessions of `owner`. Fails with
    /// [`Error::InvalidArgument`] when no owner-id column is configured or `owner` is NULL.
    ///
    /// The owner is bound as the column's declared type: a UUID column takes a
    /// `uuid::Uuid` or its text, an integer column an integer or its text, a text column
    /// any of them as text.
    pub fn scoped(&self, owner: impl Into<Value>) -> Result<Self> {
        let owner = owner.into();
        let Some(column) = &self.tables.owner else {
            return Err(Error::invalid(
                "this store has no owner-id column: configure one with \
                 `AdkConfig::owner_id_column` to scope by owner",
            ));
        };
        if owner.is_null() {
            return Err(Error::invalid(
                "the owner to scope a store to cannot be NULL",
            ));
        }
        Ok(AdkStore {
            owner: Some(column.kind.coerce(owner)?),
            ..self.clone()
        })
    }

    /// Creates both tables and their indexes if they do not exist (the seed's DDL on
    /// PostgreSQL, the companion layout on SQLite). Running it again changes nothing.
    /// Through a pooler in statement mode, which refuses the transaction, the statements
    /// run one at a time.
    pub async fn create_tables(&self) -> Result<()> {
        // SQLSpec's `create_tables` takes no lock of ours: see `create_idempotent`.
        crate::support::create_idempotent(|| self.create_tables_once()).await
    }

    async fn create_tables_once(&self) -> Result<()> {
        let mut session = checkout(&self.pool).await?;
        let postgres = is_postgres(session.database().dialect());
        // An events table this store cannot use is refused before anything is added.
        self.form(&mut *session, postgres).await?;
        if postgres && self.portable_ddl {
            let ddl = schema::ddl(&self.tables, true, true);
            return crate::support::create_one_by_one(&mut session, &ddl).await;
        }
        let ddl = schema::ddl(&self.tables, postgres, false);
        let lock = "session_pool.adk.create_tables";
        crate::support::create_locked(&self.pool, session, postgres, lock, &ddl).await?;
        tracing::debug!(target: "session_pool::adk", sessions = %self.tables.sessions,
            events = %self.tables.events, "ADK tables ready");
        Ok(())
    }

    /// Reads the rows of the tables' session columns.
    fn session_decoder(&self) -> impl Fn(RowRef<'_>) -> ExecResult<SessionRecord> + Clone + use<> {
        let has_owner = self.tables.owner.is_some();
        move |r| SessionRecord::decode(r, has_owner)
    }

    /// Binds a new state (and, on SQLite, the client's clock) for
    /// [`sql::set_state`](super::sql::set_state).
    fn state_binds<'a>(
        &self,
        b: &mut Binds<'a>,
        state: &'a serde_json::Value,
        postgres: bool,
    ) -> StateBinds {
        StateBinds {
            state: b.push(state),
            now: (!postgres).then(|| b.push(time_param(Utc::now(), false))),
        }
    }

    /// Binds the store's owner when it is scoped, for
    /// [`sql::owner_filter`](super::sql::owner_filter).
    fn owner_bind<'a>(&'a self, b: &mut Binds<'a>) -> Option<Placeholder> {
        match (&self.owner, &self.tables.owner) {
            (Some(value), Some(_)) => Some(b.push(value)),
            _ => None,
        }
    }

    fn owner_for_create(&self, owner_id: Option<Value>) -> Result<Option<Value>> {
        // Bound as the column's declared type, so equal owners compare equal below.
        let owner_id = match (&self.tables.owner, owner_id) {
            (Some(column), Some(given)) if !given.is_null() => Some(column.kind.coerce(given)?),
            (_, given) => given,
        };
        match (&self.tables.owner, &self.owner, owner_id) {
            (None, _, Some(_)) => Err(Error::invalid(
                "an owner id was given but the store has no owner-id column",
            )),
            (None, _, None) => Ok(None),
            (Some(_), Some(scope), Some(given)) if *scope != given => Err(Error::invalid(format!(
                "this store is scoped to owner {scope:?}; it cannot create a session for {given:?}"
            ))),
            (Some(_), Some(scope), _) => Ok(Some(scope.clone())),
            (Some(_), None, given) => Ok(given),
        }
    }
}

fn not_found(session_id: &str) -> Error {
    Error::NotFound(format!(
        "session `{session_id}` (create it first; it must match the event's app and user)"
    ))
}

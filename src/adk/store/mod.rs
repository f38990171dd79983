//! `AdkStore`: the seed's store operations over any pool, plus the atomic append, paging,
//! owner scoping and idle cleanup.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::codec::ActionsCodec;
use super::config::{AdkConfig, Tables};
use super::record::{EventRecord, Form, SessionRecord, time_param};
use super::schema;
use super::scopes::{self, Scope};
use super::sql::{self, StateBinds, Stmt};
use crate::conn::{CachedSql, ExecResult, RowRef};
use crate::error::{Error, Result};
use crate::param::Param;
use crate::pool::AbstractSessionPool;
use crate::pool::SharedPool;
use crate::row::only;
use crate::session::Context;
use crate::session::Session;
use crate::support::{
    Binds, Placeholder, SqlCache, check_id, check_object, checkout, is_postgres, read_rows,
    retry_idempotent,
};
use crate::value::Value;

mod layout;
mod scoped;

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

    /// Creates a session with the initial `state` (a JSON object). `owner_id` fills the
    /// owner-id column; a scoped store fills it with its owner. An id in use is
    /// [`Error::AlreadyExists`].
    pub async fn create_session(
        &self,
        session_id: &str,
        app_name: &str,
        user_id: &str,
        state: &serde_json::Value,
        owner_id: Option<Value>,
    ) -> Result<SessionRecord> {
        check_id("session_id", session_id)?;
        check_id("app_name", app_name)?;
        check_id("user_id", user_id)?;
        check_object("state", state)?;
        let owner_id = self.owner_for_create(owner_id)?;
        let mut session = checkout(&self.pool).await?;
        let postgres = is_postgres(session.database().dialect());
        let new = NewSession {
            id: session_id,
            app: app_name,
            user: user_id,
            state,
            owner: owner_id.as_ref(),
        };
        self.create_in(&mut *session, postgres, new).await
    }

    /// Inserts a session through `ctx` (a session, or a transaction); arguments checked.
    async fn create_in(
        &self,
        ctx: &mut impl Context,
        postgres: bool,
        new: NewSession<'_>,
    ) -> Result<SessionRecord> {
        let mut b = Binds::default();
        let binds = self.create_binds(&mut b, new, postgres);
        let key = Stmt::Create {
            postgres,
            owner: binds.owner.is_some(),
        };
        let sql = self.sql.get(key, || sql::create(&self.tables, &binds));
        let has_owner = self.tables.owner.is_some();
        let rows = ctx
            .exec()
            .await?
            .map_rows(sql, &b.0, |r| SessionRecord::decode(r, has_owner))
            .await
            .map_err(|e| taken(e, new.id))?;
        only(rows)
    }

    /// A new session's parameters, pushed onto `b`: id, app, user, state, then the owner
    /// when the table has one and, on SQLite, the time.
    fn create_binds<'v>(
        &self,
        b: &mut Binds<'v>,
        new: NewSession<'v>,
        postgres: bool,
    ) -> sql::CreateBinds {
        let (id, app, user, state) = (
            b.push(new.id),
            b.push(new.app),
            b.push(new.user),
            b.push(new.state),
        );
        let owner = match (&self.tables.owner, new.owner) {
            (Some(_), Some(value)) => Some(b.push(value)),
            _ => None,
        };
        // SQLite: the client's clock, as a Julian day the REAL holds exactly.
        let now = (!postgres).then(|| b.push(time_param(Utc::now(), false)));
        sql::CreateBinds {
            id,
            app,
            user,
            state,
            owner,
            now,
        }
    }

    /// The session with this id, or `None` (also when it belongs to another owner).
    pub async fn get_session(&self, session_id: &str) -> Result<Option<SessionRecord>> {
        let rows = self
            .get_with(session_id, false, self.session_decoder())
            .await?;
        Ok(rows.into_iter().next())
    }

    async fn get_with<T>(
        &self,
        session_id: &str,
        scopes: bool,
        decode: impl FnMut(RowRef<'_>) -> ExecResult<T> + Clone,
    ) -> Result<Vec<T>> {
        check_id("session_id", session_id)?;
        let mut b = Binds::default();
        let id = b.push(session_id);
        let owner = self.owner_bind(&mut b);
        let key = Stmt::Get {
            scoped: owner.is_some(),
            scopes,
        };
        let sql = self
            .sql
            .get(key, || sql::get(&self.tables, id, owner, scopes));
        let session = checkout(&self.pool).await?;
        read_rows(&self.pool, session, self.staleness, sql, &b.0, decode).await
    }

    /// Replaces the whole state (a JSON object) and moves the update time forward. An
    /// unknown session is [`Error::NotFound`].
    pub async fn update_session_state(
        &self,
        session_id: &str,
        state: &serde_json::Value,
    ) -> Result<SessionRecord> {
        check_id("session_id", session_id)?;
        check_object("state", state)?;
        let mut session = checkout(&self.pool).await?;
        let postgres = is_postgres(session.database().dialect());
        let mut b = Binds::default();
        let set = self.state_binds(&mut b, state, postgres);
        let id = b.push(session_id);
        let owner = self.owner_bind(&mut b);
        let key = Stmt::Update {
            postgres,
            scoped: owner.is_some(),
        };
        let sql = self
            .sql
            .get(key, || sql::update(&self.tables, set, id, owner));
        let rows = session
            .exec()
            .await?
            .map_rows(sql, &b.0, self.session_decoder())
            .await?;
        rows.into_iter().next().ok_or_else(|| not_found(session_id))
    }

    /// Deletes the session and, by the cascading foreign key, its events. Returns whether
    /// a session was deleted.
    pub async fn delete_session(&self, session_id: &str) -> Result<bool> {
        retry_idempotent(|| self.delete_session_once(session_id)).await
    }

    async fn delete_session_once(&self, session_id: &str) -> Result<bool> {
        check_id("session_id", session_id)?;
        let mut b = Binds::default();
        let id = b.push(session_id);
        let owner = self.owner_bind(&mut b);
        let key = Stmt::Delete {
            scoped: owner.is_some(),
        };
        let sql = self.sql.get(key, || sql::delete(&self.tables, id, owner));
        let mut session = checkout(&self.pool).await?;
        Ok(session.exec().await?.execute(sql, &b.0).await? > 0)
    }

    /// Deletes session `session_id` only if it belongs to `app_name` and `user_id`.
    pub(crate) async fn delete_for(
        &self,
        app_name: &str,
        user_id: &str,
        session_id: &str,
    ) -> Result<bool> {
        retry_idempotent(|| self.delete_for_once(app_name, user_id, session_id)).await
    }

    async fn delete_for_once(
        &self,
        app_name: &str,
        user_id: &str,
        session_id: &str,
    ) -> Result<bool> {
        check_id("app_name", app_name)?;
        check_id("user_id", user_id)?;
        check_id("session_id", session_id)?;
        let mut b = Binds::default();
        let (id, app, user) = (b.push(session_id), b.push(app_name), b.push(user_id));
        let owner = self.owner_bind(&mut b);
        let key = Stmt::DeleteFor {
            scoped: owner.is_some(),
        };
        let sql = self.sql.get(key, || {
            sql::delete_for(&self.tables, [id, app, user], owner)
        });
        let mut session = checkout(&self.pool).await?;
        Ok(session.exec().await?.execute(sql, &b.0).await? > 0)
    }

    /// The sessions of an app, of one user when `user_id` is given, newest update first.
    pub async fn list_sessions(
        &self,
        app_name: &str,
        user_id: Option<&str>,
    ) -> Result<Vec<SessionRecord>> {
        self.list(app_name, user_id, None, None, false, self.session_decoder())
            .await
    }

    /// One page of [`list_sessions`](AdkStore::list_sessions): at most `limit` sessions
    /// after `after` (the previous page's [`next`](SessionPage::next)).
    pub async fn list_sessions_page(
        &self,
        app_name: &str,
        user_id: Option<&str>,
        limit: usize,
        after: Option<&SessionCursor>,
    ) -> Result<SessionPage> {
        if limit == 0 {
            return Err(Error::invalid("a page must hold at least one session"));
        }
        let mut sessions = self
            .list(
                app_name,
                user_id,
                Some(limit + 1),
                after,
                false,
                self.session_decoder(),
            )
            .await?;
        let next = if sessions.len() > limit {
            sessions.truncate(limit);
            sessions.last().map(|s| SessionCursor {
                update_time: s.update_time,
                id: s.id.clone(),
            })
        } else {
            None
        };
        Ok(SessionPage { sessions, next })
    }

    async fn list<T>(
        &self,
        app_name: &str,
        user_id: Option<&str>,
        limit: Option<usize>,
        after: Option<&SessionCursor>,
        scopes: bool,
        decode: impl FnMut(RowRef<'_>) -> ExecResult<T> + Clone,
    ) -> Result<Vec<T>> {
        check_id("app_name", app_name)?;
        if let Some(user_id) = user_id {
            check_id("user_id", user_id)?;
        }
        if let Some(after) = after {
            check_id("cursor id", &after.id)?;
        }
        let session = checkout(&self.pool).await?;
        let postgres = is_postgres(session.database().dialect());
        let mut b = Binds::default();
        let app = b.push(app_name);
        let user = user_id.map(|u| b.push(u));
        let owner = self.owner_bind(&mut b);
        let after = after.map(|a| {
            (
                b.push(time_param(a.update_time, postgres)),
                b.push(a.id.as_str()),
            )
        });
        let limit = limit.map(|n| b.push(i64::try_from(n).unwrap_or(i64::MAX)));
        let key = Stmt::List {
            user: user.is_some(),
            scoped: owner.is_some(),
            after: after.is_some(),
            limit: limit.is_some(),
            scopes,
        };
        let binds = sql::ListBinds {
            app,
            user,
            owner,
            after,
            limit,
            scopes,
        };
        let sql = self.sql.get(key, || sql::list(&self.tables, &binds));
        read_rows(&self.pool, session, self.staleness, sql, &b.0, decode).await
    }

    /// Appends an event to its session. The session must exist with the event's
    /// `app_name` and `user_id` (and the store's owner): otherwise [`Error::NotFound`].
    /// A duplicate event id is [`Error::AlreadyExists`].
    pub async fn append_event(&self, event: &EventRecord) -> Result<()> {
        self.relearning(|| self.append_event_once(event)).await
    }

    async fn append_event_once(&self, event: &EventRecord) -> Result<()> {
        event.check()?;
        let mut session = checkout(&self.pool).await?;
        let postgres = is_postgres(session.database().dialect());
        let form = self.form(&mut *session, postgres).await?;
        check_actions(event, form)?;
        let mut b = Binds::default();
        event.bind(&mut b, postgres);
        let owner = self.owner_bind(&mut b);
        let key = Stmt::Append {
            postgres,
            scoped: owner.is_some(),
            form,
        };
        let sql = self
            .sql
            .get(key, || sql::append(&self.tables, postgres, owner, form));
        let n = session
            .exec()
            .await?
            .execute(sql, &b.0)
            .await
            .map_err(|e| duplicate_event(e, event))?;
        if n == 0 {
            // Boxed: a miss's round trips would otherwise sit in every append's future.
            return Err(Box::pin(self.explain_miss(&mut session, event, None)).await);
        }
        Ok(())
    }

    /// Appends `event` and replaces its session's state with `state` in one atomic step:
    /// one statement (one round trip) on PostgreSQL, one `BEGIN IMMEDIATE` transaction on
    /// SQLite. Returns the updated session.
    ///
    /// With `expected_update_time`, this is a compare-and-swap on the session's update
    /// time: if another writer changed the session since that version was read, nothing is
    /// written and the error is [`Error::StaleSession`]. Of two writers starting from the
    /// same version, exactly one succeeds.
    pub async fn append_event_and_update_state(
        &self,
        event: &EventRecord,
        state: &serde_json::Value,
        expected_update_time: Option<DateTime<Utc>>,
    ) -> Result<SessionRecord> {
        self.append_and_update::<SessionRecord>(
            event,
            state,
            expected_update_time,
            &Deltas::default(),
        )
        .await
        .map(|(record, _)| record)
    }

    /// [`append_event_and_update_state`](AdkStore::append_event_and_update_state), also
    /// saying whether the database is PostgreSQL (which fixes the stored time precision).
    ///
    /// `deltas` are merged into the app's and the user's state (ADK's `app:` and `user:`
    /// keys, without their prefix) in the same atomic step, only when the update matched.
    /// `T` says what is read back: the whole session, or (the service) only its version.
    pub(crate) async fn append_and_update<T: Readback>(
        &self,
        event: &EventRecord,
        state: &serde_json::Value,
        expected_update_time: Option<DateTime<Utc>>,
        deltas: &Deltas,
    ) -> Result<(T, bool)> {
        self.relearning(|| self.append_and_update_once(event, state, expected_update_time, deltas))
            .await
    }

    async fn append_and_update_once<T: Readback>(
        &self,
        event: &EventRecord,
        state: &serde_json::Value,
        expected_update_time: Option<DateTime<Utc>>,
        deltas: &Deltas,
    ) -> Result<(T, bool)> {
        event.check()?;
        check_object("state", state)?;
        let mut session = checkout(&self.pool).await?;
        let postgres = is_postgres(session.database().dialect());
        let form = self.form(&mut *session, postgres).await?;
        check_actions(event, form)?;
        // SQLSpec's whole-event tables hold app and user keys with their prefix (PostgreSQL
        // binds the deltas here; SQLite's `merge_scope` adds the prefix itself).
        let prefixed = postgres && form.scopes_prefixed();
        let app_delta =
            (deltas.app.as_ref()).map(|d| scopes::stored_delta(d, Scope::App, prefixed));
        let user_delta =
            (deltas.user.as_ref()).map(|d| scopes::stored_delta(d, Scope::User, prefixed));
        let mut b = Binds::default();
        event.bind(&mut b, postgres);
        let set = self.state_binds(&mut b, state, postgres);
        let cas = expected_update_time.map(|t| b.push(time_param(t, postgres)));
        let owner = self.owner_bind(&mut b);
        // PostgreSQL merges the deltas in the same statement; SQLite in the transaction.
        let scope_binds = if postgres {
            sql::ScopeDeltas {
                app: app_delta.as_deref().map(|d| b.push(d)),
                user: user_delta.as_deref().map(|d| b.push(d)),
            }
        } else {
            sql::ScopeDeltas::default()
        };
        let key = Stmt::AppendUpdate {
            postgres,
            scoped: owner.is_some(),
            cas: cas.is_some(),
            app: scope_binds.app.is_some(),
            user: scope_binds.user.is_some(),
            form,
            version_only: T::VERSION_ONLY,
        };
        let update = self.sql.get(key, || {
            let back = sql::Returning {
                version_only: T::VERSION_ONLY,
                form,
            };
            sql::append_update(&self.tables, postgres, set, cas, owner, scope_binds, back)
        });
        let has_owner = self.tables.owner.is_some();
        let updated = if postgres {
            let rows = session
                .exec()
                .await?
                .map_rows(update, &b.0, |r| T::decode(r, has_owner))
                .await
                .map_err(|e| duplicate_event(e, event))?;
            rows.into_iter().next()
        } else {
            let insert = self.sql.get(Stmt::SqliteInsert { form }, || {
                sql::sqlite_insert(&self.tables, form)
            });
            let scopes = SqliteScopes {
                store: self,
                app: &event.app_name,
                user: &event.user_id,
                deltas,
            };
            sqlite_append_and_update(&mut session, update, insert, &b.0, has_owner, scopes)
                .await
                .map_err(|e| duplicate_event(e, event))?
                .map(T::from_record)
        };
        match updated {
            Some(record) => Ok((record, postgres)),
            // Boxed, as in `append_event_once`.
            None => {
                Err(Box::pin(self.explain_miss(&mut session, event, expected_update_time)).await)
            }
        }
    }

    /// Why an update matched nothing: no such session, or a newer version.
    async fn explain_miss(
        &self,
        session: &mut Session,
        event: &EventRecord,
        expected: Option<DateTime<Utc>>,
    ) -> Error {
        match self.duplicate_in_json(session, event).await {
            Ok(false) => {}
            Ok(true) => return event_already_exists(event),
            Err(e) => return e,
        }
        let mut b = Binds::default();
        let (id, app, user) = (
            b.push(event.session_id.as_str()),
            b.push(event.app_name.as_str()),
            b.push(event.user_id.as_str()),
        );
        let owner = self.owner_bind(&mut b);
        // Only on a miss: not worth a cached text.
        let sql = sql::get_for(&self.tables, [id, app, user], owner);
        let rows = match session.exec().await {
            Ok(exec) => exec.map_rows(&sql, &b.0, self.session_decoder()).await,
            Err(e) => Err(e),
        };
        let found = match rows {
            Ok(rows) => rows.into_iter().next(),
            Err(e) => return e,
        };
        match (found, expected) {
            (Some(current), Some(expected)) => {
                tracing::debug!(target: "session_pool::adk", session = %event.session_id,
                    %expected, actual = %current.update_time, "stale session rejected");
                Error::StaleSession {
                    session_id: event.session_id.clone(),
                    expected,
                    actual: current.update_time,
                }
            }
            _ => not_found(&event.session_id),
        }
    }

    /// Whether the event's session already has this event (its id at its timestamp), on a
    /// table whose ids live in the JSON (no index refuses a duplicate there, so the write's
    /// guard did); `false` on every other table.
    async fn duplicate_in_json(&self, session: &mut Session, event: &EventRecord) -> Result<bool> {
        let Some(form) = self.form.get().filter(|f| f.id_in_json()) else {
            return Ok(false);
        };
        let postgres = is_postgres(session.database().dialect());
        let sql = sql::event_exists(&self.tables, form, postgres);
        let params = [
            Param::Text(event.session_id.as_str()),
            Param::Text(event.id.as_str()),
            time_param(event.timestamp, postgres),
        ];
        let rows = session
            .exec()
            .await?
            .map_rows(&sql, &params, |_| Ok(()))
            .await?;
        Ok(!rows.is_empty())
    }

    /// The session's events in chronological order (ties broken by id): those after
    /// `after_timestamp` when given, and only the newest `limit` of them when given.
    /// An unknown session has no events.
    pub async fn get_events(
        &self,
        session_id: &str,
        after_timestamp: Option<DateTime<Utc>>,
        limit: Option<usize>,
    ) -> Result<Vec<EventRecord>> {
        self.relearning(|| self.get_events_once(session_id, after_timestamp, limit))
            .await
    }

    async fn get_events_once(
        &self,
        session_id: &str,
        after_timestamp: Option<DateTime<Utc>>,
        limit: Option<usize>,
    ) -> Result<Vec<EventRecord>> {
        check_id("session_id", session_id)?;
        if limit == Some(0) {
            return Ok(Vec::new());
        }
        let mut session = checkout(&self.pool).await?;
        let postgres = is_postgres(session.database().dialect());
        let form = self.form(&mut *session, postgres).await?;
        let mut b = Binds::default();
        let sid = b.push(session_id);
        let after = after_timestamp.map(|t| b.push(time_param(t, postgres)));
        let owner = self.owner_bind(&mut b);
        let limit = limit.map(|n| b.push(i64::try_from(n).unwrap_or(i64::MAX)));
        let key = Stmt::Events {
            after: after.is_some(),
            scoped: owner.is_some(),
            limit: limit.is_some(),
            form,
        };
        let sql = self.sql.get(key, || {
            sql::events(&self.tables, sid, after, owner, limit, form, postgres)
        });
        read_rows(
            &self.pool,
            session,
            self.staleness,
            sql,
            &b.0,
            EventRecord::decode,
        )
        .await
    }

    /// Deletes the sessions (and their events) not written since `updated_before`; returns
    /// how many were deleted.
    pub async fn delete_idle_sessions(&self, updated_before: DateTime<Utc>) -> Result<u64> {
        retry_idempotent(|| self.delete_idle_once(updated_before)).await
    }

    async fn delete_idle_once(&self, updated_before: DateTime<Utc>) -> Result<u64> {
        let mut session = checkout(&self.pool).await?;
        let postgres = is_postgres(session.database().dialect());
        let mut b = Binds::default();
        let before = b.push(time_param(updated_before, postgres));
        let owner = self.owner_bind(&mut b);
        let sql = sql::delete_idle(&self.tables, before, owner);
        let n = session.exec().await?.execute(sql, &b.0).await?;
        tracing::debug!(target: "session_pool::adk", deleted = n, %updated_before,
            "idle sessions deleted");
        Ok(n)
    }

    /// Reads the rows of the tables' session columns.
    fn session_decoder(&self) -> impl Fn(RowRef<'_>) -> ExecResult<SessionRecord> + Clone + use<> {
        let has_owner = self.tables.owner.is_some();
        move |r| SessionRecord::decode(r, has_owner)
    }

    /// Binds a new state (and, on SQLite, the client's clock) for [`sql::set_state`].
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

    /// Binds the store's owner when it is scoped, for [`sql::owner_filter`].
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

/// A create's error: a session id in use is [`Error::AlreadyExists`].
fn taken(e: Error, session_id: &str) -> Error {
    if e.is_unique_violation() {
        Error::AlreadyExists(format!("session `{session_id}` already exists"))
    } else {
        e
    }
}

/// A new session's row, for [`AdkStore::create_in`].
#[derive(Clone, Copy)]
struct NewSession<'a> {
    id: &'a str,
    app: &'a str,
    user: &'a str,
    state: &'a serde_json::Value,
    owner: Option<&'a Value>,
}

/// What SQLite's atomic append merges into the app and user state, in its transaction.
struct SqliteScopes<'a> {
    store: &'a AdkStore,
    app: &'a str,
    user: &'a str,
    deltas: &'a Deltas,
}

async fn sqlite_append_and_update(
    session: &mut Session,
    update: Arc<CachedSql>,
    insert: Arc<CachedSql>,
    binds: &[Param<'_>],
    has_owner: bool,
    scopes: SqliteScopes<'_>,
) -> Result<Option<SessionRecord>> {
    let mut tx = session.transaction().await?;
    let rows = tx
        .exec()
        .await?
        .map_rows(update, binds, |r| SessionRecord::decode(r, has_owner))
        .await?;
    let Some(record) = rows.into_iter().next() else {
        tx.rollback().await?;
        return Ok(None);
    };
    tx.exec().await?.execute(insert, binds).await?;
    let SqliteScopes {
        store,
        app,
        user,
        deltas,
    } = scopes;
    for (scope, delta) in [(Scope::App, &deltas.app), (Scope::User, &deltas.user)] {
        if let Some(delta) = delta {
            store
                .merge_scope(&mut tx, false, scope, app, user, delta)
                .await?;
        }
    }
    tx.commit().await?;
    Ok(Some(record))
}

/// What an atomic append reads back of the session it updated.
pub(crate) trait Readback: Sized + Send {
    /// Only the new update time is selected (PostgreSQL), not the whole row.
    const VERSION_ONLY: bool;
    /// The statement's row.
    fn decode(row: RowRef<'_>, has_owner: bool) -> ExecResult<Self>;
    /// SQLite's read-back, which is always the whole row.
    fn from_record(record: SessionRecord) -> Self;
}

impl Readback for SessionRecord {
    const VERSION_ONLY: bool = false;
    fn decode(row: RowRef<'_>, has_owner: bool) -> ExecResult<Self> {
        SessionRecord::decode(row, has_owner)
    }
    fn from_record(record: SessionRecord) -> Self {
        record
    }
}

/// The session's new update time, its version: all the service keeps of an append, so
/// the state is neither sent back by the server nor parsed again.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Version(pub(crate) DateTime<Utc>);

impl Readback for Version {
    const VERSION_ONLY: bool = true;
    fn decode(row: RowRef<'_>, _: bool) -> ExecResult<Self> {
        super::record::time_at(row, 0).map(Version)
    }
    fn from_record(record: SessionRecord) -> Self {
        Version(record.update_time)
    }
}

fn not_found(session_id: &str) -> Error {
    Error::NotFound(format!(
        "session `{session_id}` (create it first; it must match the event's app and user)"
    ))
}

fn event_already_exists(event: &EventRecord) -> Error {
    Error::AlreadyExists(format!("event `{}` already exists", event.id))
}

fn duplicate_event(e: Error, event: &EventRecord) -> Error {
    if e.is_unique_violation() {
        event_already_exists(event)
    } else {
        e
    }
}

/// In a whole-event column (SQLSpec 0.42's layouts and later) an event's actions are
/// JSON: a record whose actions are not (a pickle, from [`ActionsCodec::Pickle`]) cannot
/// be stored there.
fn check_actions(event: &EventRecord, form: Form) -> Result<()> {
    let Some(actions) = event.actions.as_deref().filter(|a| !a.is_empty()) else {
        return Ok(());
    };
    let Some(whole) = form.whole() else {
        return Ok(());
    };
    if serde_json::from_slice::<serde::de::IgnoredAny>(actions).is_ok() {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "event {}: its actions are not JSON (a pickle?), and the events table keeps each \
         event as JSON in `{}` (SQLSpec's layout): use ActionsCodec::Json",
        event.id, whole.column
    )))
}

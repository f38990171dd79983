//! `Session`: one live connection with the Spanner session's operations.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Instant;

use crate::conn::{Conn, ExecError, RawConnection};
use crate::database::Database;
use crate::error::{Class, Error, Result, classify, database_from, typed};

pub(crate) mod exec;
#[cfg(feature = "postgres")]
mod passthrough;
mod prepared;
mod query;
#[cfg(feature = "postgres")]
mod replica;
mod settle;
mod tally;
mod timed_stream;

pub(crate) use exec::{Context, Exec};
pub(crate) use prepared::{SchemaChanges, catch_up};
pub use query::{ReadContext, WithTimeout, WriteContext};
#[cfg(feature = "postgres")]
pub use replica::ReadAt;
pub(crate) use tally::Tally;

/// Labels and database role for new sessions (Spanner's `labels` and `database_role`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use]
#[non_exhaustive]
pub struct SessionOptions {
    /// User-assigned labels. They are kept on the session and, on PostgreSQL, are not sent.
    pub labels: BTreeMap<String, String>,
    /// A role to assume (PostgreSQL `SET ROLE`); SQLite has no roles.
    pub database_role: Option<String>,
}

impl SessionOptions {
    /// Adds a label.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Sets the database role.
    pub fn database_role(mut self, role: impl Into<String>) -> Self {
        self.database_role = Some(role.into());
        self
    }
}

/// The first server error in an open transaction (`Meta::tx_failed`).
#[derive(Debug)]
pub(crate) struct TxFailure {
    /// Its SQLSTATE and message.
    pub(crate) code: Option<String>,
    pub(crate) message: String,
    /// A serialization failure, deadlock or stale prepared statement: run again, the
    /// transaction can succeed.
    pub(crate) retryable: bool,
}

/// Bookkeeping of a created session, kept apart from its connection so a transaction can
/// borrow both.
#[derive(Debug)]
pub(crate) struct Meta {
    pub(crate) id: String,
    pub(crate) name: String,
    /// The PostgreSQL backend (host and pid) the session runs on.
    pub(crate) backend: Option<crate::database::Backend>,
    pub(crate) created_at: Instant,
    pub(crate) last_used: Instant,
    /// `last_used` on the coarse clock (a few ms resolution, a few ns to read), for the
    /// pools' idle checks on every checkout.
    pub(crate) touched: coarsetime::Instant,
    pub(crate) broken: bool,
    /// A `BEGIN`, `COMMIT` or `ROLLBACK` was cut off (its future dropped): the connection may
    /// still be inside a transaction, so the next use rolls back first.
    pub(crate) tx_dirty: bool,
    /// A transaction was begun and has not finished. Dropped half-way, sqlx queued its
    /// ROLLBACK on the connection (sent with the next message), or, through a transaction
    /// pooler, where this crate sends `BEGIN` and `COMMIT` itself, nothing is queued and the
    /// settle sends one (`settle.rs`).
    pub(crate) tx_open: bool,
    /// A statement in the open transaction failed on the server (PostgreSQL), and none has
    /// succeeded since (a `ROLLBACK TO SAVEPOINT`). The server would answer the COMMIT with
    /// a rollback, so `commit` reports it instead.
    pub(crate) tx_failed: Option<TxFailure>,
    /// The schema changes the connection's statement cache has been cleared for
    /// (`prepared.rs`): behind, it is cleared before the next statement.
    pub(crate) prepared_at: prepared::PreparedAt,
    /// A statement was sent and its answer not read to the end (its future or stream was
    /// dropped half-way): it may still run, so the next use stops it first (`settle.rs`).
    pub(crate) in_flight: bool,
    /// Through a transaction pooler: the mark each statement's text carries, by which a
    /// cut-off one is found and cancelled.
    #[cfg(feature = "postgres")]
    pub(crate) pooled_mark: Option<crate::pooler::Mark>,
    /// A direct PostgreSQL session that may go over to the pooler mode if it finds itself
    /// moved between server connections: no pooler was declared either way, and it
    /// assumed no role (`SET ROLE` on a shared server connection cannot be taken back).
    #[cfg(feature = "postgres")]
    pub(crate) may_go_pooled: bool,
    /// A statement failed because the server connection did not hold the session's
    /// prepared statements: before its next statement the session finds out why
    /// (`passthrough.rs`).
    #[cfg(feature = "postgres")]
    pub(crate) statements_lost: bool,
    /// Reset the connection's state before its next use (a pool's reset on release).
    pub(crate) needs_reset: bool,
    /// Times a pool handed the session out and got it back.
    pub(crate) uses: u64,
    /// The same, as the pool's statistics read them.
    pub(crate) tally: std::sync::Arc<Tally>,
    /// When a pool last handed the session out (for the use-time histogram).
    pub(crate) checked_out: Option<crate::stopwatch::Stopwatch>,
    /// The connection was lost before any COMMIT of the current transaction was sent (in
    /// `BEGIN` or a statement): the server rolls the transaction back, so it may run again
    /// on another session (`Pool::run_in_transaction`). A loss during COMMIT leaves the
    /// outcome unknown and clears it.
    pub(crate) lost_before_commit: bool,
    /// The last abort the database reported on this session (SQLSTATE or result code, and
    /// message), so a retry loop knows an attempt was aborted even when the application's
    /// own error type carried the failure out.
    pub(crate) last_abort: Option<(Option<String>, String)>,
    /// SQLite: the deadline the connection's progress handler checks.
    pub(crate) interrupt: Option<std::sync::Arc<crate::deadline::Interrupt>>,
}

impl Meta {
    /// Turns a failure into this crate's error, marking the session broken when its
    /// connection is gone.
    pub(crate) fn fail(&mut self, err: ExecError) -> Error {
        let err = match err {
            ExecError::Crate(e) => return e,
            ExecError::Sql(e) => e,
        };
        self.note_failure(&err);
        let class = classify(&err);
        if matches!(
            class,
            Class::ConnectionLost | Class::Overloaded { lost: true } | Class::StatementPooling
        ) {
            self.broken = true;
            tracing::debug!(
                target: "session_pool::session", session = %self.name, error = %err,
                "session lost its connection"
            );
        }
        if class == Class::UndeclaredPooler && self.finds_out_why() {
            // Outside a transaction nothing ran (the server refused the statement's Parse
            // or Bind), and the executor runs it again; inside one, it is aborted.
            if self.tx_open {
                return self.aborted(
                    err,
                    "the session's prepared statements were not on the server connection",
                );
            }
        } else if class == Class::UndeclaredPooler {
            // Its statement cache matches no server connection any more.
            self.broken = true;
            tracing::warn!(
                target: "session_pool::session", session = %self.name, error = %err,
                "a transaction-mode pooler moved this session between server connections: \
                 open the database with ?pgbouncer=true"
            );
        }
        if class == Class::StalePlan {
            self.prepared_at.went_stale();
            if self.tx_open {
                // The transaction is aborted; run again, with the statements prepared
                // anew, it can succeed: a retryable abort.
                return self.aborted(
                    err,
                    "a schema change altered the columns a prepared statement returns",
                );
            }
        }
        if class == Class::ConnectionLost {
            self.lost_before_commit = true;
            return Error::SessionNotFound {
                name: self.name.clone(),
                reason: err.to_string(),
                source: Some(err),
            };
        }
        match typed(class, err) {
            Ok(e) => {
                if let Error::Aborted { code, message, .. } = &e {
                    self.last_abort = Some((code.clone(), message.clone()));
                }
                e
            }
            Err(err) => database_from(err),
        }
    }

    /// A server error that aborted the open transaction for a reason that running it again
    /// mends (`why`): a retryable [`Error::Aborted`].
    fn aborted(&mut self, err: sqlx::Error, why: &str) -> Error {
        let (code, message) = crate::error::describe(&err);
        let message = format!("{message} ({why}; run the transaction again)");
        self.last_abort = Some((code.clone(), message.clone()));
        Error::Aborted {
            code,
            message,
            source: Some(err),
        }
    }

    /// A statement failed because the server connection lacked the session's prepared
    /// statements. True if the session finds out why before its next statement
    /// (`passthrough.rs`): moved by a pooler, it goes over to the pooler mode; on its own
    /// backend, it prepares its statements anew. False if it cannot go over (a declared
    /// mode, a role), and is given up instead.
    #[cfg(feature = "postgres")]
    fn finds_out_why(&mut self) -> bool {
        self.statements_lost = self.may_go_pooled && self.pooled_mark.is_none();
        self.statements_lost
    }

    #[cfg(not(feature = "postgres"))]
    fn finds_out_why(&mut self) -> bool {
        false
    }

    /// The session's connection is to be used as through a transaction pooler from now
    /// on: it names no backend, and its statements carry a mark.
    #[cfg(feature = "postgres")]
    pub(crate) fn go_pooled(&mut self) {
        if self.pooled_mark.is_some() {
            return;
        }
        let host = self.backend.take().map_or(0, |b| b.host);
        let key = uuid::Uuid::parse_str(&self.id).map_or(0, |u| u.as_u64_pair().0);
        self.pooled_mark = Some(crate::pooler::Mark { host, key });
    }

    /// Notes a server error that aborts the open transaction, if one is open (see
    /// `tx_failed`); the first one counts.
    pub(crate) fn note_failure(&mut self, err: &sqlx::Error) {
        if self.tx_open && self.tx_failed.is_none() && crate::error::fails_transaction(err) {
            let (code, message) = crate::error::describe(err);
            self.tx_failed = Some(TxFailure {
                code,
                message,
                retryable: matches!(classify(err), Class::Aborted | Class::StalePlan),
            });
        }
    }

    /// [`fail`](Meta::fail) for a failed COMMIT: a connection lost while it was in flight
    /// leaves its outcome unknown.
    pub(crate) fn fail_commit(&mut self, err: sqlx::Error) -> Error {
        match self.fail(err.into()) {
            Error::SessionNotFound { reason, source, .. } => {
                self.lost_before_commit = false;
                Error::CommitUnknown {
                    message: format!("the connection was lost during COMMIT: {reason}"),
                    source,
                }
            }
            other => other,
        }
    }

    pub(crate) fn not_found(&self, reason: String) -> Error {
        Error::SessionNotFound {
            name: self.name.clone(),
            reason,
            source: None,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Live {
    pub(crate) conn: Conn,
    pub(crate) meta: Meta,
    /// A session on one of the database's read replicas, for bounded reads.
    #[cfg(feature = "postgres")]
    pub(crate) replica: Option<replica::Link>,
}

/// One server-side session: a single live connection (Spanner's `Session`).
///
/// Create it with [`Database::session`], then [`create`](Session::create) it; or take one
/// from a pool. Every operation takes `&mut self`: a session runs one thing at a time, as a
/// connection does. Queries come from [`ReadContext`] and [`WriteContext`] (in the prelude),
/// shared with [`Transaction`](crate::Transaction) and [`Snapshot`](crate::Snapshot).
///
/// Every future it returns may be dropped at any await (a request timeout, a client gone).
/// A statement cut off that way is stopped, not left to run: before the session serves
/// again (at once, by its pool's maintenance task, for a pooled session) the statement is
/// cancelled on the server if it has not answered within 20 ms (PostgreSQL
/// `pg_cancel_backend`, through a transaction pooler found by a mark in its text; SQLite's
/// interrupt), what is left of its answer is read, and an open transaction is rolled back,
/// so its locks go.
///
/// ```no_run
/// # async fn demo() -> session_pool::Result<()> {
/// use session_pool::prelude::*;
/// use session_pool::{Database, params};
/// let db = Database::open("sqlite::memory:").await?;
/// let mut session = db.session();
/// session.create().await?;
/// let rows = session.execute_sql("SELECT $1 + 1 AS n", &params![41]).await?;
/// assert_eq!(rows.one()?.get::<i64>("n")?, 42);
/// session.delete().await?;
/// # Ok(()) }
/// ```
pub struct Session {
    database: Database,
    /// Shared by all the sessions of a pool.
    options: std::sync::Arc<SessionOptions>,
    /// Boxed so that a `Session` is a few words and cheap to move through pool queues.
    pub(crate) live: Option<Box<Live>>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Session");
        d.field("database", &self.database.name());
        match &self.live {
            Some(live) => d
                .field("session_id", &live.meta.id)
                .field("backend", &live.meta.backend)
                .field("broken", &live.meta.broken),
            None => d.field("created", &false),
        };
        d.finish()
    }
}

/// The session's role, quoted for `SET ROLE`.
fn quoted_role(options: &SessionOptions) -> Result<Option<String>> {
    options.database_role.as_deref().map(quote_role).transpose()
}

/// Quotes a role name as a PostgreSQL identifier: any text is safe this way.
fn quote_role(role: &str) -> Result<String> {
    if role.is_empty() || role.contains('\0') || role.len() > crate::ident::MAX_IDENT_LEN {
        return Err(Error::invalid(format!(
            "database role {role:?} must be 1 to {} bytes with no NUL",
            crate::ident::MAX_IDENT_LEN
        )));
    }
    Ok(format!("\"{}\"", role.replace('"', "\"\"")))
}

impl Database {
    /// A new, not yet created session with no labels and no role.
    pub fn session(&self) -> Session {
        Session::new(self.clone(), Default::default())
    }

    /// A new, not yet created session with labels and a database role.
    pub fn session_with(&self, options: SessionOptions) -> Session {
        Session::new(self.clone(), std::sync::Arc::new(options))
    }
}

impl Session {
    pub(crate) fn new(database: Database, options: std::sync::Arc<SessionOptions>) -> Session {
        Session {
            database,
            options,
            live: None,
        }
    }

    /// Deletes the session, logging instead of returning a failure: for pools retiring
    /// sessions they no longer need.
    pub(crate) async fn retire(mut self) {
        if self.is_broken() {
            return; // Already gone on the server; dropping closes what is left.
        }
        if let Err(e) = self.delete().await {
            tracing::debug!(target: "session_pool::pool", error = %e, "retired session was already gone");
        }
    }

    /// The database this session belongs to.
    pub fn database(&self) -> &Database {
        &self.database
    }

    /// User-assigned labels (empty if none were given).
    pub fn labels(&self) -> &BTreeMap<String, String> {
        &self.options.labels
    }

    /// The database role the session assumes, if any.
    pub fn database_role(&self) -> Option<&str> {
        self.options.database_role.as_deref()
    }

    /// The session's id, set by [`create`](Session::create).
    pub fn session_id(&self) -> Option<&str> {
        self.live.as_ref().map(|l| l.meta.id.as_str())
    }

    /// `{database name}/sessions/{session_id}`; [`Error::NotCreated`] before `create()`.
    pub fn name(&self) -> Result<&str> {
        self.live
            .as_ref()
            .map(|l| l.meta.name.as_str())
            .ok_or(Error::NotCreated)
    }

    /// True between `create()` and `delete()`.
    pub fn is_created(&self) -> bool {
        self.live.is_some()
    }

    /// The backend (host and pid) serving this session, for the pool.
    pub(crate) fn backend(&self) -> Option<crate::database::Backend> {
        self.live.as_ref().and_then(|l| l.meta.backend)
    }

    /// The PostgreSQL backend process id serving this session (`pg_backend_pid()`).
    /// `None` on SQLite, and through a transaction pooler
    /// ([`DatabaseOptions::transaction_pooler`](crate::DatabaseOptions::transaction_pooler)),
    /// where each transaction may run on another backend.
    pub fn backend_pid(&self) -> Option<i32> {
        self.live
            .as_ref()
            .and_then(|l| l.meta.backend.map(|b| b.pid))
    }

    /// When the session was created.
    pub fn created_at(&self) -> Option<Instant> {
        self.live.as_ref().map(|l| l.meta.created_at)
    }

    /// When the session last started an operation (for pools deciding whom to check).
    pub fn last_used(&self) -> Option<Instant> {
        self.live.as_ref().map(|l| l.meta.last_used)
    }

    /// How long the session has been unused as of `now`, on the coarse clock (a few ms
    /// resolution): what the pools check on every checkout, where `Instant::now()` would be
    /// a noticeable part of the cost.
    pub(crate) fn idle_for(&self, now: coarsetime::Instant) -> Option<std::time::Duration> {
        self.live
            .as_ref()
            .map(|l| now.duration_since(l.meta.touched).into())
    }

    /// When the session last started an operation, on the coarse clock.
    pub(crate) fn touched(&self) -> Option<coarsetime::Instant> {
        self.live.as_ref().map(|l| l.meta.touched)
    }

    /// True once the session's connection is known to be gone; such a session must not be
    /// handed out again.
    pub fn is_broken(&self) -> bool {
        self.live.as_ref().is_some_and(|l| l.meta.broken)
    }

    /// Whether the connection was lost before the current transaction's COMMIT was sent
    /// (see `Meta::lost_before_commit`).
    pub(crate) fn lost_before_commit(&self) -> bool {
        self.live
            .as_ref()
            .is_some_and(|l| l.meta.lost_before_commit)
    }

    pub(crate) fn set_lost_before_commit(&mut self, lost: bool) {
        if let Some(l) = &mut self.live {
            l.meta.lost_before_commit = lost;
        }
    }

    /// Marks the session as unusable (for example after a raw sqlx query failed on it).
    pub fn mark_broken(&mut self) {
        if let Some(l) = &mut self.live {
            l.meta.broken = true;
        }
    }

    /// Creates the session: opens its connection, learns its backend pid and assumes its
    /// database role. [`Error::AlreadyCreated`] if it exists; [`Error::Unsupported`] for a
    /// role on SQLite; [`Error::Connect`] if the server cannot be reached.
    pub async fn create(&mut self) -> Result<()> {
        let span = crate::telemetry::session_op(self.database.telemetry(), "create_session");
        crate::telemetry::traced(span, std::pin::pin!(self.create_untraced())).await
    }

    async fn create_untraced(&mut self) -> Result<()> {
        if let Some(live) = &self.live {
            return Err(Error::AlreadyCreated {
                name: live.meta.name.clone(),
            });
        }
        let role = quoted_role(&self.options)?;
        #[cfg(feature = "sqlite")]
        if role.is_some() && self.database.dialect() == crate::dialect::Dialect::Sqlite {
            return Err(Error::Unsupported(
                "SQLite has no database roles; create the session without `database_role`".into(),
            ));
        }
        let database = &self.database;
        let statement_timeout = database.statement_timeout();
        let (conn, (prepared, host)) = database
            .bounded_connect(async {
                let (mut conn, host) = database.connect().await?;
                let crate_error = |e| match e {
                    ExecError::Crate(e) => e,
                    ExecError::Sql(e) => crate::error::from_sqlx(e),
                };
                let detect = database.detects_pooler();
                let first = conn
                    .prepare_session(role.as_deref(), statement_timeout, detect)
                    .await;
                // A pooler shares the server connection: the check found the statement
                // renamed or another client's there, or the first statement itself met
                // another client's of the same name (or was prepared and bound on
                // different server connections). Nothing was set on it: readied again as
                // through a declared pooler.
                let shared = match &first {
                    Ok(prepared) => prepared.pooler_found,
                    #[cfg(feature = "postgres")]
                    Err(ExecError::Sql(e)) => {
                        classify(e) == Class::UndeclaredPooler && database.pooler_undeclared()
                    }
                    Err(_) => false,
                };
                let prepared = if shared {
                    database.found_pooler();
                    conn = conn.into_pooled();
                    conn.prepare_session(role.as_deref(), statement_timeout, false)
                        .await
                } else {
                    first
                }
                .map_err(crate_error)?;
                Ok((conn, (prepared, host)))
            })
            .await?;
        let uuid = uuid::Uuid::new_v4();
        #[cfg(feature = "postgres")]
        let pooled_mark = matches!(conn, Conn::PgPooled(_)).then(|| crate::pooler::Mark {
            host,
            key: uuid.as_u64_pair().0,
        });
        let id = uuid.simple().to_string();
        let now = Instant::now();
        let meta = Meta {
            name: format!("{}/sessions/{id}", self.database.name()),
            id,
            backend: prepared
                .pid
                .map(|pid| crate::database::Backend { host, pid }),
            created_at: now,
            last_used: now,
            touched: coarsetime::Instant::now_without_cache_update(),
            broken: false,
            tx_dirty: false,
            tx_open: false,
            tx_failed: None,
            lost_before_commit: false,
            prepared_at: prepared::PreparedAt::new(self.database.schema_changes()),
            in_flight: false,
            #[cfg(feature = "postgres")]
            pooled_mark,
            #[cfg(feature = "postgres")]
            may_go_pooled: role.is_none() && self.database.pooler_undeclared(),
            #[cfg(feature = "postgres")]
            statements_lost: false,
            needs_reset: false,
            uses: 0,
            tally: std::sync::Arc::default(),
            checked_out: None,
            last_abort: None,
            interrupt: prepared.interrupt,
        };
        tracing::debug!(
            target: "session_pool::session", session = %meta.name, backend = ?meta.backend,
            "session created"
        );
        self.live = Some(Box::new(Live {
            conn,
            meta,
            #[cfg(feature = "postgres")]
            replica: None,
        }));
        Ok(())
    }

    /// The connection, ready for a statement: created, not broken, and out of any
    /// transaction that a cancelled future left open.
    pub(crate) async fn ready(&mut self) -> Result<(RawConnection<'_>, &mut Meta, &Database)> {
        if self.needs_upkeep()? {
            // Boxed: rare, and its round trips' state would otherwise sit in every
            // statement's future.
            Box::pin(self.upkeep()).await?;
        }
        let live = self.live.as_mut().ok_or(Error::NotCreated)?;
        live.meta.last_used = Instant::now();
        live.meta.touched = coarsetime::Instant::now_without_cache_update();
        Ok((live.conn.as_mut(), &mut live.meta, &self.database))
    }

    /// True when the connection needs work before its next statement (see
    /// [`upkeep`](Session::upkeep)); an error when the session cannot serve at all.
    fn needs_upkeep(&self) -> Result<bool> {
        let live = self.live.as_ref().ok_or(Error::NotCreated)?;
        if live.meta.broken {
            return Err(live.meta.not_found("the session was marked broken".into()));
        }
        let due =
            live.unsettled() || live.meta.needs_reset || live.meta.prepared_at.behind().is_some();
        #[cfg(feature = "postgres")]
        let due = due
            || live.meta.statements_lost
            || (matches!(live.conn, Conn::Postgres(_)) && self.database.transaction_pooler());
        Ok(due)
    }

    /// The work [`needs_upkeep`](Session::needs_upkeep) found: settles what a cancelled
    /// future left, finds out where a pooler moved the session, prepares statements anew
    /// after a schema change, resets the session's state. Each step checks its own
    /// condition; a step added here needs its condition in `needs_upkeep` too, or it
    /// never runs.
    async fn upkeep(&mut self) -> Result<()> {
        let live = self.live.as_mut().ok_or(Error::NotCreated)?;
        if live.unsettled() {
            live.settle(&self.database).await?;
        }
        #[cfg(feature = "postgres")]
        if live.meta.statements_lost {
            let db = &self.database;
            passthrough::find_out(live.conn.as_mut(), &mut live.meta, db).await?;
        }
        #[cfg(feature = "postgres")]
        if matches!(live.conn, Conn::Postgres(_)) && self.database.transaction_pooler() {
            // Another session found a pooler that passes statement names through.
            self.go_pooled()?;
        }
        let live = self.live.as_mut().ok_or(Error::NotCreated)?;
        let timeout = self.database.check_timeout();
        // Before anything else is prepared on it.
        prepared::catch_up(live.conn.as_mut(), &mut live.meta, &self.database).await?;
        if live.meta.needs_reset {
            let role = quoted_role(&self.options)?;
            let reset = live
                .conn
                .reset(role.as_deref(), self.database.statement_timeout());
            if let Err(err) = upkeep(&mut live.meta, timeout, "the reset", reset).await {
                // A session whose state could not be reset must not serve anyone.
                live.meta.broken = true;
                return Err(err);
            }
            live.meta.needs_reset = false;
        }
        Ok(())
    }

    /// Goes over to the pooler mode the database found (`passthrough.rs`), unless the
    /// session assumed a role: then it is given up, since the role may be set on a server
    /// connection the pooler shares.
    #[cfg(feature = "postgres")]
    fn go_pooled(&mut self) -> Result<()> {
        let Some(live) = self.live.take() else {
            return Ok(());
        };
        let Live {
            conn,
            mut meta,
            replica,
        } = *live;
        let res = if meta.may_go_pooled {
            meta.go_pooled();
            Ok(())
        } else {
            meta.broken = true;
            Err(crate::pooler::role_refused())
        };
        let conn = if meta.broken {
            conn
        } else {
            conn.into_pooled()
        };
        self.live = Some(Box::new(Live {
            conn,
            meta,
            replica,
        }));
        res
    }

    /// True if the session's connection is alive on the server: one cheap round trip.
    /// False if it was never created, was deleted, or the server dropped it.
    pub async fn exists(&mut self) -> Result<bool> {
        let Some(live) = self.live.as_mut() else {
            return Ok(false);
        };
        if live.meta.broken {
            return Ok(false);
        }
        if live.unsettled() && Box::pin(live.settle(&self.database)).await.is_err() {
            return Ok(false); // settling gave the session up
        }
        let timeout = self.database.check_timeout();
        match tokio::time::timeout(timeout, live.conn.ping()).await {
            Ok(Ok(())) => Ok(true),
            Ok(Err(e)) => {
                let err = live.meta.fail(e.into());
                if live.meta.broken {
                    Ok(false)
                } else {
                    Err(err)
                }
            }
            Err(_) => {
                // A server that does not answer a ping within the check timeout is as good
                // as gone: what was sent may still be in flight, so the connection cannot
                // be reused either.
                live.meta.broken = true;
                tracing::debug!(target: "session_pool::session", session = %live.meta.name,
                    ?timeout, "no answer to a ping within the check timeout");
                Ok(false)
            }
        }
    }

    /// Notes when a pool handed the session out.
    pub(crate) fn checked_out(&mut self, watch: crate::stopwatch::Stopwatch) {
        if let Some(live) = self.live.as_mut() {
            live.meta.checked_out = Some(watch);
        }
    }

    /// When a pool last handed the session out, forgotten as it is read.
    pub(crate) fn checkout_watch(&mut self) -> Option<crate::stopwatch::Stopwatch> {
        self.live.as_mut().and_then(|l| l.meta.checked_out.take())
    }

    /// The session's checkout counts, for its pool's statistics.
    pub(crate) fn tally(&self) -> Option<&std::sync::Arc<Tally>> {
        self.live.as_ref().map(|l| &l.meta.tally)
    }

    /// Gives the session fresh checkout counts (it joins another pool).
    pub(crate) fn fresh_tally(&mut self) -> Option<&std::sync::Arc<Tally>> {
        let live = self.live.as_mut()?;
        live.meta.tally = std::sync::Arc::default();
        Some(&live.meta.tally)
    }

    /// Counts a checkout of the session (its holder is the only writer).
    pub(crate) fn count_acquired(&mut self) {
        if let Some(l) = &self.live {
            l.meta.tally.count_acquired();
        }
    }

    /// Counts the session given back by a pool's user (its holder is the only writer).
    pub(crate) fn count_released(&mut self) {
        if let Some(l) = &self.live {
            l.meta.tally.count_released();
        }
    }

    /// Counts one more use by a pool's user; returns the count.
    pub(crate) fn count_use(&mut self) -> u64 {
        self.live.as_mut().map_or(0, |l| {
            l.meta.uses += 1;
            l.meta.uses
        })
    }

    /// Resets the session's state before its next use (see `PoolOptions::reset_on_release`).
    pub(crate) fn reset_before_next_use(&mut self) {
        if let Some(live) = self.live.as_mut() {
            live.meta.needs_reset = true;
        }
    }

    /// True when a cut-off use left something on the connection (a statement still
    /// running, a transaction open: see `settle.rs`) that the next use settles first.
    pub(crate) fn needs_settling(&self) -> bool {
        self.live
            .as_ref()
            .is_some_and(|l| l.unsettled() && !l.meta.broken)
    }

    /// Settles now what a cut-off use left (see [`needs_settling`](Session::needs_settling)),
    /// each step within the check timeout.
    pub(crate) async fn settle(&mut self) -> Result<()> {
        match self.live.as_mut() {
            Some(live) if live.unsettled() && !live.meta.broken => {
                live.settle(&self.database).await
            }
            _ => Ok(()),
        }
    }

    /// Deletes the session: closes its connection. [`Error::NotCreated`] if there is none;
    /// [`Error::SessionNotFound`] if the server had already dropped it.
    pub async fn delete(&mut self) -> Result<()> {
        let span = crate::telemetry::session_op(self.database.telemetry(), "delete_session");
        crate::telemetry::traced(span, std::pin::pin!(self.delete_untraced())).await
    }

    async fn delete_untraced(&mut self) -> Result<()> {
        let Some(live) = self.live.take() else {
            return Err(Error::NotCreated);
        };
        if live.meta.broken {
            return Err(live.meta.not_found("the session was already lost".into()));
        }
        let mut live = *live;
        if live.unsettled() {
            // A cut-off statement would otherwise run on, and hold its locks, after the close.
            live.settle(&self.database).await?;
        }
        let timeout = self.database.check_timeout();
        // Closing alone cannot tell a live session from one the server dropped: ask first.
        match tokio::time::timeout(timeout, live.conn.ping()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let err = live.meta.fail(e.into());
                if live.meta.broken {
                    return Err(err);
                }
            }
            Err(_) => {
                return Err(live.meta.not_found(format!(
                    "the server did not answer within the check timeout ({timeout:?})"
                )));
            }
        }
        let close = live.conn.close();
        let closed = tokio::time::timeout(timeout, close).await.unwrap_or(Ok(()));
        if let Err(e) = closed {
            tracing::debug!(target: "session_pool::session", session = %live.meta.name, error = %e,
                "error while closing a session");
        }
        tracing::debug!(target: "session_pool::session", session = %live.meta.name, "session deleted");
        Ok(())
    }

    /// Keeps the session alive by running `SELECT 1`. [`Error::NotCreated`] if it was never
    /// created, [`Error::SessionNotFound`] if the server dropped it.
    pub async fn ping(&mut self) -> Result<()> {
        let timeout = self.database.check_timeout();
        let mut exec = self.exec().await?;
        exec.limit = Some(crate::session::exec::Limit::lost_after(timeout));
        exec.execute(crate::conn::fixed("SELECT 1"), crate::param::NONE)
            .await?;
        Ok(())
    }

    /// The sqlx connection, for typed queries. See [`RawConnection`].
    pub async fn connection(&mut self) -> Result<RawConnection<'_>> {
        let (conn, _, _) = self.ready().await?;
        Ok(conn)
    }
}

/// Runs `work`, upkeep of the session's connection before its next statement, within the
/// check timeout `timeout`. A failure is the session's error (`Meta::fail`); no answer in
/// time leaves the session broken.
async fn upkeep(
    meta: &mut Meta,
    timeout: std::time::Duration,
    what: &str,
    work: impl Future<Output = crate::conn::ExecResult<()>>,
) -> Result<()> {
    match tokio::time::timeout(timeout, work).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(meta.fail(e)),
        Err(_) => {
            meta.broken = true;
            Err(meta.not_found(format!(
                "the server did not answer {what} within the check timeout"
            )))
        }
    }
}

impl Context for Session {
    async fn exec(&mut self) -> Result<Exec<'_>> {
        let (conn, meta, db) = self.ready().await?;
        Ok(Exec::new(conn, meta, db))
    }
}

impl ReadContext for Session {}
impl WriteContext for Session {}

//! `Session`: one live connection with the Spanner session's operations.
//!
//! This file holds the session and what it tells about itself; `life.rs` creates, readies,
//! checks and deletes it, `meta.rs` keeps its bookkeeping and turns failures into errors,
//! `pooling.rs` holds what a pool notes on it, `exec.rs` and `query.rs` run statements
//! (`limit.rs` bounds each), `settle.rs` stops what a cut-off use left, `passthrough.rs`
//! and `prepared.rs` catch up with a pooler or a schema change, and `replica.rs` reads
//! from a replica.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Instant;

use crate::conn::{Conn, RawConnection};
use crate::database::Database;
use crate::error::{Error, Result};

pub(crate) mod exec;
mod life;
mod limit;
mod meta;
#[cfg(feature = "postgres")]
mod passthrough;
mod pooling;
mod prepared;
mod query;
#[cfg(feature = "postgres")]
mod replica;
mod settle;
mod tally;
mod timed_stream;

pub(crate) use exec::{Context, Exec};
pub(crate) use meta::{Meta, TxFailure};
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
    /// Boxed so that a `Session` is one word: it moves through the pool's queue and its
    /// guard in one register, where three words were copied through the stack at every
    /// call and read back in other widths than they were written (BENCHMARKS.md 1m).
    parts: Box<Parts>,
}

// A checkout moves a `Session` several times; keep it one word.
const _: () = assert!(std::mem::size_of::<Session>() == std::mem::size_of::<usize>());

/// What a session is made of, behind its one box.
struct Parts {
    database: Database,
    /// Shared by all the sessions of a pool.
    options: std::sync::Arc<SessionOptions>,
    pub(crate) live: Option<Live>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Session");
        d.field("database", &self.parts.database.name());
        match &self.parts.live {
            Some(live) => d
                .field("session_id", &live.meta.id)
                .field("backend", &live.meta.backend)
                .field("broken", &live.meta.broken),
            None => d.field("created", &false),
        };
        d.finish()
    }
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
            parts: Box::new(Parts {
                database,
                options,
                live: None,
            }),
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
        &self.parts.database
    }

    /// User-assigned labels (empty if none were given).
    pub fn labels(&self) -> &BTreeMap<String, String> {
        &self.parts.options.labels
    }

    /// The database role the session assumes, if any.
    pub fn database_role(&self) -> Option<&str> {
        self.parts.options.database_role.as_deref()
    }

    /// The session's id, set by [`create`](Session::create).
    pub fn session_id(&self) -> Option<&str> {
        self.parts.live.as_ref().map(|l| l.meta.id.as_str())
    }

    /// `{database name}/sessions/{session_id}`; [`Error::NotCreated`] before `create()`.
    pub fn name(&self) -> Result<&str> {
        self.parts
            .live
            .as_ref()
            .map(|l| l.meta.name.as_str())
            .ok_or(Error::NotCreated)
    }

    /// True between `create()` and `delete()`.
    pub fn is_created(&self) -> bool {
        self.parts.live.is_some()
    }

    /// The backend (host and pid) serving this session, for the pool.
    pub(crate) fn backend(&self) -> Option<crate::database::Backend> {
        self.parts.live.as_ref().and_then(|l| l.meta.backend)
    }

    /// The PostgreSQL backend process id serving this session (`pg_backend_pid()`).
    /// `None` on SQLite, and through a transaction pooler
    /// ([`DatabaseOptions::transaction_pooler`](crate::DatabaseOptions::transaction_pooler)),
    /// where each transaction may run on another backend.
    pub fn backend_pid(&self) -> Option<i32> {
        self.parts
            .live
            .as_ref()
            .and_then(|l| l.meta.backend.map(|b| b.pid))
    }

    /// When the session was created.
    pub fn created_at(&self) -> Option<Instant> {
        self.parts.live.as_ref().map(|l| l.meta.created_at)
    }

    /// When the session last started an operation (for pools deciding whom to check).
    pub fn last_used(&self) -> Option<Instant> {
        self.parts.live.as_ref().map(|l| l.meta.last_used)
    }

    /// How long the session has been unused as of `now`, on the coarse clock (a few ms
    /// resolution): what the pools check on every checkout, where `Instant::now()` would be
    /// a noticeable part of the cost.
    pub(crate) fn idle_for(&self, now: coarsetime::Instant) -> Option<std::time::Duration> {
        self.parts
            .live
            .as_ref()
            .map(|l| now.duration_since(l.meta.touched).into())
    }

    /// When the session last started an operation, on the coarse clock.
    pub(crate) fn touched(&self) -> Option<coarsetime::Instant> {
        self.parts.live.as_ref().map(|l| l.meta.touched)
    }

    /// True once the session's connection is known to be gone; such a session must not be
    /// handed out again.
    pub fn is_broken(&self) -> bool {
        self.parts.live.as_ref().is_some_and(|l| l.meta.broken)
    }

    /// Whether the connection was lost before the current transaction's COMMIT was sent
    /// (see `Meta::lost_before_commit`).
    pub(crate) fn lost_before_commit(&self) -> bool {
        self.parts
            .live
            .as_ref()
            .is_some_and(|l| l.meta.lost_before_commit)
    }

    pub(crate) fn set_lost_before_commit(&mut self, lost: bool) {
        if let Some(l) = &mut self.parts.live {
            l.meta.lost_before_commit = lost;
        }
    }

    /// Marks the session as unusable (for example after a raw sqlx query failed on it).
    pub fn mark_broken(&mut self) {
        if let Some(l) = &mut self.parts.live {
            l.meta.broken = true;
        }
    }

    /// Keeps the session alive by running `SELECT 1`. [`Error::NotCreated`] if it was never
    /// created, [`Error::SessionNotFound`] if the server dropped it.
    pub async fn ping(&mut self) -> Result<()> {
        let timeout = self.parts.database.check_timeout();
        let mut exec = self.exec().await?;
        exec.limit = Some(limit::Limit::lost_after(timeout));
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

impl Context for Session {
    async fn exec(&mut self) -> Result<Exec<'_>> {
        let (conn, meta, db) = self.ready().await?;
        Ok(Exec::new(conn, meta, db))
    }
}

impl ReadContext for Session {}
impl WriteContext for Session {}

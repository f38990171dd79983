//! `Database`: where sessions come from.
//!
//! This file holds the database and what it tells about itself; `options.rs` how to open
//! one, `open.rs` opening it and its sessions' connections, `signal.rs` cancelling and
//! terminating a session's backend.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::dialect::Dialect;
#[cfg(doc)]
use crate::error::Error;
use crate::error::Result;
use crate::schema::SchemaCache;

#[cfg(feature = "sqlite")]
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

mod open;
mod options;
#[cfg(feature = "postgres")]
mod signal;

pub use options::DatabaseOptions;

enum Target {
    #[cfg(feature = "sqlite")]
    Sqlite(Box<SqliteConnectOptions>),
    #[cfg(feature = "postgres")]
    Postgres(crate::hosts::Hosts),
}

pub(crate) struct Inner {
    name: String,
    target: Target,
    connect_timeout: Duration,
    check_timeout: Duration,
    statement_timeout: Option<Duration>,
    /// PostgreSQL through a transaction pooler: declared, or found.
    pooler: crate::pooler::PoolerMode,
    /// Cancels and terminations waiting to be sent, gathered (see `signals.rs`).
    #[cfg(feature = "postgres")]
    signals: crate::signals::Signals,
    /// Read replicas, in the order given.
    replicas: Vec<Database>,
    /// Until when each replica is skipped after it could not be reached.
    replica_down: parking_lot::Mutex<Vec<Option<std::time::Instant>>>,
    telemetry: crate::telemetry::DbMeta,
    pub(crate) schema: SchemaCache,
    /// Stale statements met by its sessions (`session/prepared.rs`).
    schema_changes: crate::session::SchemaChanges,
    /// Keeps an in-memory SQLite database alive while the `Database` lives, so that its
    /// sessions share it even when none is open.
    #[cfg(feature = "sqlite")]
    _keeper: Option<parking_lot::Mutex<SqliteConnection>>,
}

/// A database that sessions connect to (Spanner's `Database`). Cheap to clone.
///
/// ```no_run
/// # async fn demo() -> session_pool::Result<()> {
/// use session_pool::Database;
/// let db = Database::open("sqlite://app.db").await?;          // a file, created if missing
/// let mem = Database::open("sqlite::memory:").await?;         // in-memory, shared by its sessions
/// let pg = Database::open("postgres://user@localhost/app").await?;
/// println!("{}", db.name());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Database {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Database")
            .field("name", &self.inner.name)
            .field("dialect", &self.dialect())
            .finish()
    }
}

/// A PostgreSQL backend a session runs on: which of the database's hosts, and its pid
/// there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Backend {
    pub(crate) host: usize,
    pub(crate) pid: i32,
}

impl Database {
    /// Opens `url` with default [`DatabaseOptions`].
    ///
    /// URLs: `sqlite://path/to/file.db` (created if missing), `sqlite::memory:` (one
    /// in-memory database shared by all sessions of this `Database`), `postgres://…` or
    /// `postgresql://…`. A malformed URL is [`Error::InvalidUrl`]; an unreachable server
    /// is [`Error::Connect`].
    pub async fn open(url: &str) -> Result<Database> {
        DatabaseOptions::new(url).open().await
    }

    /// A stable resource name: `sqlite:///abs/path.db`, `sqlite::memory:…` or
    /// `postgres://host:port/dbname` (never a password).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Which SQL dialect this database speaks.
    pub fn dialect(&self) -> Dialect {
        match self.inner.target {
            #[cfg(feature = "sqlite")]
            Target::Sqlite(_) => Dialect::Sqlite,
            #[cfg(feature = "postgres")]
            Target::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Forgets the primary-key and index columns learned for `read` and mutations; call it
    /// after changing a table's key or indexes under a live `Database`.
    pub fn clear_schema_cache(&self) {
        self.inner.schema.clear();
    }

    /// The count of stale statements its sessions met, which each session's statement
    /// cache follows.
    pub(crate) fn schema_changes(&self) -> &crate::session::SchemaChanges {
        &self.inner.schema_changes
    }

    /// How long a check (exists, ping, rollback of an abandoned transaction) may take.
    pub(crate) fn check_timeout(&self) -> Duration {
        self.inner.check_timeout
    }

    /// What tracing spans say about this database.
    pub(crate) fn telemetry(&self) -> &crate::telemetry::DbMeta {
        &self.inner.telemetry
    }

    /// The read replicas ([`DatabaseOptions::replica`]), each a database of its own.
    pub fn replicas(&self) -> &[Database] {
        &self.inner.replicas
    }

    /// Whether replica `i` may be tried: not marked down in the last second.
    #[cfg(feature = "postgres")]
    pub(crate) fn replica_up(&self, i: usize) -> bool {
        self.inner
            .replica_down
            .lock()
            .get(i)
            .copied()
            .flatten()
            .is_none_or(|until| std::time::Instant::now() >= until)
    }

    /// Skips replica `i` for a second: it could not be reached.
    #[cfg(feature = "postgres")]
    pub(crate) fn replica_failed(&self, i: usize) {
        if let Some(slot) = self.inner.replica_down.lock().get_mut(i) {
            *slot = Some(std::time::Instant::now() + Duration::from_secs(1));
        }
    }

    /// Whether sessions go through a transaction pooler: declared
    /// ([`DatabaseOptions::transaction_pooler`], `?pgbouncer=true`), or found by a session
    /// since the database was opened.
    pub fn transaction_pooler(&self) -> bool {
        self.inner.pooler.pooled()
    }

    /// A new direct session should check whether a pooler renames its statements.
    pub(crate) fn detects_pooler(&self) -> bool {
        self.inner.pooler.detects()
    }

    /// A session found a transaction pooler: later sessions connect in the pooler mode.
    pub(crate) fn found_pooler(&self) {
        self.inner.pooler.found(&self.inner.name);
    }

    /// No pooler was declared either way (`?pgbouncer=`), so sessions may find one.
    #[cfg(feature = "postgres")]
    pub(crate) fn pooler_undeclared(&self) -> bool {
        self.inner.pooler.undeclared()
    }

    /// A session was moved to another server connection than its statements were
    /// prepared on: the sessions go over to the pooler mode.
    #[cfg(feature = "postgres")]
    pub(crate) fn found_passing_pooler(&self) {
        self.inner.pooler.found_passing(&self.inner.name);
    }

    /// The database-wide statement timeout, if any.
    pub(crate) fn statement_timeout(&self) -> Option<Duration> {
        self.inner.statement_timeout
    }
}

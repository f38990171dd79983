//! The crate's one error type; `classify.rs` sorts the driver's errors into it.

use std::time::Duration;

mod classify;

use classify::{SERVER_STATEMENT_TIMEOUT, STALE_PLAN, too_many_advice};

pub(crate) use classify::{
    Class, classify, cut_off_by_duration, cut_off_idle_in_transaction, database_from, describe,
    fails_transaction, from_sqlx, lost_reason, typed,
};

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in this crate.
///
/// Messages say what to do next. Match on the variant to decide: [`Error::Aborted`] is worth
/// retrying (as [`Session::run_in_transaction`](crate::Session::run_in_transaction) does),
/// [`Error::SessionNotFound`] means the session is gone and must be replaced, the rest are
/// returned as they are.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The session has not been created yet (Python: `ValueError`).
    #[error("the session is not created: call `Session::create()` first")]
    NotCreated,

    /// `create()` was called on a session that already exists (Python: `ValueError`).
    #[error("session `{name}` is already created: a session can be created only once")]
    AlreadyCreated {
        /// The session's resource name.
        name: String,
    },

    /// The server no longer has the session: it was killed (`pg_terminate_backend`), timed
    /// out (`idle_session_timeout`), or the server restarted (Python: `NotFound`). Behind
    /// PgBouncer, also one of its limits that end a client connection (`query_timeout`,
    /// `idle_transaction_timeout`, `transaction_timeout`, `client_idle_timeout`): `reason`
    /// names it and what to do.
    #[error(
        "session `{name}` was not found on the server ({reason}); use a new session \
         (a pool replaces it for you)"
    )]
    SessionNotFound {
        /// The session's resource name.
        name: String,
        /// What happened, in words.
        reason: String,
        /// The driver's error, when one revealed the loss.
        #[source]
        source: Option<sqlx::Error>,
    },

    /// The database aborted the transaction: PostgreSQL serialization failure (40001) or
    /// deadlock (40P01), SQLite BUSY or LOCKED. Retrying the whole transaction may succeed.
    #[error(
        "transaction aborted by the database: {message}; retry it \
         (`run_in_transaction` retries for you)"
    )]
    Aborted {
        /// SQLSTATE (PostgreSQL) or result code (SQLite), when the database gave one.
        code: Option<String>,
        /// What the database said.
        message: String,
        /// The driver's error; `None` when the application asked for the retry.
        #[source]
        source: Option<sqlx::Error>,
    },

    /// `run_in_transaction` kept being aborted until its deadline passed.
    #[error(
        "transaction deadline of {timeout:?} exceeded after {attempts} aborted attempt(s); \
         last abort: {last}"
    )]
    DeadlineExceeded {
        /// The deadline that was set.
        timeout: Duration,
        /// How many attempts were made.
        attempts: u32,
        /// The last abort seen.
        last: Box<Error>,
    },

    /// An argument was rejected before anything was sent to the database.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// The statement itself was refused and the session is still usable: parameters that do
    /// not match its placeholders (checked before sending on SQLite; PostgreSQL `08P01` at
    /// ERROR level), a NUL character in its text, or on PostgreSQL a value it cannot store
    /// (U+0000 in text or in JSONB: `22P05`, `22021`; SQLite stores it).
    #[error(
        "invalid statement{}: {message}; fix the SQL or its parameters (the session is fine)",
        code.as_deref().map(|c| format!(" [{c}]")).unwrap_or_default()
    )]
    InvalidStatement {
        /// SQLSTATE, when the server refused it.
        code: Option<String>,
        /// What is wrong.
        message: String,
        /// The driver's error, when the server refused it.
        #[source]
        source: Option<sqlx::Error>,
    },

    /// A statement ran longer than its timeout (the database-wide
    /// [`statement_timeout`](crate::DatabaseOptions::statement_timeout), or
    /// [`with_timeout`](crate::ReadContext::with_timeout)) and was cancelled on the server.
    #[error(
        "the statement did not finish within {timeout:?} and was cancelled{}",
        if *session_lost {
            "; the server did not answer the cancel either, so the session was dropped"
        } else {
            "; the session is still usable"
        }
    )]
    StatementTimeout {
        /// The timeout that applied.
        timeout: Duration,
        /// True when the server did not answer even the cancel, so the session was marked
        /// broken (a pool replaces it).
        session_lost: bool,
    },

    /// The server, or a pooler in front of it, refused a connection or a query for lack of
    /// connections: PostgreSQL `53300` (`max_connections`, or a role's connection limit),
    /// PgBouncer's `no more connections allowed` or `query_wait_timeout`. The last means
    /// the query waited in PgBouncer for a server connection longer than its
    /// `query_wait_timeout` (120 s by default): its pool was held by other transactions
    /// all that time, or it could not reach the server (down, or failing over).
    #[error("too many connections: {message}; {}", too_many_advice(message))]
    TooManyConnections {
        /// What the server or pooler said.
        message: String,
        /// The driver's error.
        #[source]
        source: Option<sqlx::Error>,
    },

    /// The server connection behind the session no longer holds the statements sqlx
    /// prepared on it (PostgreSQL `26000` or `42P05` on one of sqlx's statements): almost
    /// always a transaction-mode pooler (PgBouncer's `pool_mode = transaction`, Supavisor's
    /// transaction mode, port 6543 on Supabase) that moved the session to another server
    /// connection, the database not being opened for one; otherwise `DISCARD ALL` or
    /// `DEALLOCATE` run through the session. Where no pooler was declared either way, a
    /// session without a role finds out which, goes over to the pooler mode (or prepares
    /// its statements anew) and runs the statement again, so this error reaches the caller
    /// only with `?pgbouncer=false`, a database role, or a pooler that keeps moving the
    /// session before it finds out. The session is then marked broken (a pool replaces
    /// it); the fix is the URL's `?pgbouncer=true` (or
    /// [`DatabaseOptions::transaction_pooler`](crate::DatabaseOptions::transaction_pooler)).
    #[error(
        "{message} [{code}]: the server connection behind this session no longer holds the \
         statements prepared on it: a transaction-mode pooler (PgBouncer, Supavisor…) moved \
         the session to another server connection, so open the database with \
         `?pgbouncer=true` in its URL (or `DatabaseOptions::transaction_pooler(true)`) and \
         none is kept prepared; or `DISCARD ALL` or `DEALLOCATE` ran on it"
    )]
    UndeclaredPooler {
        /// SQLSTATE: `26000` (statement missing) or `42P05` (name taken).
        code: String,
        /// What the server said.
        message: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },

    /// The connection failed while a COMMIT was in flight, or the database said it cannot
    /// tell whether the statement completed (`40003`, CockroachDB's "result is ambiguous"):
    /// the transaction may or may not have been applied. Check before retrying unless the
    /// writes are idempotent.
    #[error(
        "the outcome of the commit is unknown: {message}; the transaction may have been \
         applied, so check before retrying"
    )]
    CommitUnknown {
        /// What happened.
        message: String,
        /// The driver's error.
        #[source]
        source: Option<sqlx::Error>,
    },

    /// `commit` found the transaction failed, so it rolled it back: an earlier statement in
    /// it failed on the server (PostgreSQL), and its error was handled by the caller, who
    /// went on to commit. PostgreSQL refuses every later statement of such a transaction and
    /// answers its COMMIT with a rollback, which without this error would pass for a
    /// commit. Nothing of the transaction was written. To go on after an error you expect,
    /// wrap the statement in `SAVEPOINT` / `ROLLBACK TO SAVEPOINT`.
    #[error(
        "the transaction was rolled back, not committed: an earlier statement in it failed{}: \
         {message}; PostgreSQL ends a transaction with a rollback after any error in it (wrap \
         a statement whose error is expected in SAVEPOINT / ROLLBACK TO SAVEPOINT)",
        code.as_deref().map(|c| format!(" [{c}]")).unwrap_or_default()
    )]
    RolledBack {
        /// The SQLSTATE of the statement that failed.
        code: Option<String>,
        /// Its error message.
        message: String,
    },

    /// A query expected to return a row returned none (for example
    /// [`ResultSet::one`](crate::ResultSet::one) on an empty result).
    #[error("the query returned no row where exactly one was expected")]
    RowNotFound,

    /// A query expected to return one row returned several.
    #[error("the query returned {count} rows where exactly one was expected")]
    TooManyRows {
        /// How many rows came back.
        count: usize,
    },

    /// A row has no column of this name or position.
    #[error("no column {column} in the row; it has {available:?}")]
    ColumnNotFound {
        /// The name, or the position, asked for.
        column: String,
        /// The columns the row has (empty when unknown).
        available: Vec<String>,
    },

    /// A column's value could not be converted to the type asked for.
    #[error(
        "column {column}: cannot decode {found} as {expected}{}",
        source.as_ref().map(|e| format!(": {e}")).unwrap_or_default()
    )]
    ColumnDecode {
        /// The column's name or position.
        column: String,
        /// The Rust type asked for.
        expected: String,
        /// What the column holds: its SQL type or the value's kind.
        found: String,
        /// Why the conversion failed, when there is more to say.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },

    /// The backend cannot do what was asked (for example a database role on SQLite).
    #[error("unsupported: {0}")]
    Unsupported(String),

    /// A table, index or row named in a request does not exist.
    #[error("not found: {0}")]
    NotFound(String),

    /// A row with this key already exists (for example `create_session` with an id in use).
    #[error("already exists: {0}")]
    AlreadyExists(String),

    /// A compare-and-swap on a stored session's update time failed: another writer changed
    /// the session after the version the caller holds was read.
    #[error(
        "session `{session_id}` is stale: it was updated at {actual} by another writer, after \
         the version you hold ({expected}); read it again and reapply the change"
    )]
    StaleSession {
        /// The session's id.
        session_id: String,
        /// The update time the caller expected.
        expected: chrono::DateTime<chrono::Utc>,
        /// The update time found in the database.
        actual: chrono::DateTime<chrono::Utc>,
    },

    /// The pool was closed.
    #[error("the pool is closed")]
    Closed,

    /// No session became available within the wait timeout (Python: `queue.Empty`).
    #[error("timed out after {timeout:?} waiting for a session from the pool")]
    PoolTimeout {
        /// How long `get` waited.
        timeout: Duration,
    },

    /// A session was returned to a pool that is already full (Python: `queue.Full`).
    #[error("the pool is full ({size} sessions): it cannot take back another session")]
    PoolFull {
        /// The pool's size.
        size: usize,
    },

    /// The pool was used before `bind(database)`.
    #[error("the pool is not bound to a database: call `bind(database)` first")]
    NotBound,

    /// The database URL could not be understood.
    #[error("invalid database URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL, with any password removed.
        url: String,
        /// Why it was rejected.
        reason: String,
    },

    /// The database could not be reached or refused the connection.
    #[error("could not connect to {target}: {source}")]
    Connect {
        /// The database's resource name.
        target: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },

    /// Any other error from the database or the driver.
    #[error("database error{}: {source}", code.as_deref().map(|c| format!(" [{c}]")).unwrap_or_default())]
    Database {
        /// SQLSTATE (PostgreSQL) or result code (SQLite), when there is one.
        code: Option<String>,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },

    /// An error raised by application code inside a transaction function.
    #[error("{0}")]
    Application(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

impl Error {
    /// Wraps an application error so a transaction function can return it; it is passed
    /// through `run_in_transaction` unchanged and never retried.
    pub fn application(err: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        Error::Application(err.into())
    }

    /// An [`Error::Aborted`] raised by the application, to ask `run_in_transaction` for a retry.
    pub fn aborted(message: impl Into<String>) -> Self {
        Error::Aborted {
            code: None,
            message: message.into(),
            source: None,
        }
    }

    /// The category of this error, to match on without naming every variant.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotCreated | Error::AlreadyCreated { .. } => ErrorKind::SessionState,
            Error::SessionNotFound { .. } => ErrorKind::SessionLost,
            Error::Aborted { .. } => ErrorKind::Aborted,
            Error::DeadlineExceeded { .. } => ErrorKind::DeadlineExceeded,
            Error::InvalidArgument(_)
            | Error::InvalidUrl { .. }
            | Error::InvalidStatement { .. } => ErrorKind::InvalidArgument,
            Error::StatementTimeout { .. } => ErrorKind::StatementTimeout,
            Error::TooManyConnections { .. } => ErrorKind::TooManyConnections,
            Error::CommitUnknown { .. } => ErrorKind::CommitUnknown,
            Error::RolledBack { .. } => ErrorKind::RolledBack,
            Error::RowNotFound
            | Error::TooManyRows { .. }
            | Error::ColumnNotFound { .. }
            | Error::ColumnDecode { .. } => ErrorKind::Decode,
            Error::Unsupported(_) | Error::UndeclaredPooler { .. } => ErrorKind::Unsupported,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::AlreadyExists(_) => ErrorKind::AlreadyExists,
            Error::StaleSession { .. } => ErrorKind::Conflict,
            Error::Closed => ErrorKind::PoolClosed,
            Error::PoolTimeout { .. } => ErrorKind::PoolTimeout,
            Error::PoolFull { .. } => ErrorKind::PoolFull,
            Error::NotBound => ErrorKind::NotBound,
            Error::Connect { .. } => ErrorKind::Connect,
            // The server's own `statement_timeout` (a role's or database's setting), which
            // this crate did not set and so cannot name the length of.
            Error::Database {
                code: Some(c),
                source,
            } if c == "57014" && source.to_string().contains(SERVER_STATEMENT_TIMEOUT) => {
                ErrorKind::StatementTimeout
            }
            Error::Database { .. } => ErrorKind::Database,
            Error::Application(_) => ErrorKind::Application,
        }
    }

    /// True for [`Error::Aborted`]: the transaction may succeed if retried.
    pub fn is_aborted(&self) -> bool {
        matches!(self, Error::Aborted { .. })
    }

    /// True for [`Error::SessionNotFound`]: the session is gone and must be replaced.
    pub fn is_session_not_found(&self) -> bool {
        matches!(self, Error::SessionNotFound { .. })
    }

    /// True for a lost session whose work is worth running once more on another: not
    /// when a pooler or the server ended the connection because that work took longer than
    /// it allows (`query_timeout`, `transaction_timeout`,
    /// `idle_in_transaction_session_timeout`, …), which another session would meet too.
    /// (The stores' retries.)
    #[cfg(any(feature = "adk", feature = "items"))]
    pub(crate) fn is_lost_in_passing(&self) -> bool {
        match self {
            Error::SessionNotFound { source, .. } => {
                !source.as_ref().is_some_and(cut_off_by_duration)
            }
            _ => false,
        }
    }

    /// The SQLSTATE (PostgreSQL) or result code (SQLite) behind this error, if any.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Aborted { code, .. }
            | Error::Database { code, .. }
            | Error::InvalidStatement { code, .. }
            | Error::RolledBack { code, .. } => code.as_deref(),
            Error::UndeclaredPooler { code, .. } => Some(code),
            // The server's FATAL that ended the session (`57P01` terminated, `25P03` idle in
            // a transaction too long, …), when one did.
            #[cfg(feature = "postgres")]
            Error::SessionNotFound {
                source: Some(sqlx::Error::Database(db)),
                ..
            } => db
                .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                .map(|pg| pg.code()),
            _ => None,
        }
    }

    /// True for a statement outside a transaction that failed because a schema change
    /// altered the result columns of its prepared form: run again, it is prepared anew.
    pub(crate) fn is_stale_plan(&self) -> bool {
        matches!(self, Error::Database { code: Some(c), source } if c == "0A000"
            && source.to_string().contains(STALE_PLAN))
    }

    /// True for a unique or primary-key violation (PostgreSQL 23505, SQLite 1555/2067).
    #[cfg(feature = "adk")]
    pub(crate) fn is_unique_violation(&self) -> bool {
        matches!(self.code(), Some("23505" | "1555" | "2067"))
    }

    /// True when a statement built for the tables as they were no longer fits them: it
    /// named a table or column the database does not have (PostgreSQL 42P01 / 42703;
    /// SQLite's "no such table", "no such column", "has no column named"), or used an
    /// operator or function the column's type has not, or put a value of another type in
    /// it (PostgreSQL 42883 / 42804: a JSONB column made again as JSON, or back).
    #[cfg(any(feature = "adk", feature = "items"))]
    pub(crate) fn is_tables_changed(&self) -> bool {
        match self.code() {
            Some("42P01" | "42703" | "42883" | "42804") => true,
            Some("1") => {
                let text = self.to_string();
                ["no such table", "no such column", "has no column named"]
                    .iter()
                    .any(|m| text.contains(m))
            }
            _ => false,
        }
    }

    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidArgument(msg.into())
    }
}

/// The category of an [`Error`], from [`Error::kind`]: what a caller usually branches on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A session used before `create()`, or created twice.
    SessionState,
    /// The session is gone on the server; use another (a pool replaces it).
    SessionLost,
    /// A retryable conflict: run the transaction again.
    Aborted,
    /// Retries of an aborted transaction ran out of time.
    DeadlineExceeded,
    /// Rejected before anything was sent: a bad argument, identifier or URL.
    InvalidArgument,
    /// A result did not have the shape asked for: no row, too many rows, a missing column,
    /// a value of another type.
    Decode,
    /// The backend cannot do this.
    Unsupported,
    /// A named table, index or row does not exist.
    NotFound,
    /// A row with this key exists already.
    AlreadyExists,
    /// A compare-and-swap lost to another writer.
    Conflict,
    /// A statement ran past its timeout and was cancelled: [`Error::StatementTimeout`], or
    /// the server's own `statement_timeout` (set for a role or database), which comes as
    /// [`Error::Database`] with SQLSTATE `57014`.
    StatementTimeout,
    /// The server or a pooler has no connection to spare: lower pool sizes or use a pooler.
    TooManyConnections,
    /// A commit may or may not have been applied.
    CommitUnknown,
    /// A commit found its transaction failed by an earlier error, and rolled it back.
    RolledBack,
    /// The pool is closed.
    PoolClosed,
    /// No session came free in time.
    PoolTimeout,
    /// The pool cannot take another session back.
    PoolFull,
    /// The pool was used before `bind`.
    NotBound,
    /// The database could not be reached.
    Connect,
    /// Any other error from the database or the driver.
    Database,
    /// An error of the application's, passed through.
    Application,
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_actionable() {
        assert!(Error::NotCreated.to_string().contains("create()"));
        let e = Error::aborted("conflict");
        assert!(e.is_aborted());
        assert!(e.to_string().contains("retry"));
    }
}

//! The crate's one error type and the classification of database errors.

use std::time::Duration;

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
    /// out (`idle_session_timeout`), or the server restarted (Python: `NotFound`).
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

    /// The SQLSTATE (PostgreSQL) or result code (SQLite) behind this error, if any.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Aborted { code, .. }
            | Error::Database { code, .. }
            | Error::InvalidStatement { code, .. }
            | Error::RolledBack { code, .. } => code.as_deref(),
            Error::UndeclaredPooler { code, .. } => Some(code),
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

    /// True when a statement named a table or column the database does not have
    /// (PostgreSQL 42P01 / 42703; SQLite's "no such table", "no such column", "has no
    /// column named").
    #[cfg(any(feature = "adk", feature = "items"))]
    pub(crate) fn is_missing_table_or_column(&self) -> bool {
        match self.code() {
            Some("42P01" | "42703") => true,
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
    /// A statement ran past its timeout and was cancelled.
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

/// How a driver error bears on the session that raised it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) enum Class {
    /// A retryable conflict.
    Aborted,
    /// The connection is gone: the session must not be used again.
    ConnectionLost,
    /// No connection to spare (server or pooler); `lost` when it also ended the connection.
    Overloaded { lost: bool },
    /// The database cannot tell whether the statement completed (`40003`).
    CommitUnknown,
    /// The statement was refused at ERROR level and the connection is fine (`08P01`).
    InvalidStatement,
    /// The statement was cancelled (PostgreSQL `57014`, SQLite `SQLITE_INTERRUPT`).
    Cancelled,
    /// One of sqlx's prepared statements is missing or taken on the server connection: a
    /// transaction-mode pooler moved the session. Its statement cache no longer matches
    /// any server connection, so the session is discarded.
    UndeclaredPooler,
    /// A prepared statement whose result columns a schema change altered (PostgreSQL
    /// `0A000`, "cached plan must not change result type": a column added to a table read
    /// with `SELECT *`, one dropped or retyped). The session prepares its statements again.
    StalePlan,
    /// A pooler in statement mode (PgBouncer's `pool_mode = statement`) refused a
    /// transaction and closed the connection: nothing this client can retry.
    StatementPooling,
    /// Anything else: the session is still usable.
    Other,
}

/// A PostgreSQL error at ERROR level: inside a transaction, the server refuses the
/// transaction's later statements until it ends, and ends it with a rollback at COMMIT.
/// (SQLite undoes the failed statement only.)
pub(crate) fn fails_transaction(err: &sqlx::Error) -> bool {
    #[cfg(feature = "postgres")]
    if let sqlx::Error::Database(db) = err
        && let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
    {
        return pg.severity() == sqlx::postgres::PgSeverity::Error;
    }
    let _ = err;
    false
}

/// Sorts a driver error into [`Class`].
pub(crate) fn classify(err: &sqlx::Error) -> Class {
    match err {
        // Protocol errors are not here: sqlx-sqlite raises them for malformed parameter
        // names, which leave the connection usable.
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::WorkerCrashed => {
            Class::ConnectionLost
        }
        sqlx::Error::Database(db) => classify_database(db.as_ref()),
        _ => Class::Other,
    }
}

/// PostgreSQL's `untranslatable_character` (`\u0000` in a JSONB value, among others) and
/// `character_not_in_repertoire` (a NUL byte in text): a value it cannot store.
const UNTRANSLATABLE: &str = "22P05";
const NOT_IN_REPERTOIRE: &str = "22021";

/// How sqlx-postgres names its prepared statements (`sqlx_s_1`, …), quoted as the server
/// quotes them in its messages.
const SQLX_STATEMENT: &str = "\"sqlx_s_";

/// What to do about [`Error::TooManyConnections`]: a pooler's wait for a server connection
/// is about its pool or the server behind it, not about this client's connection count.
fn too_many_advice(message: &str) -> &'static str {
    if message.contains("query_wait_timeout") {
        "the pooler found no server connection for the query within its \
         `query_wait_timeout`: its pool was taken by other transactions (keep them short, or \
         raise its `pool_size`), or it could not reach the server (see the pooler's log); a \
         `statement_timeout` bounds the wait from this side"
    } else {
        "lower the pool sizes (summed over every process) below the server's limit, or put \
         a pooler such as PgBouncer in front"
    }
}

/// PostgreSQL's message when a prepared statement's result columns changed under it.
const STALE_PLAN: &str = "cached plan must not change result type";

/// PgBouncer's refusals of a transaction in statement pooling mode: FATAL, and the client
/// connection closed.
const STATEMENT_POOLING: [&str; 2] = [
    "not allowed in statement pooling mode",
    "long transactions not allowed",
];

/// PgBouncer's refusals for lack of connections: FATAL, with no SQLSTATE of their own.
const POOLER_OVERLOAD: [&str; 3] = [
    "no more connections allowed",
    "query_wait_timeout",
    "pool_size limit reached",
];

fn classify_database(db: &dyn sqlx::error::DatabaseError) -> Class {
    #[cfg(feature = "postgres")]
    if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        use sqlx::postgres::PgSeverity;
        // FATAL and PANIC end the backend; at ERROR level the connection lives on, whatever
        // the SQLSTATE says.
        let lost = matches!(pg.severity(), PgSeverity::Fatal | PgSeverity::Panic);
        let code = pg.code();
        if code == "53300" || POOLER_OVERLOAD.iter().any(|m| pg.message().contains(m)) {
            return Class::Overloaded { lost };
        }
        if lost && STATEMENT_POOLING.iter().any(|m| pg.message().contains(m)) {
            return Class::StatementPooling;
        }
        return match code {
            // serialization_failure, deadlock_detected
            "40001" | "40P01" => Class::Aborted,
            // invalid_sql_statement_name, duplicate_prepared_statement, on a name sqlx
            // gives its statements: nothing else makes those fail on a live connection.
            "26000" | "42P05" if !lost && pg.message().contains(SQLX_STATEMENT) => {
                Class::UndeclaredPooler
            }
            // untranslatable_character, character_not_in_repertoire: a parameter holds
            // what PostgreSQL cannot store (U+0000 in text or in JSONB).
            UNTRANSLATABLE | NOT_IN_REPERTOIRE if !lost => Class::InvalidStatement,
            // statement_completion_unknown
            "40003" => Class::CommitUnknown,
            "57014" if !lost => Class::Cancelled,
            "0A000" if !lost && pg.message().contains(STALE_PLAN) => Class::StalePlan,
            // admin_shutdown, crash_shutdown, cannot_connect_now, idle_session_timeout,
            // idle_in_transaction_session_timeout: all end the backend.
            "57P01" | "57P02" | "57P03" | "57P05" | "25P03" => Class::ConnectionLost,
            c if c.starts_with("08") && lost => Class::ConnectionLost,
            // protocol_violation at ERROR level: wrong parameter count, and the like.
            c if c.starts_with("08") => Class::InvalidStatement,
            _ if lost => Class::ConnectionLost,
            _ => Class::Other,
        };
    }
    #[cfg(feature = "sqlite")]
    if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        // Extended result codes carry the primary code in the low byte.
        let primary = db
            .code()
            .and_then(|c| c.parse::<i32>().ok())
            .map(|c| c & 0xff);
        return match primary {
            Some(5 /* SQLITE_BUSY */ | 6 /* SQLITE_LOCKED */) => Class::Aborted,
            Some(9 /* SQLITE_INTERRUPT */) => Class::Cancelled,
            _ => Class::Other,
        };
    }
    let _ = (
        POOLER_OVERLOAD,
        SQLX_STATEMENT,
        STALE_PLAN,
        STATEMENT_POOLING,
        db,
    );
    Class::Other
}

/// The database's message and code for a driver error.
pub(crate) fn describe(err: &sqlx::Error) -> (Option<String>, String) {
    match err {
        sqlx::Error::Database(db) => (db.code().map(|c| c.into_owned()), db.message().to_owned()),
        other => (None, other.to_string()),
    }
}

/// A driver error of a class that has its own variant, as that variant; `None` for the
/// others.
pub(crate) fn typed(class: Class, err: sqlx::Error) -> std::result::Result<Error, sqlx::Error> {
    let (code, message) = describe(&err);
    Ok(match class {
        Class::Aborted => Error::Aborted {
            code,
            message,
            source: Some(err),
        },
        Class::Overloaded { .. } => Error::TooManyConnections {
            message,
            source: Some(err),
        },
        Class::CommitUnknown => Error::CommitUnknown {
            message,
            source: Some(err),
        },
        Class::InvalidStatement => Error::InvalidStatement {
            message: match code.as_deref() {
                // The server names neither the value nor the character.
                Some(UNTRANSLATABLE | NOT_IN_REPERTOIRE) => format!(
                    "{message} (a text or JSON value holds a character PostgreSQL cannot \
                     store, such as U+0000 NUL: remove or replace it)"
                ),
                _ => message,
            },
            code,
            source: Some(err),
        },
        Class::StatementPooling => Error::Unsupported(format!(
            "{message} (PgBouncer's `pool_mode = statement`), and the pooler closed the \
             session's connection: transactions, the stores' among them, need \
             `pool_mode = transaction` (declare it with `?pgbouncer=true`) or `session` for \
             this database"
        )),
        Class::UndeclaredPooler => Error::UndeclaredPooler {
            code: code.unwrap_or_default(),
            message,
            source: err,
        },
        Class::ConnectionLost | Class::Cancelled | Class::StalePlan | Class::Other => {
            return Err(err);
        }
    })
}

/// Converts a driver error that is not about a particular session.
pub(crate) fn from_sqlx(err: sqlx::Error) -> Error {
    typed(classify(&err), err).unwrap_or_else(database_from)
}

/// A driver error that is neither an abort nor a lost connection: decoding failures get
/// their own variants, the rest is [`Error::Database`] with its code.
pub(crate) fn database_from(err: sqlx::Error) -> Error {
    match err {
        sqlx::Error::RowNotFound => Error::RowNotFound,
        sqlx::Error::ColumnNotFound(column) => Error::ColumnNotFound {
            column,
            available: Vec::new(),
        },
        sqlx::Error::ColumnIndexOutOfBounds { index, len } => Error::ColumnNotFound {
            column: index.to_string(),
            available: (0..len).map(|i| i.to_string()).collect(),
        },
        sqlx::Error::ColumnDecode { index, source } => Error::ColumnDecode {
            column: index,
            expected: "the Rust type asked for".into(),
            found: "the column's SQL type".into(),
            source: Some(source),
        },
        err => {
            let code = match &err {
                sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
                _ => None,
            };
            Error::Database { code, source: err }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_mean_the_connection_is_lost() {
        let err = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert_eq!(classify(&err), Class::ConnectionLost);
        assert_eq!(classify(&sqlx::Error::RowNotFound), Class::Other);
    }

    #[test]
    fn messages_are_actionable() {
        assert!(Error::NotCreated.to_string().contains("create()"));
        let e = Error::aborted("conflict");
        assert!(e.is_aborted());
        assert!(e.to_string().contains("retry"));
    }
}

//! How a driver error bears on the session that raised it, and which of this crate's
//! errors it becomes.

use super::Error;

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
    /// A `NOTIFY` for a channel the session had run `LISTEN` on arrived while a statement
    /// ran: sqlx 0.9.0 reads it as a protocol error (0.9.1 drops it, but is held off: see
    /// Cargo.toml), and every later notification would fail another statement. The
    /// statement may have run. The session is given up, and its `LISTEN` ends with it.
    Notified,
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
        sqlx::Error::Protocol(m) if m.contains(NOTIFICATION) => Class::Notified,
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
pub(super) fn too_many_advice(message: &str) -> &'static str {
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

/// PostgreSQL's message when its `statement_timeout` cancelled a statement (`57014`).
pub(super) const SERVER_STATEMENT_TIMEOUT: &str = "canceling statement due to statement timeout";

/// PostgreSQL's message when a prepared statement's result columns changed under it.
pub(super) const STALE_PLAN: &str = "cached plan must not change result type";

/// PgBouncer's refusals of a transaction in statement pooling mode: FATAL, and the client
/// connection closed.
const STATEMENT_POOLING: [&str; 2] = [
    "not allowed in statement pooling mode",
    "long transactions not allowed",
];

/// The message sqlx-postgres 0.9.0 names in a protocol error when a notification arrived
/// where a statement's answer was expected.
const NOTIFICATION: &str = "NotificationResponse";

/// A limit that ends a client connection: PgBouncer's (FATAL `08P01`, its name as the
/// whole message) or the server's own (FATAL, with a SQLSTATE of its own).
struct CutOff {
    /// Whose limit it is, and how its error is known.
    by: By,
    /// What happened and what to do.
    advice: &'static str,
    /// Whether what was cut off took the limit itself (a statement or transaction too
    /// long), so that running it again on another session would meet it again.
    by_duration: bool,
    /// Whether the limit ends only a transaction waiting for its next statement: a COMMIT
    /// that meets its error was never run, and the transaction was rolled back.
    while_idle_in_transaction: bool,
}

/// How a [`CutOff`]'s error is known.
enum By {
    /// PgBouncer's limit: its whole message.
    Pooler(&'static str),
    /// PostgreSQL's: the SQLSTATE, and the setting's name.
    Server {
        code: &'static str,
        setting: &'static str,
    },
}

/// The limits that end a client connection, PgBouncer's and PostgreSQL's (the server's
/// matched only at FATAL level).
const CUT_OFFS: [CutOff; 9] = [
    CutOff {
        by: By::Pooler("query timeout"),
        advice: "a statement ran longer than its `query_timeout`; set \
                 `DatabaseOptions::statement_timeout` below it, so that the server cancels \
                 the statement and the session lives on, or raise the pooler's",
        by_duration: true,
        while_idle_in_transaction: false,
    },
    CutOff {
        by: By::Pooler("query_timeout"),
        advice: "a query waited and ran longer than its `query_timeout`; set \
                 `DatabaseOptions::statement_timeout` below it, or raise the pooler's",
        by_duration: true,
        while_idle_in_transaction: false,
    },
    CutOff {
        by: By::Pooler("idle transaction timeout"),
        advice: "a transaction sat between statements longer than its \
                 `idle_transaction_timeout`, and was rolled back; do the work that is not SQL \
                 outside the transaction, or raise the pooler's",
        by_duration: true,
        while_idle_in_transaction: true,
    },
    CutOff {
        by: By::Pooler("transaction timeout"),
        advice: "a transaction stayed open longer than its `transaction_timeout`; keep \
                 transactions shorter, or raise the pooler's",
        by_duration: true,
        while_idle_in_transaction: false,
    },
    CutOff {
        by: By::Pooler("client_idle_timeout"),
        advice: "the session sat idle longer than its `client_idle_timeout`; close idle \
                 sessions sooner (`PoolOptions::max_idle_lifetime`) or ping them more often \
                 (`PingingPool`'s `ping_interval`), or raise the pooler's",
        by_duration: false,
        while_idle_in_transaction: false,
    },
    CutOff {
        by: By::Server {
            code: "25P03",
            setting: "idle_in_transaction_session_timeout",
        },
        advice: "a transaction sat between statements longer than the setting allows, and \
                 was rolled back; do the work that is not SQL outside the transaction, or \
                 raise the setting for this role or database",
        by_duration: true,
        while_idle_in_transaction: true,
    },
    CutOff {
        by: By::Server {
            code: "25P04",
            setting: "transaction_timeout",
        },
        advice: "a transaction (or a statement outside one) stayed open longer than the \
                 setting allows; keep transactions shorter, or raise the setting for this \
                 role or database",
        by_duration: true,
        while_idle_in_transaction: false,
    },
    CutOff {
        by: By::Server {
            code: "57P05",
            setting: "idle_session_timeout",
        },
        advice: "the session sat idle longer than the setting allows; close idle sessions \
                 sooner (`PoolOptions::max_idle_lifetime` below it) or ping them more often \
                 (`PingingPool`'s `ping_interval`), or raise the setting",
        by_duration: false,
        while_idle_in_transaction: false,
    },
    CutOff {
        // At ERROR level the same code is a retryable abort: server limits match FATAL only.
        by: By::Server {
            code: "40001",
            setting: "max_standby_streaming_delay",
        },
        advice: "a hot standby ended the session, whose transaction, idle between \
                 statements, held back the replay of the primary's changes longer than the \
                 standby's setting allows, and was rolled back; keep read transactions on \
                 replicas short, or raise the setting or turn on `hot_standby_feedback` on \
                 the standby",
        by_duration: false,
        while_idle_in_transaction: true,
    },
];

/// The limit that ended the connection, if one did.
fn cut_off(err: &sqlx::Error) -> Option<&'static CutOff> {
    let sqlx::Error::Database(db) = err else {
        return None;
    };
    CUT_OFFS.iter().find(|c| match c.by {
        By::Pooler(message) => db.message() == message,
        By::Server { code, .. } => db.code().as_deref() == Some(code) && is_fatal(db.as_ref()),
    })
}

/// A PostgreSQL error that ended its backend (FATAL or PANIC).
fn is_fatal(db: &dyn sqlx::error::DatabaseError) -> bool {
    #[cfg(feature = "postgres")]
    if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        use sqlx::postgres::PgSeverity;
        return matches!(pg.severity(), PgSeverity::Fatal | PgSeverity::Panic);
    }
    let _ = db;
    false
}

/// What [`Error::SessionNotFound`] says happened, for an error that ended the connection:
/// the driver's words, and for a limit which one it was and what to do.
pub(crate) fn lost_reason(err: &sqlx::Error) -> String {
    let (Some(c), sqlx::Error::Database(db)) = (cut_off(err), err) else {
        return err.to_string();
    };
    match c.by {
        By::Pooler(message) => format!(
            "the pooler in front ended the connection with \"{message}\": {}",
            c.advice
        ),
        By::Server { code, setting } => format!(
            "the server ended the connection at its `{setting}` (\"{}\", SQLSTATE {code}): {}",
            db.message(),
            c.advice
        ),
    }
}

/// True when a limit ended the connection because what ran on it took too long: another
/// session would meet the same limit, so the work is not run again there.
pub(crate) fn cut_off_by_duration(err: &sqlx::Error) -> bool {
    cut_off(err).is_some_and(|c| c.by_duration)
}

/// True when a limit ended the connection while its transaction waited for the next
/// statement: a COMMIT that meets the error was never run, so the transaction's outcome is
/// known (rolled back), not unknown.
pub(crate) fn cut_off_idle_in_transaction(err: &sqlx::Error) -> bool {
    cut_off(err).is_some_and(|c| c.while_idle_in_transaction)
}

/// PgBouncer's refusals for lack of connections: FATAL, with no SQLSTATE of their own.
const POOLER_OVERLOAD: [&str; 3] = [
    "no more connections allowed",
    "query_wait_timeout",
    "pool_size limit reached",
];

fn classify_database(db: &dyn sqlx::error::DatabaseError) -> Class {
    #[cfg(feature = "postgres")]
    if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        // FATAL and PANIC end the backend; at ERROR level the connection lives on, whatever
        // the SQLSTATE says.
        let lost = is_fatal(db);
        let code = pg.code();
        if code == "53300" || POOLER_OVERLOAD.iter().any(|m| pg.message().contains(m)) {
            return Class::Overloaded { lost };
        }
        if lost && STATEMENT_POOLING.iter().any(|m| pg.message().contains(m)) {
            return Class::StatementPooling;
        }
        return match code {
            // serialization_failure, deadlock_detected. At FATAL level, 40001 is a standby's
            // recovery conflict that ended the session: a lost connection, below.
            "40001" | "40P01" if !lost => Class::Aborted,
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
            // idle_in_transaction_session_timeout, transaction_timeout (PostgreSQL 17): all
            // end the backend.
            "57P01" | "57P02" | "57P03" | "57P05" | "25P03" | "25P04" => Class::ConnectionLost,
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
        Class::Notified => Error::Unsupported(format!(
            "{message}: a NOTIFY reached this session, which had run LISTEN, while a \
             statement ran, and the statement may or may not have run. A pooled session \
             cannot listen (sqlx reads a notification as a protocol error here): the \
             session was given up, its LISTEN with it. Listen on a connection of its own \
             (sqlx::postgres::PgListener)"
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
    fn a_notification_read_as_a_statement_answer_is_told_apart() {
        // sqlx-postgres 0.9.0's two wordings: a first run (prepare) and a cached one.
        for m in [
            "Postgres protocol error: expected ParseComplete, got NotificationResponse",
            "execute: unexpected message: NotificationResponse",
        ] {
            assert_eq!(classify(&sqlx::Error::Protocol(m.into())), Class::Notified);
        }
        // sqlx-sqlite's protocol errors (malformed parameter names) leave the session be.
        let other = sqlx::Error::Protocol("invalid parameter name".into());
        assert_eq!(classify(&other), Class::Other);
    }
}

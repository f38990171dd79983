//! The owned connection behind a session: readied as a session, reset, pinged and
//! closed.

use std::sync::Arc;

use sqlx::AssertSqlSafe;

#[cfg(feature = "postgres")]
use super::{ExecError, PoolerLink, fixed};
use super::{ExecResult, RawConnection};
#[cfg(feature = "postgres")]
use crate::row::ResultSet;
#[cfg(feature = "postgres")]
use crate::value::Value;

#[cfg(feature = "postgres")]
use sqlx::postgres::PgConnection;
#[cfg(feature = "sqlite")]
use sqlx::sqlite::SqliteConnection;

/// What readying a connection learned.
#[derive(Debug)]
pub(crate) struct Prepared {
    /// The PostgreSQL backend pid.
    pub(crate) pid: Option<i32>,
    /// The SQLite statement deadline its progress handler checks.
    pub(crate) interrupt: Option<Arc<crate::deadline::Interrupt>>,
    /// A transaction-mode pooler shares the session's server connection (see
    /// `shared_by_pooler!`): nothing was set on the connection, and it is to be used in the
    /// pooler mode.
    pub(crate) pooler_found: bool,
}

/// Whether the server connection holds a prepared statement other than the one running,
/// a new connection's first (`sqlx_s_1`): then a transaction pooler shares it. One that
/// renames statements shows the running one under its own name (PgBouncer's
/// `PGBOUNCER_<n>`, PgCat's `PGCAT_<n>`); one that passes names through leaves the
/// statements of the clients before on it (sqlx's, asyncpg's, a `PREPARE`). A direct
/// backend is new and holds none, nor does a session-mode pooler's after its reset
/// (`DISCARD ALL`). Without a protocol-level statement (sqlx's statement cache off), a
/// renaming pooler shows nothing; a pooler that passes names through and has given this
/// session a new server connection shows nothing either, and is found later, at the first
/// statement it refuses (`session/passthrough.rs`).
#[cfg(feature = "postgres")]
macro_rules! shared_by_pooler {
    () => {
        "EXISTS (SELECT 1 FROM pg_prepared_statements WHERE name <> 'sqlx_s_1')"
    };
}

/// An owned driver connection.
#[derive(Debug)]
pub(crate) enum Conn {
    #[cfg(feature = "sqlite")]
    Sqlite(SqliteConnection),
    #[cfg(feature = "postgres")]
    Postgres(PgConnection),
    /// PostgreSQL through a transaction pooler: statements are sent with client-side
    /// literals (see `crate::inline`).
    #[cfg(feature = "postgres")]
    PgPooled(PgConnection),
}

impl Conn {
    /// Readies a new connection as a session: on PostgreSQL learns its backend pid, sets
    /// the statement timeout and assumes `role` (already quoted), unless `detect` finds a
    /// transaction pooler first ([`Prepared::pooler_found`]); on SQLite installs the
    /// progress handler that interrupts statements past their deadline.
    pub(crate) async fn prepare_session(
        &mut self,
        role: Option<&str>,
        statement_timeout: Option<std::time::Duration>,
        detect: bool,
    ) -> ExecResult<Prepared> {
        match self {
            #[cfg(feature = "sqlite")]
            Conn::Sqlite(c) => {
                debug_assert!(
                    role.is_none(),
                    "roles are refused on SQLite before connecting"
                );
                let _ = statement_timeout; // armed per statement
                let _ = detect; // no pooler in front of a file
                let interrupt = Arc::new(crate::deadline::Interrupt::default());
                let check = Arc::clone(&interrupt);
                c.lock_handle()
                    .await?
                    .set_progress_handler(crate::deadline::CHECK_EVERY_OPS, move || {
                        !check.expired()
                    });
                Ok(Prepared {
                    pid: None,
                    interrupt: Some(interrupt),
                    pooler_found: false,
                })
            }
            #[cfg(feature = "postgres")]
            Conn::PgPooled(_) => {
                // Nothing to set: the session's settings would land on whichever server
                // connection the pooler lends, and leak to its other clients. The statement
                // timeout goes with each statement; backend pids change per transaction.
                if role.is_some() {
                    return Err(crate::pooler::role_refused().into());
                }
                let _ = (statement_timeout, detect);
                Ok(Prepared {
                    pid: None,
                    interrupt: None,
                    pooler_found: false,
                })
            }
            #[cfg(feature = "postgres")]
            Conn::Postgres(_) => {
                // One round trip for the pid, the timeout and, when asked, whether a
                // pooler renamed this very statement; then the timeout is set only on a
                // connection of the session's own.
                let timeout =
                    statement_timeout.map(|t| Value::Text(format!("{}ms", t.as_millis().max(1))));
                let mut rows = self.pid_and_timeout(timeout.as_slice(), detect).await;
                if detect && matches!(&rows, Err(e) if no_such_object(e)) {
                    // A server without `pg_prepared_statements` (some PostgreSQL-compatible
                    // ones): no pooler to find that way.
                    rows = self.pid_and_timeout(timeout.as_slice(), false).await;
                }
                let rows = rows?;
                let row = rows.one()?;
                if detect && row.get::<bool>(1)? {
                    return Ok(Prepared {
                        pid: None,
                        interrupt: None,
                        pooler_found: true,
                    });
                }
                let pid = row.get::<i32>(0)?;
                if let Some(role) = role {
                    self.as_mut()
                        .execute(&format!("SET ROLE {role}"), crate::param::NONE)
                        .await?;
                }
                Ok(Prepared {
                    pid: Some(pid),
                    interrupt: None,
                    pooler_found: false,
                })
            }
        }
    }

    /// A new session's first statement on PostgreSQL: its backend pid, then (with
    /// `detect`) whether a pooler renamed the statement, and the statement timeout
    /// (`timeout`: none, or its text) set unless one did.
    #[cfg(feature = "postgres")]
    async fn pid_and_timeout(&mut self, timeout: &[Value], detect: bool) -> ExecResult<ResultSet> {
        let sql = match (detect, !timeout.is_empty()) {
            (false, false) => "SELECT pg_backend_pid()",
            (false, true) => "SELECT pg_backend_pid(), set_config('statement_timeout', $1, false)",
            (true, false) => concat!("SELECT pg_backend_pid(), ", shared_by_pooler!()),
            (true, true) => concat!(
                "SELECT pid, renamed, CASE WHEN renamed THEN NULL \
                 ELSE set_config('statement_timeout', $1, false) END \
                 FROM (SELECT pg_backend_pid() AS pid, ",
                shared_by_pooler!(),
                " AS renamed) AS p"
            ),
        };
        self.as_mut().fetch_all(fixed(sql), timeout).await
    }

    /// This connection, to be used through a transaction pooler from now on.
    pub(crate) fn into_pooled(self) -> Conn {
        match self {
            #[cfg(feature = "postgres")]
            Conn::Postgres(c) => Conn::PgPooled(c),
            other => other,
        }
    }

    /// Puts the connection back as a new session finds it (reset on release): on
    /// PostgreSQL everything `DISCARD ALL` resets except the prepared statements, which
    /// sqlx keeps track of, then the session's role and statement timeout again, in one
    /// round trip; on SQLite, temporary tables, views and triggers dropped.
    pub(crate) async fn reset(
        &mut self,
        role: Option<&str>,
        statement_timeout: Option<std::time::Duration>,
    ) -> ExecResult<()> {
        match self {
            #[cfg(feature = "sqlite")]
            Conn::Sqlite(c) => {
                use sqlx::Executor;
                let temp: Vec<(String, String)> = sqlx::query_as(
                    "SELECT type, name FROM temp.sqlite_master \
                     WHERE type IN ('table', 'view', 'trigger') ORDER BY type = 'table'",
                )
                .fetch_all(&mut *c)
                .await?;
                let _ = role; // refused on SQLite before connecting
                let _ = statement_timeout; // armed per statement
                for (kind, name) in temp {
                    let name = name.replace('"', "\"\"");
                    let drop = format!("DROP {kind} IF EXISTS temp.\"{name}\"");
                    c.execute(AssertSqlSafe(drop)).await?;
                }
                Ok(())
            }
            #[cfg(feature = "postgres")]
            Conn::Postgres(c) => {
                let mut sql = String::from(
                    "CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL; UNLISTEN *; \
                     SELECT pg_advisory_unlock_all(); DISCARD PLANS; DISCARD TEMP; \
                     DISCARD SEQUENCES;",
                );
                if let Some(role) = role {
                    sql.push_str(&format!(" SET ROLE {role};"));
                }
                if let Some(t) = statement_timeout {
                    sql.push_str(&format!(
                        " SET statement_timeout = '{}ms';",
                        t.as_millis().max(1)
                    ));
                }
                match sqlx::raw_sql(AssertSqlSafe(sql.clone()))
                    .execute(&mut *c)
                    .await
                {
                    // A notification for a LISTEN the last checkout left, queued before the
                    // reset: sqlx 0.9.0 stops reading at it, but the server ran the whole
                    // reset, UNLISTEN included. Run again (it is idempotent), to its end.
                    Err(e) if crate::error::classify(&e) == crate::error::Class::Notified => {
                        sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *c).await?;
                    }
                    other => {
                        other?;
                    }
                }
                Ok(())
            }
            // The pooler resets server connections itself; a session holds no state of
            // its own on them.
            #[cfg(feature = "postgres")]
            Conn::PgPooled(_) => {
                let _ = (role, statement_timeout);
                Ok(())
            }
        }
    }

    /// The driver's cheapest round trip (no statement).
    pub(crate) async fn ping(&mut self) -> std::result::Result<(), sqlx::Error> {
        use sqlx::Connection;
        match self {
            #[cfg(feature = "sqlite")]
            Conn::Sqlite(c) => c.ping().await,
            #[cfg(feature = "postgres")]
            Conn::Postgres(c) | Conn::PgPooled(c) => c.ping().await,
        }
    }

    pub(crate) fn as_mut(&mut self) -> RawConnection<'_> {
        match self {
            #[cfg(feature = "sqlite")]
            Conn::Sqlite(c) => RawConnection::Sqlite(c),
            #[cfg(feature = "postgres")]
            Conn::Postgres(c) => RawConnection::Postgres(c),
            #[cfg(feature = "postgres")]
            Conn::PgPooled(c) => RawConnection::PostgresPooled(c, PoolerLink::default()),
        }
    }

    /// Closes the connection politely.
    pub(crate) async fn close(self) -> std::result::Result<(), sqlx::Error> {
        use sqlx::Connection;
        match self {
            #[cfg(feature = "sqlite")]
            Conn::Sqlite(c) => c.close().await,
            #[cfg(feature = "postgres")]
            Conn::Postgres(c) | Conn::PgPooled(c) => c.close().await,
        }
    }
}

/// The server has no such table or column (`42P01`, `42703`).
#[cfg(feature = "postgres")]
fn no_such_object(e: &ExecError) -> bool {
    let ExecError::Sql(sqlx::Error::Database(d)) = e else {
        return false;
    };
    matches!(d.code().as_deref(), Some("42P01" | "42703"))
}

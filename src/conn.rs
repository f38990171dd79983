//! The live connection behind a session, and the one place SQL meets the driver: binding
//! [`Value`]s and decoding rows, per dialect.

use std::sync::Arc;

use futures_core::stream::BoxStream;
use futures_util::StreamExt;
use sqlx::{AssertSqlSafe, Column, Row as _, SqlSafeStr, SqlStr, TypeInfo};

use crate::dialect::Dialect;
use crate::error::Error;
use crate::param::{AsParam, Param};
use crate::row::{ResultSet, Row};
use crate::value::Value;

#[cfg(feature = "postgres")]
use sqlx::postgres::{PgConnection, PgRow};
#[cfg(feature = "sqlite")]
use sqlx::sqlite::{SqliteConnection, SqliteRow};

/// SQL text for the driver. sqlx keeps its own copy of borrowed text; owned and shared text
/// (the stores' statements) and static text move in without a copy. Cloned for each
/// statement, which is run again if a schema change left its prepared form stale
/// (`session/exec.rs`): a copy of a pointer, or of a `String` the crate built for that
/// one statement.
pub(crate) trait IntoSql: Clone {
    fn into_sql(self) -> SqlStr;
    /// The text, for tracing.
    fn text(&self) -> &str;
    /// SQLite: whether the statement's result columns may come from a `*` that a schema
    /// change can widen or narrow (`sqlite::star_columns`). Only the callers' own text
    /// (`&str`) is looked at: the crate's statements name their columns.
    #[cfg(feature = "sqlite")]
    fn star_columns(&self) -> bool {
        false
    }
    /// PostgreSQL: whether `params` fit the types the text's first run was prepared with.
    #[cfg(feature = "postgres")]
    fn verdict(&self, params: &[impl AsParam]) -> crate::param_types::Verdict {
        crate::param_types::verdict(self.text(), params)
    }
}

impl IntoSql for &str {
    fn into_sql(self) -> SqlStr {
        AssertSqlSafe(self).into_sql_str()
    }
    fn text(&self) -> &str {
        self
    }
    #[cfg(feature = "sqlite")]
    fn star_columns(&self) -> bool {
        sqlite::star_columns(self)
    }
}

impl IntoSql for &String {
    fn into_sql(self) -> SqlStr {
        AssertSqlSafe(self.as_str()).into_sql_str()
    }
    fn text(&self) -> &str {
        self
    }
}

impl IntoSql for String {
    fn into_sql(self) -> SqlStr {
        AssertSqlSafe(self).into_sql_str()
    }
    fn text(&self) -> &str {
        self
    }
}

/// A statement text built once and run many times (the stores' `SqlCache`), with what the
/// parameter check learned about it (`param_types::KnownTypes`).
#[derive(Debug)]
pub(crate) struct CachedSql {
    text: Arc<str>,
    #[cfg(feature = "postgres")]
    types: crate::param_types::KnownTypes,
}

impl From<String> for CachedSql {
    fn from(text: String) -> Self {
        CachedSql {
            text: text.into(),
            #[cfg(feature = "postgres")]
            types: Default::default(),
        }
    }
}

impl IntoSql for Arc<CachedSql> {
    fn into_sql(self) -> SqlStr {
        AssertSqlSafe(Arc::clone(&self.text)).into_sql_str()
    }
    fn text(&self) -> &str {
        &self.text
    }
    #[cfg(feature = "postgres")]
    fn verdict(&self, params: &[impl AsParam]) -> crate::param_types::Verdict {
        self.types.verdict(&self.text, params)
    }
}

impl IntoSql for SqlStr {
    fn into_sql(self) -> SqlStr {
        self
    }
    fn text(&self) -> &str {
        self.as_str()
    }
}

/// Static SQL, never copied.
pub(crate) fn fixed(sql: &'static str) -> SqlStr {
    sql.into_sql_str()
}

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
                sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *c).await?;
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

/// How statements run on a PostgreSQL connection through a transaction pooler
/// ([`DatabaseOptions::transaction_pooler`](crate::DatabaseOptions::transaction_pooler)):
/// opaque, set by the session for each statement.
#[cfg(feature = "postgres")]
#[derive(Debug, Clone, Copy, Default)]
pub struct PoolerLink {
    /// The server-side timeout to send with the statement (`SET LOCAL statement_timeout`).
    pub(crate) timeout: Option<std::time::Duration>,
    /// Whether a transaction is open: then the timeout is put back after the statement.
    pub(crate) in_transaction: bool,
    /// The session's mark, written at the head of the statement (`crate::pooler::Mark`).
    pub(crate) mark: Option<u64>,
}

/// The sqlx connection behind a session, for typed queries (`sqlx::query_as`, `FromRow`)
/// that [`Value`] does not cover. Get it from
/// [`Session::connection`](crate::Session::connection).
///
/// Errors from queries run on it bypass the session's bookkeeping: if the connection
/// failed, call [`Session::mark_broken`](crate::Session::mark_broken).
#[derive(Debug)]
#[non_exhaustive]
pub enum RawConnection<'a> {
    /// A SQLite connection.
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    Sqlite(&'a mut SqliteConnection),
    /// A PostgreSQL connection.
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    Postgres(&'a mut PgConnection),
    /// A PostgreSQL connection through a transaction pooler (PgBouncer, Supavisor):
    /// [`DatabaseOptions::transaction_pooler`](crate::DatabaseOptions::transaction_pooler).
    /// sqlx's prepared statements do not work on it outside a transaction (the pooler may
    /// switch server connections between parse and execute); use
    /// [`sqlx::raw_sql`] with literals, or `persistent(false)` queries inside a transaction.
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    PostgresPooled(&'a mut PgConnection, PoolerLink),
}

/// A type sqlx can decode from a row of every backend this build has: derive
/// `sqlx::FromRow` on a struct and it is one. Used by
/// [`ReadContext::query_as`](crate::ReadContext::query_as), so typed decoding needs no
/// matching on the backend.
#[cfg(all(feature = "sqlite", feature = "postgres"))]
pub trait FromDriverRow:
    for<'r> sqlx::FromRow<'r, SqliteRow> + for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin
{
}
#[cfg(all(feature = "sqlite", feature = "postgres"))]
impl<T> FromDriverRow for T where
    T: for<'r> sqlx::FromRow<'r, SqliteRow> + for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin
{
}

/// A type sqlx can decode from a row of every backend this build has.
#[cfg(all(feature = "sqlite", not(feature = "postgres")))]
pub trait FromDriverRow: for<'r> sqlx::FromRow<'r, SqliteRow> + Send + Unpin {}
#[cfg(all(feature = "sqlite", not(feature = "postgres")))]
impl<T> FromDriverRow for T where T: for<'r> sqlx::FromRow<'r, SqliteRow> + Send + Unpin {}

/// A type sqlx can decode from a row of every backend this build has.
#[cfg(all(feature = "postgres", not(feature = "sqlite")))]
pub trait FromDriverRow: for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin {}
#[cfg(all(feature = "postgres", not(feature = "sqlite")))]
impl<T> FromDriverRow for T where T: for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin {}

/// A failure while running a statement: the driver's, or ours (decoding).
#[derive(Debug)]
pub(crate) enum ExecError {
    Sql(sqlx::Error),
    Crate(Error),
}

impl From<sqlx::Error> for ExecError {
    fn from(e: sqlx::Error) -> Self {
        ExecError::Sql(e)
    }
}

impl From<Error> for ExecError {
    fn from(e: Error) -> Self {
        ExecError::Crate(e)
    }
}

pub(crate) type ExecResult<T> = std::result::Result<T, ExecError>;

/// The server has no such table or column (`42P01`, `42703`).
#[cfg(feature = "postgres")]
fn no_such_object(e: &ExecError) -> bool {
    let ExecError::Sql(sqlx::Error::Database(d)) = e else {
        return false;
    };
    matches!(d.code().as_deref(), Some("42P01" | "42703"))
}

impl<'a> RawConnection<'a> {
    pub(crate) fn reborrow(&mut self) -> RawConnection<'_> {
        match self {
            #[cfg(feature = "sqlite")]
            RawConnection::Sqlite(c) => RawConnection::Sqlite(c),
            #[cfg(feature = "postgres")]
            RawConnection::Postgres(c) => RawConnection::Postgres(c),
            #[cfg(feature = "postgres")]
            RawConnection::PostgresPooled(c, link) => RawConnection::PostgresPooled(c, *link),
        }
    }

    /// Forgets the driver's prepared statements (closing them on the server), so that the
    /// next use of each is prepared anew.
    pub(crate) async fn clear_statements(&mut self) -> std::result::Result<(), sqlx::Error> {
        use sqlx::Connection;
        match self {
            #[cfg(feature = "sqlite")]
            RawConnection::Sqlite(c) => c.clear_cached_statements().await,
            #[cfg(feature = "postgres")]
            RawConnection::Postgres(c) | RawConnection::PostgresPooled(c, _) => {
                c.clear_cached_statements().await
            }
        }
    }

    /// This connection, to be used through a transaction pooler from now on.
    #[cfg(feature = "postgres")]
    pub(crate) fn into_pooled(self) -> Self {
        match self {
            RawConnection::Postgres(c) => RawConnection::PostgresPooled(c, PoolerLink::default()),
            other => other,
        }
    }

    /// Whether this is a PostgreSQL connection through a transaction pooler.
    pub(crate) fn is_pooled(&self) -> bool {
        #[cfg(feature = "postgres")]
        if let RawConnection::PostgresPooled(..) = self {
            return true;
        }
        false
    }

    /// On a pooled link, how the statement goes (its server-side timeout, its mark);
    /// elsewhere does nothing.
    #[cfg(feature = "postgres")]
    pub(crate) fn with_link(self, link: PoolerLink) -> Self {
        match self {
            RawConnection::PostgresPooled(c, _) => RawConnection::PostgresPooled(c, link),
            other => other,
        }
    }

    pub(crate) fn dialect(&self) -> Dialect {
        match self {
            #[cfg(feature = "sqlite")]
            RawConnection::Sqlite(_) => Dialect::Sqlite,
            #[cfg(feature = "postgres")]
            RawConnection::Postgres(_) | RawConnection::PostgresPooled(..) => Dialect::Postgres,
        }
    }

    /// Runs a statement and returns how many rows it changed.
    pub(crate) async fn execute(
        self,
        sql: impl IntoSql,
        params: &[impl AsParam],
    ) -> ExecResult<u64> {
        match self {
            #[cfg(feature = "sqlite")]
            RawConnection::Sqlite(c) => {
                // The refresh on its own: run in the same text, its stale `changes()` would
                // count in the statement's (sqlx-sqlite adds them up).
                let star = sql.star_columns();
                if star {
                    sqlx::query(sqlite::REFRESH_SCHEMA).execute(&mut *c).await?;
                }
                Ok(sqlite::bind(sql.into_sql(), params, !star)?
                    .execute(c)
                    .await?
                    .rows_affected())
            }
            #[cfg(feature = "postgres")]
            RawConnection::Postgres(c) => Ok(pg::query_on(c, sql, params)
                .await?
                .execute(c)
                .await?
                .rows_affected()),
            #[cfg(feature = "postgres")]
            RawConnection::PostgresPooled(c, link) => Ok(pg::inline(sql, params, &link)?
                .execute(c)
                .await?
                .rows_affected()),
        }
    }

    /// Runs a query and collects its rows.
    pub(crate) async fn fetch_all(
        self,
        sql: impl IntoSql,
        params: &[impl AsParam],
    ) -> ExecResult<ResultSet> {
        match self {
            #[cfg(feature = "sqlite")]
            RawConnection::Sqlite(c) => {
                let rows = sqlite::query(sql, params)?.fetch_all(c).await?;
                collect(rows, sqlite::columns, sqlite::decode)
            }
            #[cfg(feature = "postgres")]
            RawConnection::Postgres(c) => {
                let rows = pg::query_on(c, sql, params).await?.fetch_all(c).await?;
                collect(rows, pg::columns, pg::decode)
            }
            #[cfg(feature = "postgres")]
            RawConnection::PostgresPooled(c, link) => {
                let rows = pg::inline(sql, params, &link)?.fetch_all(c).await?;
                collect(rows, pg::columns, pg::decode)
            }
        }
    }

    #[cfg(any(feature = "adk", feature = "items"))]
    /// Runs a query and turns each row into a `T` with `decode`, reading columns by
    /// position: no column names and no intermediate [`Row`]s, for the stores' records.
    pub(crate) async fn fetch_map<T>(
        self,
        sql: impl IntoSql,
        params: &[impl AsParam],
        decode: impl FnMut(RowRef<'_>) -> ExecResult<T>,
    ) -> ExecResult<Vec<T>> {
        match self {
            #[cfg(feature = "sqlite")]
            RawConnection::Sqlite(c) => {
                let mut decode = decode;
                let rows = sqlite::query(sql, params)?.fetch_all(c).await?;
                decode_each(&rows, |r| decode(RowRef::of(RowKind::Sqlite(r))))
            }
            #[cfg(feature = "postgres")]
            RawConnection::Postgres(c) => {
                let rows = pg::query_on(c, sql, params).await?.fetch_all(c).await?;
                map_pg(&rows, decode)
            }
            #[cfg(feature = "postgres")]
            RawConnection::PostgresPooled(c, link) => {
                let rows = pg::inline(sql, params, &link)?.fetch_all(c).await?;
                map_pg(&rows, decode)
            }
        }
    }

    /// Runs a query and decodes each row with sqlx's `FromRow`.
    pub(crate) async fn fetch_as<T: FromDriverRow>(
        self,
        sql: impl IntoSql,
        params: &[impl AsParam],
    ) -> ExecResult<Vec<T>> {
        match self {
            #[cfg(feature = "sqlite")]
            RawConnection::Sqlite(c) => {
                let rows = sqlite::query(sql, params)?.fetch_all(c).await?;
                Ok(decode_each(&rows, |r| T::from_row(r))?)
            }
            #[cfg(feature = "postgres")]
            RawConnection::Postgres(c) => {
                let rows = pg::query_on(c, sql, params).await?.fetch_all(c).await?;
                Ok(decode_each(&rows, |r| T::from_row(r))?)
            }
            #[cfg(feature = "postgres")]
            RawConnection::PostgresPooled(c, link) => {
                let rows = pg::inline(sql, params, &link)?.fetch_all(c).await?;
                Ok(decode_each(&rows, |r| T::from_row(r))?)
            }
        }
    }

    /// Runs a query and streams its rows as the server sends them.
    pub(crate) fn fetch(
        self,
        sql: impl IntoSql,
        params: &[impl AsParam],
    ) -> BoxStream<'a, ExecResult<Row>> {
        match self {
            #[cfg(feature = "sqlite")]
            RawConnection::Sqlite(c) => match sqlite::query(sql, params) {
                Ok(query) => decode_stream(query.fetch(c), sqlite::columns, sqlite::decode),
                Err(e) => futures_util::stream::once(async move { Err(e.into()) }).boxed(),
            },
            #[cfg(feature = "postgres")]
            RawConnection::Postgres(c) => match pg::query(sql, params) {
                Ok(query) => decode_stream(query.fetch(c), pg::columns, pg::decode),
                Err(e) => futures_util::stream::once(async move { Err(e.into()) }).boxed(),
            },
            #[cfg(feature = "postgres")]
            RawConnection::PostgresPooled(c, link) => match pg::inline(sql, params, &link) {
                Ok(raw) => decode_stream(raw.fetch(c), pg::columns, pg::decode),
                Err(e) => futures_util::stream::once(async move { Err(e) }).boxed(),
            },
        }
    }
}

/// The rows of one PostgreSQL result through `decode`, each column's type checked once.
#[cfg(all(feature = "postgres", any(feature = "adk", feature = "items")))]
fn map_pg<T>(
    rows: &[PgRow],
    mut decode: impl FnMut(RowRef<'_>) -> ExecResult<T>,
) -> ExecResult<Vec<T>> {
    #[cfg(feature = "adk")]
    let checked = crate::column_types::CheckedColumns::default();
    decode_each(rows, |r| {
        let row = RowRef::of(RowKind::Postgres(r));
        #[cfg(feature = "adk")]
        let row = {
            checked.enter(r);
            row.checked_by(&checked)
        };
        decode(row)
    })
}

/// A value that failed to encode while binding, named by its 1-based position.
fn bind_error(n: usize, e: sqlx::error::BoxDynError) -> sqlx::Error {
    sqlx::Error::Encode(format!("Encoding argument ${} failed: {e}", n + 1).into())
}

/// `decode` of each of `items`, into a vector sized once: collected through `Result`, the
/// vector would not know its length and be reallocated (and its items copied) as it grew.
fn decode_each<I: ExactSizeIterator, T, E>(
    items: impl IntoIterator<IntoIter = I>,
    mut decode: impl FnMut(I::Item) -> Result<T, E>,
) -> Result<Vec<T>, E> {
    let items = items.into_iter();
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        out.push(decode(item)?);
    }
    Ok(out)
}

fn collect<R>(
    rows: Vec<R>,
    columns: fn(&R) -> Arc<[String]>,
    decode: fn(&R) -> ExecResult<Vec<Value>>,
) -> ExecResult<ResultSet> {
    let Some(first) = rows.first() else {
        return Ok(ResultSet::default());
    };
    let names = columns(first);
    let out = decode_each(&rows, |r| {
        decode(r).map(|values| Row::new(names.clone(), values))
    })?;
    Ok(ResultSet {
        columns: names.to_vec(),
        rows: out,
    })
}

fn decode_stream<'a, R: Send + 'a>(
    stream: BoxStream<'a, Result<R, sqlx::Error>>,
    columns: fn(&R) -> Arc<[String]>,
    decode: fn(&R) -> ExecResult<Vec<Value>>,
) -> BoxStream<'a, ExecResult<Row>> {
    let mut names: Option<Arc<[String]>> = None;
    stream
        .map(move |r| {
            let r = r?;
            let names = names.get_or_insert_with(|| columns(&r)).clone();
            Ok(Row::new(names, decode(&r)?))
        })
        .boxed()
}

#[cfg(any(feature = "adk", feature = "items"))]
/// A driver row, read column by column (see [`RawConnection::fetch_map`]), from column
/// `base` on: a row that joins two records is read as two, each from its first column.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowRef<'r> {
    row: RowKind<'r>,
    base: usize,
    /// The result's columns already checked against the types they are read as.
    #[cfg(all(feature = "adk", feature = "postgres"))]
    checked: Option<&'r crate::column_types::CheckedColumns>,
}

#[cfg(any(feature = "adk", feature = "items"))]
#[derive(Debug, Clone, Copy)]
enum RowKind<'r> {
    #[cfg(feature = "sqlite")]
    Sqlite(&'r SqliteRow),
    #[cfg(feature = "postgres")]
    Postgres(&'r PgRow),
}

#[cfg(any(feature = "adk", feature = "items"))]
impl<'r> RowRef<'r> {
    fn of(row: RowKind<'r>) -> Self {
        RowRef {
            row,
            base: 0,
            #[cfg(all(feature = "adk", feature = "postgres"))]
            checked: None,
        }
    }

    /// The same row, reading its columns as `checked` has found them (one per result).
    #[cfg(all(feature = "adk", feature = "postgres"))]
    fn checked_by(self, checked: &'r crate::column_types::CheckedColumns) -> Self {
        RowRef {
            checked: Some(checked),
            ..self
        }
    }

    /// The same row, its column `by` read as column 0.
    #[cfg(feature = "adk")]
    pub(crate) fn shifted(self, by: usize) -> Self {
        RowRef {
            base: self.base + by,
            ..self
        }
    }

    /// Column `i` as a [`Value`], decoded as [`execute_sql`](crate::ReadContext::execute_sql)
    /// would.
    pub(crate) fn value(&self, i: usize) -> ExecResult<Value> {
        let i = self.base + i;
        match self.row {
            #[cfg(feature = "sqlite")]
            RowKind::Sqlite(r) => sqlite::decode_column(r, i),
            #[cfg(feature = "postgres")]
            RowKind::Postgres(r) => pg::decode_column(r, i),
        }
    }

    #[cfg(feature = "adk")]
    /// Column `i` as a `T`: on PostgreSQL decoded straight to `T`, on SQLite (which types
    /// values, not columns) through its [`Value`].
    #[inline]
    pub(crate) fn get<T: FromColumn>(&self, i: usize) -> ExecResult<T> {
        let i = self.base + i;
        match self.row {
            #[cfg(feature = "sqlite")]
            RowKind::Sqlite(r) => convert(i, sqlite::decode_column(r, i)?),
            #[cfg(feature = "postgres")]
            RowKind::Postgres(r) => {
                let known = self
                    .checked
                    .is_some_and(|c| c.known(r, i, std::any::TypeId::of::<T>(), T::pg_compatible));
                T::from_pg(r, i, known)
            }
        }
    }

    /// True when column `i` is NULL: nothing decoded, nothing allocated.
    #[cfg(feature = "adk")]
    pub(crate) fn is_null(&self, i: usize) -> ExecResult<bool> {
        use sqlx::ValueRef;
        let i = self.base + i;
        Ok(match self.row {
            #[cfg(feature = "sqlite")]
            RowKind::Sqlite(r) => r.try_get_raw(i)?.is_null(),
            #[cfg(feature = "postgres")]
            RowKind::Postgres(r) => r.try_get_raw(i)?.is_null(),
        })
    }

    #[cfg(feature = "adk")]
    /// True for a PostgreSQL row.
    pub(crate) fn is_postgres(&self) -> bool {
        match self.row {
            #[cfg(feature = "sqlite")]
            RowKind::Sqlite(_) => false,
            #[cfg(feature = "postgres")]
            RowKind::Postgres(_) => true,
        }
    }
}

#[cfg(feature = "adk")]
/// Column `i`'s value converted to `T`, the value moving into it; a mismatch names the column.
pub(crate) fn convert<T: crate::value::FromValue>(i: usize, value: Value) -> ExecResult<T> {
    T::from_owned(value).map_err(|e| ExecError::Crate(e.in_column(i)))
}

#[cfg(feature = "adk")]
/// A type the stores read from a column, by position, without going through [`Value`] on
/// PostgreSQL (whose columns are typed, so sqlx decodes them directly and checks the type).
pub(crate) trait FromColumn: crate::value::FromValue + 'static {
    /// Column `i` of `row`; `known`: its type was already found compatible (see
    /// [`column_types`](crate::column_types)), so sqlx need not check it again.
    #[cfg(feature = "postgres")]
    fn from_pg(row: &PgRow, i: usize, known: bool) -> ExecResult<Self>;
    /// Whether a column of type `ty` decodes as `Self` (sqlx's `Type::compatible`).
    #[cfg(feature = "postgres")]
    fn pg_compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool;
}

/// `row.try_get(i)`, or without sqlx's type check when `known` compatible.
#[cfg(all(feature = "adk", feature = "postgres"))]
#[inline]
fn pg_get<'r, T>(row: &'r PgRow, i: usize, known: bool) -> Result<T, sqlx::Error>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    if known {
        row.try_get_unchecked(i)
    } else {
        row.try_get(i)
    }
}

#[cfg(feature = "adk")]
/// sqlx's decode error for column `i` as this crate's, naming the column and both types.
#[cfg(feature = "postgres")]
fn pg_decode_error(row: &PgRow, i: usize, expected: &str, err: sqlx::Error) -> ExecError {
    match err {
        sqlx::Error::ColumnDecode { source, .. } => {
            let (column, found) = row
                .try_column(i)
                .map(|c| (c.name().to_owned(), c.type_info().name().to_owned()))
                .unwrap_or_else(|_| (i.to_string(), "?".to_owned()));
            ExecError::Crate(Error::ColumnDecode {
                column,
                expected: expected.to_owned(),
                found,
                source: Some(source),
            })
        }
        other => ExecError::Sql(other),
    }
}

#[cfg(feature = "adk")]
macro_rules! from_column {
    ($($t:ty),*) => {$(
        impl FromColumn for $t {
            #[cfg(feature = "postgres")]
            #[inline]
            fn from_pg(row: &PgRow, i: usize, known: bool) -> ExecResult<Self> {
                pg_get::<$t>(row, i, known).map_err(|e| pg_decode_error(row, i, stringify!($t), e))
            }
            #[cfg(feature = "postgres")]
            fn pg_compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
                <$t as sqlx::Type<sqlx::Postgres>>::compatible(ty)
            }
        }
    )*};
}

#[cfg(feature = "adk")]
from_column!(
    i64,
    f64,
    String,
    Option<String>,
    Option<Vec<u8>>,
    Option<bool>
);

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01 00:00 UTC).
#[cfg(all(feature = "adk", feature = "postgres"))]
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

#[cfg(feature = "adk")]
impl FromColumn for chrono::DateTime<chrono::Utc> {
    /// A column already found compatible (`TIMESTAMPTZ` or `TIMESTAMP`) in binary form is
    /// microseconds from PostgreSQL's epoch, read as such: sqlx builds the epoch's date
    /// and adds a `Duration` to it, calendar arithmetic that cost more than the rest of
    /// the column. Anything else (text form, infinity, unchecked) goes through sqlx.
    #[cfg(feature = "postgres")]
    #[inline]
    fn from_pg(row: &PgRow, i: usize, known: bool) -> ExecResult<Self> {
        if known
            && let Ok(raw) = row.try_get_raw(i)
            && raw.format() == sqlx::postgres::PgValueFormat::Binary
            && let Ok(bytes) = raw.as_bytes()
            && let Ok(micros) = <[u8; 8]>::try_from(bytes)
            && let Some(at) = i64::from_be_bytes(micros)
                .checked_add(PG_EPOCH_MICROS)
                .and_then(chrono::DateTime::from_timestamp_micros)
        {
            return Ok(at);
        }
        pg_get::<chrono::DateTime<chrono::Utc>>(row, i, known)
            .map_err(|e| pg_decode_error(row, i, "chrono::DateTime<chrono::Utc>", e))
    }
    #[cfg(feature = "postgres")]
    fn pg_compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
        <chrono::DateTime<chrono::Utc> as sqlx::Type<sqlx::Postgres>>::compatible(ty)
    }
}

#[cfg(feature = "adk")]
impl FromColumn for serde_json::Value {
    #[cfg(feature = "postgres")]
    #[inline]
    fn from_pg(row: &PgRow, i: usize, known: bool) -> ExecResult<Self> {
        let json = pg_get::<sqlx::types::Json<serde_json::Value>>(row, i, known);
        Ok(json.map_err(|e| pg_decode_error(row, i, "JSON", e))?.0)
    }
    #[cfg(feature = "postgres")]
    fn pg_compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
        <sqlx::types::Json<serde_json::Value> as sqlx::Type<sqlx::Postgres>>::compatible(ty)
    }
}

#[cfg(feature = "adk")]
impl FromColumn for Option<serde_json::Value> {
    #[cfg(feature = "postgres")]
    #[inline]
    fn from_pg(row: &PgRow, i: usize, known: bool) -> ExecResult<Self> {
        let json = pg_get::<Option<sqlx::types::Json<serde_json::Value>>>(row, i, known);
        Ok(json
            .map_err(|e| pg_decode_error(row, i, "Option<JSON>", e))?
            .map(|j| j.0))
    }
    #[cfg(feature = "postgres")]
    fn pg_compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
        <Option<sqlx::types::Json<serde_json::Value>> as sqlx::Type<sqlx::Postgres>>::compatible(ty)
    }
}

fn column_names<C: Column>(cols: &[C]) -> Arc<[String]> {
    cols.iter().map(|c| c.name().to_owned()).collect()
}

fn unsupported(column: &str, ty: &str) -> ExecError {
    ExecError::Crate(Error::Unsupported(format!(
        "column `{column}` has type {ty}, which `Value` does not represent; cast it in SQL \
         (for example `{column}::text`) or decode it with sqlx through `Session::connection()`"
    )))
}

#[cfg(feature = "postgres")]
mod pg {
    use super::*;
    use sqlx::Postgres;
    use sqlx::encode::IsNull;
    use sqlx::error::BoxDynError;
    use sqlx::postgres::types::Oid;
    use sqlx::postgres::{PgArgumentBuffer, PgArguments, PgTypeInfo};

    /// A NULL with no declared type (OID 0), so the server infers it from context, as for a
    /// literal `NULL`; a typed NULL would fail against columns of any other type.
    struct UntypedNull;

    impl sqlx::Type<Postgres> for UntypedNull {
        fn type_info() -> PgTypeInfo {
            PgTypeInfo::with_oid(Oid(0))
        }
    }

    impl sqlx::Encode<'_, Postgres> for UntypedNull {
        fn encode_by_ref(&self, _: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
            Ok(IsNull::Yes)
        }
    }

    /// NUMERIC in PostgreSQL's binary form, read and written by [`Numeric`](crate::value::Numeric)'s codec.
    pub(super) struct PgNumeric(pub(super) crate::value::Numeric);

    const NUMERIC_OID: Oid = Oid(1700);

    impl sqlx::Type<Postgres> for PgNumeric {
        fn type_info() -> PgTypeInfo {
            PgTypeInfo::with_oid(NUMERIC_OID)
        }
    }

    impl sqlx::Encode<'_, Postgres> for PgNumeric {
        fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
            buf.extend_from_slice(&self.0.to_pg_binary());
            Ok(IsNull::No)
        }
    }

    impl<'r> sqlx::Decode<'r, Postgres> for PgNumeric {
        fn decode(value: sqlx::postgres::PgValueRef<'r>) -> Result<Self, BoxDynError> {
            use sqlx::postgres::PgValueFormat;
            match value.format() {
                PgValueFormat::Binary => Ok(PgNumeric(crate::value::Numeric::from_pg_binary(
                    value.as_bytes()?,
                )?)),
                PgValueFormat::Text => Ok(PgNumeric(value.as_str()?.parse()?)),
            }
        }
    }

    pub(crate) type Query = sqlx::query::Query<'static, Postgres, PgArguments>;

    pub(crate) fn query(sql: impl IntoSql, params: &[impl AsParam]) -> Result<Query, sqlx::Error> {
        let fits = sql.verdict(params) == crate::param_types::Verdict::Fits;
        bind(sql, params, fits)
    }

    /// [`query`], asking the connection's statement cache (no round trip when the text is
    /// cached) when the first run's NULLs leave the parameters' types open.
    pub(crate) async fn query_on(
        c: &mut PgConnection,
        sql: impl IntoSql,
        params: &[impl AsParam],
    ) -> Result<Query, sqlx::Error> {
        use crate::param_types::{Verdict, fits_statement};
        use sqlx::{Executor, Statement};
        let fits = match sql.verdict(params) {
            Verdict::Fits => true,
            Verdict::Differs => false,
            Verdict::Ask => {
                let text = AssertSqlSafe(sql.text().to_owned()).into_sql_str();
                let statement = c.prepare(text).await?;
                let types: Vec<&str> = match statement.parameters() {
                    Some(sqlx::Either::Left(types)) => types.iter().map(|t| t.name()).collect(),
                    _ => Vec::new(),
                };
                fits_statement(sql.text(), params, &types)
            }
        };
        bind(sql, params, fits)
    }

    /// Binds `params` to `sql`; `cached` false gives the statement a text of its own,
    /// unnamed and never cached (sqlx looks its cache up by text even for
    /// `persistent(false)`), for parameters of other types than the cached statement's.
    /// A value that fails to encode is the error sqlx gives when such a query is run.
    fn bind(
        sql: impl IntoSql,
        params: &[impl AsParam],
        cached: bool,
    ) -> Result<Query, sqlx::Error> {
        // Sized up front: grown value by value, the type list and the buffer were each
        // reallocated (and copied) several times per statement.
        let mut args = PgArguments::default();
        sqlx::Arguments::reserve(&mut args, params.len(), encoded_size(params));
        let mut query = if cached {
            sqlx::query_with(sql.into_sql(), args)
        } else {
            let text = format!(
                "{}\n/* parameter types differ from the cached statement's */",
                sql.text()
            );
            sqlx::query_with(AssertSqlSafe(text).into_sql_str(), args).persistent(false)
        };
        // In place: `Query::bind` takes and returns the query by value, a copy per value.
        for (n, v) in params.iter().enumerate() {
            let q = &mut query;
            match v.as_param() {
                Param::Null => q.try_bind(UntypedNull),
                Param::Bool(b) => q.try_bind(b),
                Param::Int(i) => q.try_bind(i),
                Param::Float(f) => q.try_bind(f),
                Param::Text(s) => q.try_bind(s),
                Param::Bytes(b) => q.try_bind(b),
                Param::Json(j) => q.try_bind(sqlx::types::Json(j)),
                Param::Timestamp(t) => q.try_bind(t),
                Param::Numeric(n) => q.try_bind(PgNumeric(n.clone())),
                Param::Uuid(u) => q.try_bind(u),
                Param::Date(d) => q.try_bind(d),
                Param::Time(t) => q.try_bind(t),
            }
            .map_err(|e| bind_error(n, e))?;
        }
        Ok(query)
    }

    /// About how many bytes `params` take in the binary bind message: each value's length
    /// word and its payload (a guess for JSON, whose text is not known before it is written).
    fn encoded_size(params: &[impl AsParam]) -> usize {
        params
            .iter()
            .map(|v| {
                4 + match v.as_param() {
                    Param::Null => 0,
                    Param::Bool(_) => 1,
                    Param::Int(_) | Param::Float(_) | Param::Timestamp(_) | Param::Time(_) => 8,
                    Param::Date(_) => 4,
                    Param::Uuid(_) => 16,
                    Param::Numeric(_) => 16,
                    Param::Text(s) => s.len(),
                    Param::Bytes(b) => b.len(),
                    Param::Json(_) => 128,
                }
            })
            .sum()
    }

    /// The statement as one simple-protocol message with client-side literals, for a
    /// transaction pooler; with the link's server-side timeout when it has one.
    pub(super) fn inline(
        sql: impl IntoSql,
        params: &[impl AsParam],
        link: &PoolerLink,
    ) -> ExecResult<sqlx::RawSql> {
        use std::fmt::Write;
        let sql = sql.text();
        // The head first (mark, timeout), the statement written after it: one buffer.
        let mut text =
            String::with_capacity(crate::pooler::Mark::LEN + 40 + sql.len() + 16 * params.len());
        if let Some(key) = link.mark {
            // First in the text, as `pg_stat_activity` shows it (see `Mark`).
            crate::pooler::Mark::write(key, &mut text);
        }
        if let Some(t) = link.timeout {
            let ms = t.as_millis().clamp(1, i32::MAX as u128);
            let _ = write!(text, "SET LOCAL statement_timeout = {ms}; ");
        }
        let mut text = crate::inline::inline_after(text, sql, params)?;
        if link.timeout.is_some() && link.in_transaction {
            // SET LOCAL lasts to the end of the (implicit) transaction the message runs in;
            // inside an open one it is put back after the statement.
            text.push_str("; SET LOCAL statement_timeout TO DEFAULT");
        }
        Ok(sqlx::raw_sql(AssertSqlSafe(text)))
    }

    pub(super) fn columns(row: &PgRow) -> Arc<[String]> {
        column_names(row.columns())
    }

    pub(super) fn decode(row: &PgRow) -> ExecResult<Vec<Value>> {
        decode_each(0..row.len(), |i| decode_column(row, i))
    }

    pub(super) fn decode_column(row: &PgRow, i: usize) -> ExecResult<Value> {
        let col = row.try_column(i)?;
        let ty = col.type_info().name();
        Ok(match ty {
            "BOOL" => row.try_get::<Option<bool>, _>(i)?.into(),
            "INT2" => row.try_get::<Option<i16>, _>(i)?.into(),
            "INT4" => row.try_get::<Option<i32>, _>(i)?.into(),
            "INT8" => row.try_get::<Option<i64>, _>(i)?.into(),
            "OID" => row.try_get::<Option<Oid>, _>(i)?.map(|o| o.0).into(),
            "FLOAT4" => row.try_get::<Option<f32>, _>(i)?.into(),
            "FLOAT8" => row.try_get::<Option<f64>, _>(i)?.into(),
            "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" | "CHAR" | "\"CHAR\"" | "UNKNOWN" => {
                row.try_get::<Option<String>, _>(i)?.into()
            }
            "BYTEA" => row.try_get::<Option<Vec<u8>>, _>(i)?.into(),
            "JSON" | "JSONB" => row.try_get::<Option<serde_json::Value>, _>(i)?.into(),
            "TIMESTAMPTZ" => row
                .try_get::<Option<chrono::DateTime<chrono::Utc>>, _>(i)?
                .into(),
            "TIMESTAMP" => row
                .try_get::<Option<chrono::NaiveDateTime>, _>(i)?
                .map(|n| n.and_utc())
                .into(),
            "DATE" => row.try_get::<Option<chrono::NaiveDate>, _>(i)?.into(),
            "TIME" => row.try_get::<Option<chrono::NaiveTime>, _>(i)?.into(),
            "UUID" => row.try_get::<Option<uuid::Uuid>, _>(i)?.into(),
            "NUMERIC" => row.try_get::<Option<PgNumeric>, _>(i)?.map(|n| n.0).into(),
            "VOID" => Value::Null,
            other => return Err(unsupported(col.name(), other)),
        })
    }
}

/// A statement with `params` bound as the extended protocol sends them (for tests that
/// compare the inlined literals with it).
#[cfg(all(test, feature = "postgres"))]
pub(crate) fn pg_query_for_tests(sql: String, params: &[Value]) -> pg::Query {
    pg::query(sql, params).expect("the values encode")
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use super::*;
    use sqlx::Sqlite;
    use sqlx::ValueRef;
    use sqlx::sqlite::SqliteArguments;

    pub(super) type Query = sqlx::query::Query<'static, Sqlite, SqliteArguments>;

    /// Binds `params` to `sql`, sized up front and in place (as on PostgreSQL); a value
    /// that fails to encode is an encode error naming its position, before anything runs.
    pub(super) fn query(sql: impl IntoSql, params: &[impl AsParam]) -> Result<Query, sqlx::Error> {
        if sql.star_columns() {
            // Never cached, and after `REFRESH_SCHEMA` in the same text: sqlx-sqlite
            // prepares each statement of a text once the one before it has run, so the
            // `*` is expanded against the schema as it is (see `star_columns`). sqlx 0.9
            // marks texts of several statements deprecated for a later release; should it
            // stop running them, `tests/schema_change.rs` fails.
            let text = format!("{REFRESH_SCHEMA}; {}", sql.text());
            return bind(AssertSqlSafe(text).into_sql_str(), params, false);
        }
        bind(sql.into_sql(), params, true)
    }

    /// Binds `params` to `sql`, a statement cached by sqlx-sqlite or not.
    pub(super) fn bind(
        sql: SqlStr,
        params: &[impl AsParam],
        cached: bool,
    ) -> Result<Query, sqlx::Error> {
        let mut args = SqliteArguments::default();
        sqlx::Arguments::reserve(&mut args, params.len(), 0);
        let mut q = sqlx::query_with(sql, args).persistent(cached);
        for (n, v) in params.iter().enumerate() {
            match v.as_param() {
                Param::Null => q.try_bind(None::<i64>),
                Param::Bool(b) => q.try_bind(b),
                Param::Int(i) => q.try_bind(i),
                Param::Float(f) => q.try_bind(f),
                Param::Text(s) => q.try_bind(s),
                Param::Bytes(b) => q.try_bind(b),
                Param::Json(j) => q.try_bind(j.to_string()),
                Param::Timestamp(t) => q.try_bind(t),
                // SQLite has no such types: their text, which reads back into them.
                Param::Numeric(n) => q.try_bind(n.to_string()),
                Param::Uuid(u) => q.try_bind(u.hyphenated().to_string()),
                Param::Date(d) => q.try_bind(d.to_string()),
                Param::Time(t) => q.try_bind(t.to_string()),
            }
            .map_err(|e| bind_error(n, e))?;
        }
        Ok(q)
    }

    /// Run before a statement whose columns come from a `*` (`star_columns`): it returns
    /// nothing, but reads the schema cookie as it starts, so the connection reloads a
    /// schema another connection changed before that statement is prepared.
    pub(super) const REFRESH_SCHEMA: &str = "SELECT 1 FROM sqlite_master LIMIT 0";

    /// Whether a statement's result columns may come from a `*` (`SELECT *`, `t.*`,
    /// `RETURNING *`), so that an `ALTER TABLE` can change how many there are. SQLite
    /// prepares a statement against the schema it last read, and when it runs one whose
    /// schema changed it prepares it again by itself; but sqlx-sqlite 0.9 keeps the
    /// columns of the first preparation, so the next row panics its worker thread (the
    /// column count no longer matches), the result ends early as if empty, and the
    /// connection is dead. Such statements are therefore never cached, and run after
    /// [`REFRESH_SCHEMA`]. Conservative: any `*` but that of `count(*)` counts.
    pub(super) fn star_columns(sql: &str) -> bool {
        sql.match_indices('*')
            .any(|(i, _)| !(sql[..i].ends_with('(') && sql[i + 1..].starts_with(')')))
    }

    pub(super) fn columns(row: &SqliteRow) -> Arc<[String]> {
        column_names(row.columns())
    }

    pub(super) fn decode(row: &SqliteRow) -> ExecResult<Vec<Value>> {
        decode_each(0..row.len(), |i| decode_column(row, i))
    }

    pub(super) fn decode_column(row: &SqliteRow, i: usize) -> ExecResult<Value> {
        // SQLite types values, not columns: read the value's storage class, and use the
        // declared column type only to tell booleans from integers.
        let col = row.try_column(i)?;
        let raw = row.try_get_raw(i)?;
        if raw.is_null() {
            return Ok(Value::Null);
        }
        let storage = raw.type_info();
        Ok(match storage.name() {
            "INTEGER" if col.type_info().name().eq_ignore_ascii_case("BOOLEAN") => {
                Value::Bool(row.try_get_unchecked::<i64, _>(i)? != 0)
            }
            "INTEGER" => Value::Int(row.try_get_unchecked::<i64, _>(i)?),
            "REAL" => Value::Float(row.try_get_unchecked::<f64, _>(i)?),
            "TEXT" => Value::Text(row.try_get_unchecked::<String, _>(i)?),
            "BLOB" => Value::Bytes(row.try_get_unchecked::<Vec<u8>, _>(i)?),
            other => return Err(unsupported(col.name(), other)),
        })
    }
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use super::sqlite::star_columns;

    #[test]
    fn star_columns_are_told_from_count_star() {
        for sql in [
            "SELECT * FROM t",
            "SELECT t.* FROM t JOIN u ON u.id = t.id",
            "INSERT INTO t VALUES (1) RETURNING *",
            "SELECT count(*), * FROM t",
            "SELECT a * 2 FROM t",
        ] {
            assert!(star_columns(sql), "{sql}");
        }
        for sql in ["SELECT count(*) FROM t", "SELECT a, b FROM t", ""] {
            assert!(!star_columns(sql), "{sql}");
        }
    }
}

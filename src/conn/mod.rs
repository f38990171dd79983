//! The live connection behind a session, and the one place SQL meets the driver: binding
//! [`Value`](crate::Value)s and decoding rows, per dialect.
//!
//! One file per job: `owned.rs` (the session's own connection: readied, reset, pinged,
//! closed), `run.rs` (running a statement on a borrowed one and collecting its rows),
//! `sql_text.rs` (the kinds of SQL text and how each reaches sqlx), `row_ref.rs` (the
//! stores' rows read column by column), and per backend `pg.rs` and `sqlite.rs` (binding
//! values and decoding columns).

use std::sync::Arc;

use sqlx::Column;

use crate::error::Error;

#[cfg(feature = "postgres")]
use sqlx::postgres::{PgConnection, PgRow};
#[cfg(feature = "sqlite")]
use sqlx::sqlite::{SqliteConnection, SqliteRow};

mod owned;
#[cfg(feature = "postgres")]
mod pg;
#[cfg(any(feature = "adk", feature = "items"))]
mod row_ref;
mod run;
mod sql_text;
#[cfg(feature = "sqlite")]
mod sqlite;

pub(crate) use owned::Conn;
#[cfg(all(test, feature = "postgres"))]
pub(crate) use pg::pg_query_for_tests;
#[cfg(any(feature = "adk", feature = "items"))]
pub(crate) use row_ref::RowRef;
#[cfg(feature = "adk")]
pub(crate) use row_ref::convert;
#[cfg(any(feature = "adk", feature = "items"))]
pub(crate) use sql_text::CachedSql;
pub(crate) use sql_text::{IntoSql, fixed};

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
/// that [`Value`](crate::Value) does not cover. Get it from
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

fn column_names<C: Column>(cols: &[C]) -> Arc<[String]> {
    cols.iter().map(|c| c.name().to_owned()).collect()
}

fn unsupported(column: &str, ty: &str) -> ExecError {
    ExecError::Crate(Error::Unsupported(format!(
        "column `{column}` has type {ty}, which `Value` does not represent; cast it in SQL \
         (for example `{column}::text`) or decode it with sqlx through `Session::connection()`"
    )))
}

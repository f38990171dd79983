//! Running statements on a borrowed connection, and collecting or streaming their rows.

use std::sync::Arc;

use futures_core::stream::BoxStream;
use futures_util::StreamExt;

#[cfg(feature = "postgres")]
use super::PoolerLink;
#[cfg(any(feature = "adk", feature = "items"))]
use super::row_ref::{RowKind, RowRef};
use super::{ExecResult, FromDriverRow, IntoSql, RawConnection};
use crate::dialect::Dialect;
use crate::param::AsParam;
use crate::row::{ResultSet, Row};
use crate::value::Value;

#[cfg(feature = "postgres")]
use super::pg;
#[cfg(feature = "sqlite")]
use super::sqlite;
#[cfg(all(feature = "postgres", any(feature = "adk", feature = "items")))]
use sqlx::postgres::PgRow;

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
pub(super) fn bind_error(n: usize, e: sqlx::error::BoxDynError) -> sqlx::Error {
    sqlx::Error::Encode(format!("Encoding argument ${} failed: {e}", n + 1).into())
}

/// `decode` of each of `items`, into a vector sized once: collected through `Result`, the
/// vector would not know its length and be reallocated (and its items copied) as it grew.
pub(super) fn decode_each<I: ExactSizeIterator, T, E>(
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

//! The executor every query goes through, whatever runs it: a session outside any
//! transaction, a [`Transaction`](crate::Transaction) or a [`Snapshot`](crate::Snapshot).
//! The public methods are written once, on [`ReadContext`](super::ReadContext) and
//! [`WriteContext`](super::WriteContext); this module is what they share.

use std::future::Future;

use futures_core::stream::BoxStream;
use futures_util::StreamExt;

use super::Meta;
#[cfg(any(feature = "adk", feature = "items"))]
use crate::conn::{ExecResult, RowRef};
use crate::conn::{FromDriverRow, IntoSql, RawConnection};
use crate::database::Database;
use crate::error::Result;
use crate::keyset::KeySet;
use crate::param::AsParam;
use crate::read::ReadRequest;
use crate::row::{ResultSet, Row};

/// A connection ready for one statement, with the bookkeeping that turns its failures into
/// this crate's errors (a lost connection marks the session broken).
#[derive(Debug)]
pub struct Exec<'a> {
    pub(crate) conn: RawConnection<'a>,
    pub(crate) meta: &'a mut Meta,
    pub(crate) db: &'a Database,
}

impl<'a> Exec<'a> {
    pub(crate) async fn fetch_all(
        self,
        sql: impl IntoSql,
        params: &[impl AsParam],
    ) -> Result<ResultSet> {
        let res = self.conn.fetch_all(sql, params).await;
        res.map_err(|e| self.meta.fail(e))
    }

    pub(crate) fn fetch(
        self,
        sql: impl IntoSql,
        params: &[impl AsParam],
    ) -> BoxStream<'a, Result<Row>> {
        let meta = self.meta;
        self.conn
            .fetch(sql, params)
            .map(move |r| r.map_err(|e| meta.fail(e)))
            .boxed()
    }

    pub(crate) async fn execute(self, sql: impl IntoSql, params: &[impl AsParam]) -> Result<u64> {
        let res = self.conn.execute(sql, params).await;
        res.map_err(|e| self.meta.fail(e))
    }

    /// Runs a query and decodes each row by position with `decode` (the stores' records).
    #[cfg(any(feature = "adk", feature = "items"))]
    pub(crate) async fn map_rows<T>(
        self,
        sql: impl IntoSql,
        params: &[impl AsParam],
        decode: impl FnMut(RowRef<'_>) -> ExecResult<T>,
    ) -> Result<Vec<T>> {
        let res = self.conn.fetch_map(sql, params, decode).await;
        res.map_err(|e| self.meta.fail(e))
    }

    /// Runs a query and decodes each row with sqlx's `FromRow`.
    pub(crate) async fn fetch_as<T: FromDriverRow>(
        self,
        sql: impl IntoSql,
        params: &[impl AsParam],
    ) -> Result<Vec<T>> {
        let res = self.conn.fetch_as(sql, params).await;
        res.map_err(|e| self.meta.fail(e))
    }

    pub(crate) async fn read(
        self,
        request: &ReadRequest,
        keyset: &KeySet,
        limit: usize,
    ) -> Result<ResultSet> {
        let res = request.run(self.conn, self.db, keyset, limit).await;
        res.map_err(|e| self.meta.fail(e))
    }
}

/// What runs statements: implemented by [`Session`](crate::Session),
/// [`Transaction`](crate::Transaction) and [`Snapshot`](crate::Snapshot), and by nothing
/// else (the trait is not reachable from outside the crate).
pub trait Context: Send {
    /// The connection, ready for a statement.
    fn exec(&mut self) -> impl Future<Output = Result<Exec<'_>>> + Send;
}

//! The one query surface: [`ReadContext`] (queries and reads) and [`WriteContext`] (DML),
//! as in Spanner's Java client, written once for sessions, transactions and snapshots.

use std::future::Future;
use std::time::Duration;

use futures_core::stream::BoxStream;
use futures_util::StreamExt;

use super::exec::{Context, Exec};
use super::limit::Limit;
use crate::conn::FromDriverRow;
use crate::error::Result;
use crate::keyset::KeySet;
use crate::read::ReadRequest;
use crate::row::{ResultSet, Row};
use crate::value::Value;

/// Queries and reads, the same on a [`Session`](crate::Session) (each statement on its
/// own), a [`Transaction`](crate::Transaction) and a [`Snapshot`](crate::Snapshot).
///
/// In the prelude: `use session_pool::prelude::*;`. Parameters are positional, written
/// `$1`, `$2`, … on both backends; build them with [`params!`](crate::params).
///
/// ```no_run
/// # async fn demo(session: &mut session_pool::Session) -> session_pool::Result<()> {
/// use session_pool::params;
/// use session_pool::prelude::*;
///
/// #[derive(serde::Deserialize)]
/// struct Counter { id: i64, n: i64 }
///
/// let rows = session.execute_sql("SELECT id, n FROM counters WHERE id = $1", &params![1]).await?;
/// let counters: Vec<Counter> = rows.deserialize()?;
/// let mut snapshot = session.snapshot().await?;
/// let same = snapshot.execute_sql("SELECT id, n FROM counters", &[]).await?;
/// # Ok(()) }
/// ```
pub trait ReadContext: Context {
    /// The same context, with every statement run through it bounded by `timeout` (the
    /// seed's `execute_sql(timeout=…)`): past it the statement is cancelled on the server
    /// (PostgreSQL: a cancel for its backend, SQLite: an interrupt) and fails with
    /// [`Error::StatementTimeout`](crate::Error::StatementTimeout); the session stays
    /// usable. With a database-wide
    /// [`statement_timeout`](crate::DatabaseOptions::statement_timeout) too, the shorter
    /// of the two applies.
    ///
    /// A stream ([`execute_sql_stream`](ReadContext::execute_sql_stream)) is bounded for as
    /// long as it runs, its rows' consumption included.
    ///
    /// ```no_run
    /// # async fn demo(session: &mut session_pool::Session) -> session_pool::Result<()> {
    /// use std::time::Duration;
    /// use session_pool::prelude::*;
    /// let rows = session
    ///     .with_timeout(Duration::from_millis(250))
    ///     .execute_sql("SELECT count(*) FROM events", &[])
    ///     .await?;
    /// # Ok(()) }
    /// ```
    fn with_timeout(&mut self, timeout: Duration) -> WithTimeout<'_, Self>
    where
        Self: Sized,
    {
        WithTimeout {
            inner: self,
            timeout,
        }
    }

    /// Runs a query and collects its rows.
    fn execute_sql(
        &mut self,
        sql: &str,
        params: &[Value],
    ) -> impl Future<Output = Result<ResultSet>> + Send {
        async move {
            self.exec()
                .await?
                .checked(sql, params.len())?
                .fetch_all(sql, params)
                .await
        }
    }

    /// Runs a query and streams its rows as the server sends them. Errors (including
    /// [`Error::NotCreated`](crate::Error::NotCreated)) come as items of the stream.
    fn execute_sql_stream<'a>(
        &'a mut self,
        sql: &'a str,
        params: &'a [Value],
    ) -> BoxStream<'a, Result<Row>> {
        futures_util::stream::once(self.exec())
            .flat_map(
                move |exec| match exec.and_then(|e| e.checked(sql, params.len())) {
                    Ok(exec) => exec.fetch(sql, params),
                    Err(e) => futures_util::stream::once(async { Err(e) }).boxed(),
                },
            )
            .boxed()
    }

    /// Runs a query and decodes each row with sqlx's
    /// [`FromRow`](https://docs.rs/sqlx/latest/sqlx/trait.FromRow.html) (derive it with
    /// `#[derive(sqlx::FromRow)]`), straight from the driver's row on either backend.
    fn query_as<T: FromDriverRow>(
        &mut self,
        sql: &str,
        params: &[Value],
    ) -> impl Future<Output = Result<Vec<T>>> + Send {
        async move {
            self.exec()
                .await?
                .checked(sql, params.len())?
                .fetch_as(sql, params)
                .await
        }
    }

    /// Reads rows of `table` (Spanner's `read`): the `columns` of the rows in `keyset`,
    /// keyed on the primary key or on `index` when given, in key order, at most `limit`
    /// rows (0: no limit). Names are validated; a bad one is
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument).
    fn read<S: AsRef<str> + Sync>(
        &mut self,
        table: &str,
        columns: &[S],
        keyset: &KeySet,
        index: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<ResultSet>> + Send {
        async move {
            let request = ReadRequest::new(table, columns, index)?;
            self.exec().await?.read(&request, keyset, limit).await
        }
    }
}

/// Statements that change data: on a [`Session`](crate::Session) each one commits on its
/// own; in a [`Transaction`](crate::Transaction) they commit together.
pub trait WriteContext: ReadContext {
    /// Runs a statement and returns how many rows it changed (DDL too, on a session).
    fn execute_update(
        &mut self,
        sql: &str,
        params: &[Value],
    ) -> impl Future<Output = Result<u64>> + Send {
        async move {
            self.exec()
                .await?
                .checked(sql, params.len())?
                .execute(sql, params)
                .await
        }
    }
}

/// A context whose statements are bounded by a timeout; from
/// [`ReadContext::with_timeout`].
#[derive(Debug)]
pub struct WithTimeout<'c, C> {
    inner: &'c mut C,
    timeout: Duration,
}

impl<C: Context> Context for WithTimeout<'_, C> {
    async fn exec(&mut self) -> Result<Exec<'_>> {
        let mut exec = self.inner.exec().await?;
        exec.limit = Some(match exec.limit {
            // The database-wide timeout is shorter: it applies (on PostgreSQL the server
            // enforces it whatever the client asks).
            Some(wide) if wide.timeout <= self.timeout => wide,
            _ => Limit::cancel_after(self.timeout),
        });
        Ok(exec)
    }
}

impl<C: ReadContext> ReadContext for WithTimeout<'_, C> {}
impl<C: WriteContext> WriteContext for WithTimeout<'_, C> {}

//! A transaction on whatever session the pool has (Python Spanner:
//! `Database.run_in_transaction`): a checkout, [`Session::run_in_transaction`]'s
//! abort-retry, the session given back. A session whose connection was lost before its
//! COMMIT was sent (a failover, a killed backend, a restart) is replaced and the function
//! run again on another: the server rolled that attempt back, so running it again is as
//! safe as after an abort. A loss during COMMIT ([`Error::CommitUnknown`]) is not retried,
//! nor one where a pooler or the server ended the connection because the transaction took
//! longer than it allows (PgBouncer's `query_timeout`, `idle_transaction_timeout`,
//! `transaction_timeout`; PostgreSQL's `idle_in_transaction_session_timeout` and, from 17,
//! `transaction_timeout`): run again, it would meet the same limit.

use std::time::Instant;

use super::handle::{Pool, Strategy};
use crate::error::Error;
use crate::session::Session;
use crate::transaction::{Committed, Transaction, TransactionOptions, retry};

/// The most sessions a transaction runs on when their connections are lost; the last
/// loss is returned. After the first loss the pool checks its other idle sessions before
/// handing them out, so a second is rare, and a third means the server is not there.
const MAX_SESSIONS: u32 = 3;

impl<S: Strategy> Pool<S> {
    /// Runs `f` in a read-write transaction on a session of the pool and commits, retrying
    /// on abort as [`Session::run_in_transaction`] does, with the default
    /// [`TransactionOptions`]; on a session lost before its commit, again on another
    /// (module docs). Returns `f`'s value.
    ///
    /// ```no_run
    /// # async fn demo(pool: session_pool::FixedSizePool) -> session_pool::Result<()> {
    /// use session_pool::params;
    /// use session_pool::prelude::*;
    /// let n: i64 = pool
    ///     .run_in_transaction(async |tx| {
    ///         tx.execute_update("UPDATE counters SET n = n + 1 WHERE id = $1", &params![1]).await?;
    ///         tx.execute_sql("SELECT n FROM counters WHERE id = $1", &params![1]).await?.one()?.get(0)
    ///     })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn run_in_transaction<T, E, F>(&self, f: F) -> std::result::Result<T, E>
    where
        F: AsyncFnMut(&mut Transaction<'_>) -> std::result::Result<T, E>,
        E: From<Error> + 'static,
    {
        self.run_in_transaction_detailed(TransactionOptions::default(), f)
            .await
            .map(|c| c.value)
    }

    /// [`run_in_transaction`](Pool::run_in_transaction) with explicit retry options; the
    /// deadline covers every session the function runs on.
    pub async fn run_in_transaction_with<T, E, F>(
        &self,
        options: TransactionOptions,
        f: F,
    ) -> std::result::Result<T, E>
    where
        F: AsyncFnMut(&mut Transaction<'_>) -> std::result::Result<T, E>,
        E: From<Error> + 'static,
    {
        self.run_in_transaction_detailed(options, f)
            .await
            .map(|c| c.value)
    }

    /// [`run_in_transaction_with`](Pool::run_in_transaction_with), also returning the
    /// commit timestamp, the attempts on every session (aborted, lost and the last) and
    /// the commit token (see [`Session::run_in_transaction_detailed`]).
    pub async fn run_in_transaction_detailed<T, E, F>(
        &self,
        options: TransactionOptions,
        mut f: F,
    ) -> std::result::Result<Committed<T>, E>
    where
        F: AsyncFnMut(&mut Transaction<'_>) -> std::result::Result<T, E>,
        E: From<Error> + 'static,
    {
        let deadline = Instant::now() + options.timeout;
        let (mut attempts, mut lost) = (0, 0);
        loop {
            let mut session = self.session().await.map_err(E::from)?;
            let left = deadline.saturating_duration_since(Instant::now());
            let res = retry::run_counted(
                &mut session,
                options.timeout(left),
                &[],
                &mut f,
                &mut attempts,
            )
            .await;
            match res {
                Ok(mut committed) => {
                    committed.commit_token = retry::token_after_commit(&mut session).await;
                    return Ok(committed);
                }
                Err(_) if retried_elsewhere(&session, lost, deadline) => {
                    lost += 1;
                    tracing::warn!(target: "session_pool::transaction", attempts,
                        "the session's connection was lost before the commit; running the \
                         transaction again on another session");
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Whether a failed run on `session` goes on on another session: its connection was lost
/// before the commit, and the loss count and the deadline allow one more.
fn retried_elsewhere(session: &Session, lost: u32, deadline: Instant) -> bool {
    session.lost_before_commit() && lost + 1 < MAX_SESSIONS && Instant::now() < deadline
}

//! Transactions that pass a limit on how long work may take, the pooler's or the server's
//! (`tests/pooler_timeouts.rs`, `tests/server_timeouts.rs`).

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use session_pool::prelude::*;
use session_pool::{Error, FixedSizePool};

/// What a transaction does to pass a limit.
#[derive(Clone, Copy)]
pub enum Overrun<'a> {
    /// `times` runs of `sql`: each shorter than the limit, the transaction longer.
    Long { sql: &'a str, times: usize },
    /// `first`, then `idle` spent on work that is not SQL, then `SELECT 2`.
    Idle { first: &'a str, idle: Duration },
    /// Adds 1 to the row of `table` (a `counter_table`), then spends `idle` before the
    /// COMMIT.
    IdleBeforeCommit { table: &'a str, idle: Duration },
}

/// Runs `overrun` with `Pool::run_in_transaction` on `pool`: the result, and how many times
/// the function ran.
pub async fn run(pool: &FixedSizePool, overrun: Overrun<'_>) -> (Result<(), Error>, u32) {
    let calls = AtomicU32::new(0);
    let res = pool
        .run_in_transaction(async |tx| {
            calls.fetch_add(1, Ordering::Relaxed);
            match overrun {
                Overrun::Long { sql, times } => {
                    for _ in 0..times {
                        tx.execute_sql(sql, &[]).await?;
                    }
                }
                Overrun::Idle { first, idle } => {
                    tx.execute_sql(first, &[]).await?;
                    tokio::time::sleep(idle).await;
                    tx.execute_sql("SELECT 2", &[]).await?;
                }
                Overrun::IdleBeforeCommit { table, idle } => {
                    let sql = format!("UPDATE {table} SET n = n + 1 WHERE id = 1");
                    tx.execute_update(&sql, &[]).await?;
                    tokio::time::sleep(idle).await;
                }
            }
            Ok(())
        })
        .await;
    (res, calls.load(Ordering::Relaxed))
}

/// The count in the row of `table` (a `counter_table`), read on a session of `pool`.
pub async fn count(pool: &FixedSizePool, table: &str) -> i64 {
    let mut s = pool.session().await.unwrap();
    let sql = format!("SELECT n FROM {table} WHERE id = 1");
    super::scalar::<i64>(&mut *s, &sql, &[]).await
}

/// After a session was lost to a limit, the pool hands out a working one.
pub async fn assert_pool_works(pool: &FixedSizePool) {
    let mut s = pool.session().await.unwrap();
    assert_eq!(super::scalar::<i64>(&mut *s, "SELECT 1", &[]).await, 1);
}

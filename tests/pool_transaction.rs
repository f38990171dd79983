//! `Pool::run_in_transaction` (Python Spanner: `Database.run_in_transaction`): a transaction
//! on whatever session the pool has, retried on abort; a session whose connection is lost
//! before its COMMIT (a real backend terminated mid-transaction) is replaced and the
//! function run again on another; a connection lost during COMMIT is not, since the
//! commit may have happened.
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::time::Duration;

use session_pool::prelude::*;
use session_pool::{Database, Error, ErrorKind, TransactionOptions, params};

/// The counter's value, read on a session of its own.
async fn value(db: &Database, name: &str) -> i64 {
    let mut s = db.session();
    s.create().await.unwrap();
    common::scalar(&mut s, &format!("SELECT n FROM {name} WHERE id = 1"), &[]).await
}

/// Ends backend `pid` from a session of its own, as an operator or a failover would.
async fn terminate(db: &Database, pid: i32) {
    let mut killer = db.session();
    killer.create().await.unwrap();
    let ended: bool = common::scalar(
        &mut killer,
        "SELECT pg_terminate_backend($1::int)",
        &params![pid],
    )
    .await;
    assert!(ended, "backend {pid} was not there to end");
}

/// Adds 1 to the counter in `tx`.
async fn bump(tx: &mut session_pool::Transaction<'_>, name: &str) -> Result<u64, Error> {
    tx.execute_update(&format!("UPDATE {name} SET n = n + 1 WHERE id = 1"), &[])
        .await
}

async fn runs_commits_and_retries_aborts(db: Database) {
    let name = common::counter_table(&db, "pooltx").await;
    let pool = common::fixed_pool(&db, 2).await;
    let calls = AtomicU32::new(0);
    let done = pool
        .run_in_transaction_detailed(TransactionOptions::default(), async |tx| {
            bump(tx, &name).await?;
            if calls.fetch_add(1, Ordering::Relaxed) == 0 {
                return Err(Error::aborted("once"));
            }
            let n: i64 = tx
                .execute_sql(&format!("SELECT n FROM {name} WHERE id = 1"), &[])
                .await?
                .one()?
                .get(0)?;
            Ok::<_, Error>(n)
        })
        .await
        .unwrap();
    assert_eq!((done.value, done.attempts), (1, 2));
    assert_eq!(value(&db, &name).await, 1);
    // An error of the function's own is returned at once, on a session that was not lost.
    let res: Result<(), Error> = pool
        .run_in_transaction(async |_tx| Err(Error::InvalidArgument("no".into())))
        .await;
    assert_eq!(res.unwrap_err().kind(), ErrorKind::InvalidArgument);
    assert_eq!(pool.stats().replaced, 0, "{:?}", pool.stats());
}

on_both!(runs_commits_and_retries_aborts);

/// The first attempt's backend is terminated after its first statement: the function runs
/// again on another session and commits, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_lost_mid_transaction_is_replaced_and_the_function_run_again() {
    let Some(db) = common::postgres().await else {
        return;
    };
    let name = common::counter_table(&db, "pooltx_lost").await;
    let pool = common::fixed_pool(&db, 2).await;
    let calls = AtomicU32::new(0);
    let done = pool
        .run_in_transaction_detailed(TransactionOptions::default(), async |tx| {
            bump(tx, &name).await?;
            if calls.fetch_add(1, Ordering::Relaxed) == 0 {
                let pid: i32 = tx
                    .execute_sql("SELECT pg_backend_pid()", &[])
                    .await?
                    .one()?
                    .get(0)?;
                terminate(&db, pid).await;
                // The next statement finds the connection gone.
                tx.execute_sql("SELECT 1", &[]).await?;
                panic!("a terminated backend answered");
            }
            Ok::<_, Error>(())
        })
        .await
        .unwrap();
    assert_eq!(done.attempts, 2);
    assert_eq!(calls.load(Ordering::Relaxed), 2);
    assert_eq!(value(&db, &name).await, 1, "committed once");
    assert_eq!(pool.stats().replaced, 1, "{:?}", pool.stats());

    // The same loss through a session's own run_in_transaction is the caller's to handle.
    let mut s = pool.session().await.unwrap();
    let pid = s.backend_pid().unwrap();
    let res = s
        .run_in_transaction(async |tx| {
            terminate(&db, pid).await;
            tx.execute_sql("SELECT 1", &[]).await.map(drop)
        })
        .await;
    assert_eq!(res.unwrap_err().kind(), ErrorKind::SessionLost);
}

/// The backend is terminated while its COMMIT waits (a deferred unique key another
/// transaction holds): the commit's outcome is unknown, so the function is not run again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_lost_during_commit_is_not_run_again() {
    let Some(db) = common::postgres().await else {
        return;
    };
    let name = common::counter_table(&db, "pooltx_commit").await;
    let keys = format!("{name}_keys");
    let mut setup = db.session();
    setup.create().await.unwrap();
    let ddl = format!("CREATE TABLE {keys} (k BIGINT UNIQUE DEFERRABLE INITIALLY DEFERRED)");
    setup.execute_update(&ddl, &[]).await.unwrap();
    let insert = format!("INSERT INTO {keys} VALUES (1)");
    let mut holder = db.session();
    holder.create().await.unwrap();
    let mut held = holder.transaction().await.unwrap();
    held.execute_update(&insert, &[]).await.unwrap();

    let pool = common::fixed_pool(&db, 2).await;
    let pid = Arc::new(AtomicI32::new(0));
    // Ends the committing backend once it waits in COMMIT.
    let killer = {
        let (db, pid) = (db.clone(), Arc::clone(&pid));
        tokio::spawn(async move {
            let mut watch = db.session();
            watch.create().await.unwrap();
            for _ in 0..500 {
                let p = pid.load(Ordering::Relaxed);
                if p != 0 {
                    let waiting: i64 = common::scalar(
                        &mut watch,
                        "SELECT count(*) FROM pg_stat_activity WHERE pid = $1::int \
                         AND query = 'COMMIT' AND wait_event_type = 'Lock'",
                        &params![p],
                    )
                    .await;
                    if waiting == 1 {
                        terminate(&db, p).await;
                        return;
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("the COMMIT never waited");
        })
    };
    let calls = AtomicU32::new(0);
    let run = pool.run_in_transaction(async |tx| {
        calls.fetch_add(1, Ordering::Relaxed);
        let p: i32 = tx
            .execute_sql("SELECT pg_backend_pid()", &[])
            .await?
            .one()?
            .get(0)?;
        pid.store(p, Ordering::Relaxed);
        tx.execute_update(&format!("UPDATE {name} SET n = n + 1 WHERE id = 1"), &[])
            .await?;
        tx.execute_update(&insert, &[]).await.map(drop)
    });
    let res = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("the COMMIT was never ended");
    killer.await.unwrap();
    let err = res.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CommitUnknown, "{err}");
    assert_eq!(
        calls.load(Ordering::Relaxed),
        1,
        "run again after a lost COMMIT"
    );
    held.rollback().await.unwrap();
    assert_eq!(value(&db, &name).await, 0);
}

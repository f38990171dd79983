//! The leak warning: a checkout held past the threshold is logged while it is held (by the
//! pool's own maintenance task, for `session()` and `get()` alike), with its backtrace;
//! optionally the leaked session is closed.
mod common;

use std::sync::OnceLock;
use std::time::Duration;

use session_pool::prelude::*;
use session_pool::{Error, FixedSizeOptions, FixedSizePool, PoolOptions};

/// The log of every test in this file (one subscriber per process); tests tell their
/// lines apart by session id.
fn captured() -> String {
    static LOG: OnceLock<common::Captured> = OnceLock::new();
    let log = LOG.get_or_init(|| {
        let captured = common::Captured::default();
        let writer = captured.clone();
        tracing_subscriber::fmt()
            .with_env_filter("session_pool::leak=warn")
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .init();
        captured
    });
    log.text()
}

fn lines_about(id: &str) -> Vec<String> {
    captured()
        .lines()
        .filter(|l| l.contains(id))
        .map(str::to_owned)
        .collect()
}

async fn leak_pool(db: &session_pool::Database, options: PoolOptions) -> FixedSizePool {
    let pool = FixedSizePool::new(FixedSizeOptions::default().size(2).pool(options)).unwrap();
    pool.bind(db).await.unwrap();
    pool
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_checkouts_are_logged_while_held_and_when_returned() {
    captured();
    let (db, _dir) = common::sqlite().await;
    let pool = leak_pool(
        &db,
        PoolOptions::default().leak_threshold(Duration::from_millis(100), true),
    )
    .await;
    // No ping task: the pool's own maintenance task does the watching.

    // A short checkout: nothing logged.
    let short = pool.session().await.unwrap();
    let short_id = short.session_id().unwrap().to_owned();
    drop(short);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(lines_about(&short_id).is_empty(), "{}", captured());

    // A long one: logged while still held, once, with the backtrace.
    let held = pool.session().await.unwrap();
    let id = held.session_id().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let lines = lines_about(&id);
    assert_eq!(lines.len(), 1, "{}", captured());
    assert!(lines[0].contains("still checked out"), "{lines:?}");
    assert!(
        captured().contains("pool_leak"),
        "the backtrace names the test: {}",
        captured()
    );
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_checkouts_are_tracked_too() {
    captured();
    let (db, _dir) = common::sqlite().await;
    let pool = leak_pool(
        &db,
        PoolOptions::default().leak_threshold(Duration::from_millis(100), false),
    )
    .await;
    let session = pool.get(None).await.unwrap();
    let id = session.session_id().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let lines = lines_about(&id);
    assert_eq!(lines.len(), 1, "{}", captured());
    assert!(lines[0].contains("still checked out"), "{lines:?}");
    pool.put(session).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(lines_about(&id).len(), 1, "warned once, not again on put");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaked_postgres_sessions_can_be_closed() {
    captured();
    let Some((db, app)) = common::postgres_tagged("leak").await else {
        return;
    };
    let pool = leak_pool(
        &db,
        PoolOptions::default()
            .leak_threshold(Duration::from_millis(100), false)
            .leak_close(true),
    )
    .await;
    let mut admin = common::pg_admin().await.unwrap();
    let name = common::unique("leaked");
    admin
        .execute_update(&format!("CREATE TABLE {name} (id INT PRIMARY KEY)"), &[])
        .await
        .unwrap();
    admin
        .execute_update(&format!("INSERT INTO {name} VALUES (1)"), &[])
        .await
        .unwrap();

    // A checkout forgotten inside a transaction that holds a row lock.
    let mut leaked = pool.session().await.unwrap();
    let pid = leaked.backend_pid().unwrap();
    let mut tx = leaked.transaction().await.unwrap();
    tx.execute_update(&format!("UPDATE {name} SET id = 1 WHERE id = 1"), &[])
        .await
        .unwrap();
    std::mem::forget(tx.rollback()); // never awaited: the transaction stays open

    // Its backend is terminated: the lock goes, and another writer gets through.
    admin
        .execute_update("SET lock_timeout = '3s'", &[])
        .await
        .unwrap();
    admin
        .execute_update(&format!("UPDATE {name} SET id = 1 WHERE id = 1"), &[])
        .await
        .expect("the leaked transaction's lock was released");
    // The lock goes as the backend aborts its transaction, a moment before the backend
    // leaves `pg_stat_activity`.
    let mut pids = common::backends(&mut admin, &app).await;
    for _ in 0..100 {
        if !pids.contains(&pid) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        pids = common::backends(&mut admin, &app).await;
    }
    assert!(
        !pids.contains(&pid),
        "the leaked session's backend {pid} is still there: {pids:?}"
    );

    // The holder meets a lost session; the pool replaces it when it comes back.
    let res = leaked.execute_sql("SELECT 1", &[]).await;
    assert!(matches!(res, Err(Error::SessionNotFound { .. })), "{res:?}");
    drop(leaked);
    let mut s = pool.session().await.unwrap();
    s.execute_sql("SELECT 1", &[]).await.unwrap();
    assert_eq!(pool.stats().replaced, 1);
}

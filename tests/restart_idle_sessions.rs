//! A server restart under an idle pool: once the pool finds one session lost, the idle
//! siblings are checked before they are handed out; with `check_idle_after`, not even the
//! first checkout fails; the stores retry a read (or an idempotent write) that met a lost
//! session.
mod common;

use std::time::Duration;

use session_pool::prelude::*;
use session_pool::{DatabaseOptions, Error, FixedSizePool, PoolOptions};

const SIZE: usize = 8;

async fn restarted_pool(options: PoolOptions) -> Option<(common::OwnServer, FixedSizePool)> {
    let server = common::OwnServer::start()?;
    let db = DatabaseOptions::new(&server.url)
        .connect_timeout(Duration::from_secs(5))
        .open()
        .await
        .unwrap();
    let pool = FixedSizePool::builder()
        .size(SIZE)
        .pool(options)
        .build(&db)
        .await
        .unwrap();
    assert_eq!(pool.stats().idle, SIZE);
    server.stop();
    server.start_again();
    Some((server, pool))
}

async fn use_once(pool: &FixedSizePool) -> session_pool::Result<()> {
    let mut s = pool.session().await?;
    s.execute_sql("SELECT 1", &[]).await.map(drop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_lost_session_gets_its_idle_siblings_checked() {
    let Some((_server, pool)) = restarted_pool(PoolOptions::default()).await else {
        return;
    };
    // Nothing tells the pool of the restart until a session is used: that use fails.
    let first = use_once(&pool).await;
    assert!(
        matches!(first, Err(Error::SessionNotFound { .. })),
        "{first:?}"
    );
    // From then on, every idle session last used before the loss is checked first.
    for i in 0..SIZE {
        use_once(&pool)
            .await
            .unwrap_or_else(|e| panic!("checkout {i} after the first loss failed: {e}"));
    }
    let stats = pool.stats();
    assert!(stats.replaced >= SIZE as u64, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_idle_after_makes_every_checkout_succeed() {
    let options = PoolOptions::default().check_idle_after(Duration::from_millis(1));
    let Some((_server, pool)) = restarted_pool(options).await else {
        return;
    };
    tokio::time::sleep(Duration::from_millis(5)).await;
    for i in 0..SIZE {
        use_once(&pool)
            .await
            .unwrap_or_else(|e| panic!("checkout {i} after the restart failed: {e}"));
    }
    assert_eq!(pool.stats().replaced, SIZE as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_reads_and_idempotent_writes_retry_a_lost_session() {
    use session_pool::adk::{AdkConfig, AdkStore};
    let Some(server) = common::OwnServer::start() else {
        return;
    };
    let db = DatabaseOptions::new(&server.url).open().await.unwrap();
    let pool = FixedSizePool::builder().size(4).build(&db).await.unwrap();
    let store = AdkStore::new(pool.clone(), AdkConfig::default()).unwrap();
    store.create_tables().await.unwrap();
    let created = store
        .create_session("s1", "app", "user", &serde_json::json!({"k": 1}), None)
        .await
        .unwrap();
    store
        .create_session("s2", "app", "user", &serde_json::json!({}), None)
        .await
        .unwrap();
    server.stop();
    server.start_again();
    // A delete by key meets a dead session first, and runs again on a checked one.
    assert!(store.delete_session("s2").await.unwrap());
    server.stop();
    server.start_again();
    // So does every read below.
    let got = store.get_session("s1").await.unwrap().expect("the session");
    assert_eq!(got.id, created.id);
    assert!(store.get_events("s1", None, None).await.unwrap().is_empty());
    assert_eq!(store.list_sessions("app", None).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adk_tables_reads_and_deletes_retry_a_lost_session() {
    use session_pool::adk::{DatabaseSessionTables, GetSessionConfig, SessionService};
    let Some(server) = common::OwnServer::start() else {
        return;
    };
    let db = DatabaseOptions::new(&server.url).open().await.unwrap();
    let pool = FixedSizePool::builder().size(4).build(&db).await.unwrap();
    // A second pool that meets its first lost session below, in a fresh service's first
    // question to the catalog.
    let other = FixedSizePool::builder().size(2).build(&db).await.unwrap();
    let tables = DatabaseSessionTables::new(pool.clone());
    tables.create_tables().await.unwrap();
    let svc = SessionService::on_tables(tables);
    for id in ["s1", "s2"] {
        svc.create_session("app", "user", None, Some(id))
            .await
            .unwrap();
    }
    server.stop();
    server.start_again();
    let fresh = SessionService::on_tables(DatabaseSessionTables::new(other));
    let all = GetSessionConfig::default();
    assert!(
        fresh
            .get_session("app", "user", "s1", &all)
            .await
            .unwrap()
            .is_some()
    );
    // A delete by key meets a dead session first, and runs again on a checked one.
    assert!(svc.delete_session("app", "user", "s2").await.unwrap());
    server.stop();
    server.start_again();
    // So do the reads.
    assert!(
        svc.get_session("app", "user", "s1", &all)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(svc.list_sessions("app", None).await.unwrap().len(), 1);
}

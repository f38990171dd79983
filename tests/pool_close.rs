//! close(): waiters fail, idle sessions are deleted, later gets fail, the ping task stops.
mod common;

use std::time::Duration;

use session_pool::{Error, FixedSizeOptions, FixedSizePool, PingingOptions, PingingPool};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_fails_waiters_and_deletes_idle_sessions() {
    let Some((db, app)) = common::postgres_tagged("close").await else {
        return;
    };
    let mut admin = common::pg_admin().await.unwrap();
    let pool = FixedSizePool::new(FixedSizeOptions::default().size(3)).unwrap();
    pool.bind(&db).await.unwrap();
    assert_eq!(common::backends(&mut admin, &app).await.len(), 3);

    let held = pool.get(None).await.unwrap();
    let _held2 = pool.get(None).await.unwrap();
    let _held3 = pool.get(None).await.unwrap();
    let waiter = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.get(Some(Duration::from_secs(30))).await })
    };
    while pool.stats().waiters == 0 {
        tokio::task::yield_now().await;
    }
    pool.put(held).unwrap();
    let got = waiter.await.unwrap().unwrap();
    pool.put(got).unwrap();

    let _held = pool.get(None).await.unwrap();
    let waiter = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.get(Some(Duration::from_secs(30))).await })
    };
    while pool.stats().waiters == 0 {
        tokio::task::yield_now().await;
    }
    pool.close().await;
    assert!(matches!(waiter.await.unwrap(), Err(Error::Closed)));
    assert!(matches!(pool.get(None).await, Err(Error::Closed)));
    // Checked-out sessions are dropped when they come back.
    drop(_held);
    drop(_held2);
    drop(_held3);
    let s = pool.stats();
    assert_eq!((s.open, s.idle, s.in_use), (0, 0, 0));
    for _ in 0..100 {
        if common::backends(&mut admin, &app).await.is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("sessions left on the server after close");
}

#[tokio::test]
async fn ping_task_stops_when_the_pool_closes() {
    let (db, _dir) = common::sqlite().await;
    let pool = PingingPool::new(PingingOptions::default().size(1)).unwrap();
    pool.bind(&db).await.unwrap();
    let task = pool.spawn_ping_task(Duration::from_secs(3600));
    assert!(!task.is_finished());
    pool.close().await;
    for _ in 0..100 {
        if task.is_finished() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the ping task kept running after close");
}

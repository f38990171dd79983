//! Sessions killed on the server (`pg_terminate_backend`) are replaced and the pool keeps its
//! size: Bursty at once, Fixed after max age, Pinging after a ping.
mod common;

use std::time::Duration;

use session_pool::prelude::*;
use session_pool::{
    BurstyOptions, BurstyPool, Error, FixedSizeOptions, FixedSizePool, PingingOptions, PingingPool,
    PooledSession,
};

const SIZE: usize = 3;

/// Checks out `n` sessions at once and checks that each is alive.
async fn all_alive<P: AbstractSessionPool>(pool: &P, n: usize) {
    let mut held: Vec<PooledSession> = Vec::new();
    for _ in 0..n {
        held.push(pool.get(Some(Duration::from_secs(5))).await.unwrap());
    }
    for s in &mut held {
        s.execute_sql("SELECT 1", &[])
            .await
            .expect("a live session");
    }
    for s in held {
        pool.put(s).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursty_replaces_dead_sessions_at_once() {
    let Some((db, app)) = common::postgres_tagged("dead_bursty").await else {
        return;
    };
    let mut admin = common::pg_admin().await.unwrap();
    let pool = BurstyPool::new(BurstyOptions::default().target_size(SIZE)).unwrap();
    pool.bind(&db).await.unwrap();
    let first: Vec<PooledSession> =
        futures_util::future::try_join_all((0..SIZE).map(|_| pool.get(None)))
            .await
            .unwrap();
    for s in first {
        pool.put(s).unwrap();
    }
    let pids = common::backends(&mut admin, &app).await;
    assert_eq!(pids.len(), SIZE);
    common::kill_backends(&mut admin, &pids).await;

    all_alive(&pool, SIZE).await;
    let s = pool.stats();
    assert_eq!((s.replaced, s.open, s.idle), (SIZE as u64, SIZE, SIZE));
    assert_eq!(common::backends(&mut admin, &app).await.len(), SIZE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_replaces_dead_sessions_after_max_age() {
    let Some((db, app)) = common::postgres_tagged("dead_fixed").await else {
        return;
    };
    let mut admin = common::pg_admin().await.unwrap();
    let pool = FixedSizePool::new(
        FixedSizeOptions::default()
            .size(SIZE)
            .max_age(Duration::from_millis(50)),
    )
    .unwrap();
    pool.bind(&db).await.unwrap();
    let pids = common::backends(&mut admin, &app).await;
    common::kill_backends(&mut admin, &pids).await;
    tokio::time::sleep(Duration::from_millis(60)).await;

    all_alive(&pool, SIZE).await;
    let s = pool.stats();
    assert_eq!(
        (s.replaced, s.created, s.open),
        (SIZE as u64, 2 * SIZE as u64, SIZE)
    );
    let now = common::backends(&mut admin, &app).await;
    assert_eq!(now.len(), SIZE);
    assert!(now.iter().all(|p| !pids.contains(p)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinging_replaces_dead_sessions_when_it_pings() {
    let Some((db, app)) = common::postgres_tagged("dead_pinging").await else {
        return;
    };
    let mut admin = common::pg_admin().await.unwrap();
    let pool = PingingPool::new(
        PingingOptions::default()
            .size(SIZE)
            .ping_interval(Duration::from_millis(50)),
    )
    .unwrap();
    pool.bind(&db).await.unwrap();
    let pids = common::backends(&mut admin, &app).await;
    common::kill_backends(&mut admin, &pids).await;
    tokio::time::sleep(Duration::from_millis(60)).await;

    let report = pool.ping().await.unwrap();
    assert_eq!(
        (report.pinged, report.replaced, report.failed),
        (0, SIZE, 0)
    );
    assert_eq!(pool.stats().replaced, SIZE as u64);
    all_alive(&pool, SIZE).await;
    assert_eq!(
        pool.stats().replaced,
        SIZE as u64,
        "nothing more to replace"
    );
    assert_eq!(common::backends(&mut admin, &app).await.len(), SIZE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_task_replaces_dead_sessions() {
    let Some((db, app)) = common::postgres_tagged("dead_task").await else {
        return;
    };
    let mut admin = common::pg_admin().await.unwrap();
    let pool = PingingPool::new(
        PingingOptions::default()
            .size(SIZE)
            .ping_interval(Duration::from_millis(20)),
    )
    .unwrap();
    pool.bind(&db).await.unwrap();
    let task = pool.spawn_ping_task(Duration::from_millis(20));
    let pids = common::backends(&mut admin, &app).await;
    common::kill_backends(&mut admin, &pids).await;
    for _ in 0..250 {
        if pool.stats().replaced == SIZE as u64 && pool.stats().idle == SIZE {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(pool.stats().replaced, SIZE as u64, "{:?}", pool.stats());
    drop(task);
    all_alive(&pool, SIZE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_lost_while_checked_out_is_not_handed_out_again() {
    let Some((db, app)) = common::postgres_tagged("dead_checkout").await else {
        return;
    };
    let mut admin = common::pg_admin().await.unwrap();
    let pool = FixedSizePool::new(FixedSizeOptions::default().size(1)).unwrap();
    pool.bind(&db).await.unwrap();
    let dead_id = {
        let mut s = pool.session().await.unwrap();
        common::kill_backends(&mut admin, &[s.backend_pid().unwrap()]).await;
        let res = s.execute_sql("SELECT 1", &[]).await;
        assert!(matches!(res, Err(Error::SessionNotFound { .. })), "{res:?}");
        s.session_id().unwrap().to_owned()
    };
    let mut s = pool.session().await.unwrap();
    assert_ne!(s.session_id().unwrap(), dead_id);
    s.execute_sql("SELECT 1", &[]).await.unwrap();
    let st = pool.stats();
    assert_eq!((st.replaced, st.open, st.created), (1, 1, 2));
    drop(s);
    assert_eq!(common::backends(&mut admin, &app).await.len(), 1);
}

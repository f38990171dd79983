//! Lifecycle options: sessions closed after an idle lifetime, a lifetime or a number of uses, a
//! bursty pool's idle floor, creation in steps, and the in-use high-water mark.
mod common;

use std::time::Duration;

use session_pool::{BurstyPool, Database, FixedSizePool, PoolOptions, PoolStats};

async fn wait_for(
    what: &str,
    stats: impl Fn() -> PoolStats,
    done: impl Fn(&PoolStats) -> bool,
) -> PoolStats {
    for _ in 0..500 {
        let s = stats();
        if done(&s) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what}: {:?}", stats());
}

async fn ids_of(pool: &FixedSizePool, n: usize) -> Vec<String> {
    let mut held = Vec::new();
    for _ in 0..n {
        held.push(pool.session().await.unwrap());
    }
    let mut ids: Vec<String> = held
        .iter()
        .map(|s| s.session_id().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

async fn idle_sessions_are_closed_after_their_idle_lifetime(db: Database) {
    let pool = FixedSizePool::builder()
        .size(2)
        .pool(PoolOptions::default().max_idle_lifetime(Duration::from_millis(200)))
        .build(&db)
        .await
        .unwrap();
    let before = ids_of(&pool, 2).await;
    // No ping task: the pool's own maintenance closes and replaces them.
    let stats = wait_for(
        "replaced after the idle lifetime",
        || pool.stats(),
        |s| s.created >= 4 && s.idle == 2,
    )
    .await;
    assert!(stats.deleted >= 2, "{stats:?}");
    let after = ids_of(&pool, 2).await;
    assert!(
        before.iter().all(|id| !after.contains(id)),
        "{before:?} {after:?}"
    );

    // A bursty pool closes them and keeps nothing.
    let bursty = BurstyPool::builder()
        .target_size(2)
        .pool(PoolOptions::default().max_idle_lifetime(Duration::from_millis(200)))
        .build(&db)
        .await
        .unwrap();
    drop((
        bursty.session().await.unwrap(),
        bursty.session().await.unwrap(),
    ));
    assert_eq!(bursty.stats().idle, 2);
    wait_for(
        "closed after the idle lifetime",
        || bursty.stats(),
        |s| s.open == 0 && s.idle == 0,
    )
    .await;
}

async fn sessions_are_closed_after_their_maximum_uses(db: Database) {
    let pool = FixedSizePool::builder()
        .size(1)
        .pool(PoolOptions::default().max_uses(3))
        .build(&db)
        .await
        .unwrap();
    let first = ids_of(&pool, 1).await;
    assert_eq!(ids_of(&pool, 1).await, first);
    assert_eq!(ids_of(&pool, 1).await, first);
    // Its third return closed it: the next checkout gets a new one.
    let fourth = ids_of(&pool, 1).await;
    assert_ne!(fourth, first);
    let stats = pool.stats();
    assert_eq!(
        (stats.created, stats.deleted, stats.open),
        (2, 1, 1),
        "{stats:?}"
    );
}

async fn sessions_are_closed_after_their_maximum_lifetime(db: Database) {
    let pool = FixedSizePool::builder()
        .size(1)
        .pool(PoolOptions::default().max_lifetime(Duration::from_millis(300)))
        .build(&db)
        .await
        .unwrap();
    let first = ids_of(&pool, 1).await;
    assert_eq!(ids_of(&pool, 1).await, first, "{:?}", pool.stats());
    tokio::time::sleep(Duration::from_millis(350)).await;
    // Older than its lifetime: handed out once more, and closed when it comes back.
    assert_eq!(ids_of(&pool, 1).await, first);
    let next = ids_of(&pool, 1).await;
    assert_ne!(next, first);
    // The new one is young: it stays.
    assert_eq!(ids_of(&pool, 1).await, next);
    let stats = pool.stats();
    assert_eq!(
        (stats.created, stats.deleted, stats.open),
        (2, 1, 1),
        "{stats:?}"
    );
}

async fn a_bursty_pool_keeps_its_idle_floor(db: Database) {
    let pool = BurstyPool::builder()
        .target_size(3)
        .min_idle(2)
        .build(&db)
        .await
        .unwrap();
    assert_eq!(pool.stats().idle, 2, "created when built");
    let held = (pool.session().await.unwrap(), pool.session().await.unwrap());
    // Both idle sessions are out; the maintenance task creates two more.
    wait_for(
        "topped up to min_idle",
        || pool.stats(),
        |s| s.idle == 2 && s.open == 4,
    )
    .await;
    drop(held);
    // Four idle over a target of three: one is closed.
    let stats = pool.stats();
    assert_eq!((stats.idle, stats.open), (3, 3), "{stats:?}");
    assert!(
        BurstyPool::builder()
            .target_size(1)
            .min_idle(2)
            .build(&db)
            .await
            .is_err()
    );
}

async fn sessions_are_created_in_steps(db: Database) {
    let pool = FixedSizePool::builder()
        .size(5)
        .pool(PoolOptions::default().create_step(2))
        .build(&db)
        .await
        .unwrap();
    let stats = pool.stats();
    assert_eq!(
        (stats.open, stats.idle, stats.created),
        (5, 5, 5),
        "{stats:?}"
    );
}

async fn the_in_use_high_water_mark_is_kept(db: Database) {
    let pool = common::fixed_pool(&db, 3).await;
    let held = (pool.session().await.unwrap(), pool.session().await.unwrap());
    drop(held);
    drop(pool.session().await.unwrap());
    let stats = pool.stats();
    assert_eq!((stats.in_use, stats.max_in_use), (0, 2), "{stats:?}");
}

on_both!(
    idle_sessions_are_closed_after_their_idle_lifetime,
    sessions_are_closed_after_their_maximum_uses,
    sessions_are_closed_after_their_maximum_lifetime,
    a_bursty_pool_keeps_its_idle_floor,
    sessions_are_created_in_steps,
    the_in_use_high_water_mark_is_kept,
);

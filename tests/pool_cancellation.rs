//! Cancellation: gets cut off at random points (timeouts, aborted tasks) leave the pool's
//! accounting intact, and so does a session dropped instead of put back.
mod common;

use std::time::Duration;

use session_pool::prelude::*;
use session_pool::{Database, Error, FixedSizeOptions, FixedSizePool};
use tokio::task::JoinSet;

const SIZE: usize = 4;
const GETS: usize = 10_000;

fn pool() -> FixedSizePool {
    // max_age 0: every checkout awaits an exists() round trip, one more place to be cut off.
    FixedSizePool::new(
        FixedSizeOptions::default()
            .size(SIZE)
            .max_age(Duration::ZERO),
    )
    .unwrap()
}

async fn work(pool: FixedSizePool) -> Result<(), Error> {
    let mut s = pool.session_with_timeout(Duration::from_secs(10)).await?;
    s.execute_sql("SELECT 1", &[]).await?;
    tokio::task::yield_now().await;
    Ok(())
}

/// Runs GETS checkouts, each cut off after a random delay (up to `max_cut`) by a timeout or
/// an abort, calling `between` every 1,000.
async fn storm(pool: &FixedSizePool, max_cut: Duration, mut between: impl AsyncFnMut(usize)) {
    let mut set = JoinSet::new();
    for i in 0..GETS {
        let cut = max_cut.mul_f64(fastrand::f64());
        let p = pool.clone();
        if i % 2 == 0 {
            set.spawn(async move {
                let _ = tokio::time::timeout(cut, work(p)).await;
            });
        } else {
            let handle = set.spawn(async move {
                let _ = work(p).await;
            });
            set.spawn(async move {
                tokio::time::sleep(cut).await;
                handle.abort();
            });
        }
        while set.len() > 64 {
            let _ = set.join_next().await;
        }
        if i % 1000 == 999 {
            between(i).await;
        }
    }
    while set.join_next().await.is_some() {}
}

async fn check_accounting(pool: &FixedSizePool) {
    // Sessions whose statement was cut off stay in use while the pool's janitor stops and
    // reads it (`tests/cut_off_statements.rs`): a few milliseconds.
    for _ in 0..200 {
        if pool.stats().in_use == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let s = pool.stats();
    assert_eq!(
        (s.waiters, s.in_use),
        (0, 0),
        "nothing left waiting or held: {s:?}"
    );
    assert!(s.open <= SIZE, "{s:?}");
    assert_eq!(s.acquired, s.released, "every checkout came back: {s:?}");
    // All SIZE sessions at once, each alive.
    let mut held = Vec::new();
    for _ in 0..SIZE {
        held.push(
            pool.get(Some(Duration::from_secs(5)))
                .await
                .expect("a free place"),
        );
    }
    for s in &mut held {
        assert!(s.exists().await.unwrap());
    }
    let s = pool.stats();
    assert_eq!((s.open, s.in_use, s.idle), (SIZE, SIZE, 0), "{s:?}");
    assert!(matches!(
        pool.get(Some(Duration::ZERO)).await,
        Err(Error::PoolTimeout { .. })
    ));
    for h in held {
        pool.put(h).unwrap();
    }
    let s = pool.stats();
    assert_eq!(s.acquired, s.released, "{s:?}");
    eprintln!("{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_cancellations_on_sqlite() {
    let (db, _dir) = common::sqlite().await;
    let pool = pool();
    pool.bind(&db).await.unwrap();
    storm(&pool, Duration::from_millis(3), async |_| {}).await;
    check_accounting(&pool).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_cancellations_on_postgres_with_killed_backends() {
    let Some((db, app)) = common::postgres_tagged("cancel").await else {
        return;
    };
    let mut admin = common::pg_admin().await.unwrap();
    let pool = pool();
    pool.bind(&db).await.unwrap();
    // Killing a backend now and then sends gets down the replace-and-create path too. Cuts
    // go up to 20 ms so that some reconnects (several ms in a debug build) complete.
    storm(&pool, Duration::from_millis(20), async |_| {
        if let Some(&pid) = common::backends(&mut admin, &app).await.first() {
            let _ = admin
                .execute_sql(
                    "SELECT pg_terminate_backend($1::int)",
                    &session_pool::params![pid],
                )
                .await;
        }
    })
    .await;
    check_accounting(&pool).await;
    assert!(
        pool.stats().created > SIZE as u64,
        "sessions were recreated during the storm"
    );
    assert_eq!(common::backends(&mut admin, &app).await.len(), SIZE);
}

async fn dropped_session_frees_its_place(db: Database) {
    let pool = FixedSizePool::new(FixedSizeOptions::default().size(1)).unwrap();
    pool.bind(&db).await.unwrap();
    let s = pool.get(None).await.unwrap();
    let waiter = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.get(Some(Duration::from_secs(10))).await.map(|_| ()) })
    };
    while pool.stats().waiters == 0 {
        tokio::task::yield_now().await;
    }
    drop(s); // not put back
    waiter
        .await
        .unwrap()
        .expect("the waiter got the freed place");
    let st = pool.stats();
    assert_eq!((st.open, st.in_use, st.created), (0, 0, 2), "{st:?}");
}

on_both!(dropped_session_frees_its_place);

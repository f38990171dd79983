//! BurstyPool: never blocks, creates on demand, checks every checkout, caps when asked.
mod common;

use std::time::Duration;

use session_pool::{BurstyOptions, BurstyPool, Database, Error};

#[test]
fn defaults_are_the_python_clients() {
    let o = BurstyOptions::default();
    assert_eq!(o.target_size, 10);
    assert_eq!(o.max_sessions, None);
    assert!(matches!(
        BurstyPool::new(o.target_size(0)),
        Err(Error::InvalidArgument(_))
    ));
}

async fn bursts_and_overflow(db: Database) {
    let pool = BurstyPool::new(BurstyOptions::default().target_size(2)).unwrap();
    pool.bind(&db).await.unwrap();
    assert_eq!(
        pool.stats().open,
        0,
        "a bursty pool creates nothing up front"
    );

    // Five at once: none waits, five are created.
    let mut out = Vec::new();
    for _ in 0..5 {
        out.push(pool.get(None).await.unwrap());
    }
    let s = pool.stats();
    assert_eq!((s.created, s.in_use, s.max_open), (5, 5, usize::MAX));

    // Returned: two stay idle, three are dropped.
    for s in out {
        pool.put(s).unwrap();
    }
    let s = pool.stats();
    assert_eq!((s.idle, s.open, s.deleted), (2, 2, 3));

    // Every checkout checks exists(): a live idle session is reused.
    let a = pool.get(None).await.unwrap();
    assert_eq!(pool.stats().created, 5);
    pool.put(a).unwrap();
}

async fn cap_waits_then_times_out(db: Database) {
    let pool = BurstyPool::new(
        BurstyOptions::default()
            .target_size(2)
            .max_sessions(2, Duration::from_millis(100)),
    )
    .unwrap();
    pool.bind(&db).await.unwrap();
    let a = pool.get(None).await.unwrap();
    let _b = pool.get(None).await.unwrap();
    assert!(matches!(
        pool.get(None).await,
        Err(Error::PoolTimeout { .. })
    ));
    // A session coming back goes to the waiter.
    let waiter = {
        let pool = pool.clone();
        tokio::spawn(async move {
            pool.get(Some(Duration::from_secs(5)))
                .await
                .map(|s| s.session_id().map(str::to_owned))
        })
    };
    while pool.stats().waiters == 0 {
        tokio::task::yield_now().await;
    }
    let id = a.session_id().map(str::to_owned);
    pool.put(a).unwrap();
    assert_eq!(waiter.await.unwrap().unwrap(), id);
    assert_eq!(pool.stats().created, 2, "the cap held");
}

on_both!(bursts_and_overflow, cap_waits_then_times_out);

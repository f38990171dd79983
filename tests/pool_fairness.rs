//! Waiters are served first come, first served.
mod common;

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use session_pool::{Database, FixedSizeOptions, FixedSizePool};

async fn waiters_are_served_in_arrival_order(db: Database) {
    let pool = FixedSizePool::new(FixedSizeOptions::default().size(1)).unwrap();
    pool.bind(&db).await.unwrap();
    let held = pool.get(None).await.unwrap();

    let served = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (p, served) = (pool.clone(), served.clone());
        tasks.push(tokio::spawn(async move {
            let s = p
                .session_with_timeout(Duration::from_secs(30))
                .await
                .unwrap();
            served.lock().push(i);
            tokio::task::yield_now().await;
            drop(s);
        }));
        // Wait until this waiter is queued before the next one arrives.
        while pool.stats().waiters < i + 1 {
            tokio::task::yield_now().await;
        }
    }
    // A late get that could grab the session the moment it is put back must not overtake.
    pool.put(held).unwrap();
    let late = pool.get(Some(Duration::from_secs(30))).await.unwrap();
    assert_eq!(
        served.lock().len(),
        20,
        "the late get was served after every earlier waiter"
    );
    drop(late);
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(*served.lock(), (0..20).collect::<Vec<_>>());
}

on_both!(waiters_are_served_in_arrival_order);

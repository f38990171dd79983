//! PostgreSQL restarted under a busy pool: typed errors while it is down, no panic, and the
//! pool recovers once it is back.
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use session_pool::prelude::*;
use session_pool::{Database, DatabaseOptions, Error, FixedSizeOptions, FixedSizePool};

const SIZE: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_recovers_after_a_server_restart() {
    let Some(server) = common::OwnServer::start() else {
        return;
    };
    let db = DatabaseOptions::new(&server.url)
        .connect_timeout(Duration::from_secs(1))
        .open()
        .await
        .unwrap();
    let pool = FixedSizePool::new(
        FixedSizeOptions::default()
            .size(SIZE)
            .default_timeout(Duration::from_millis(500)),
    )
    .unwrap();
    pool.bind(&db).await.unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (pool, stop, ok, failed) = (pool.clone(), stop.clone(), ok.clone(), failed.clone());
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let res = async {
                    let mut s = pool.session().await?;
                    s.execute_sql("SELECT 1", &[]).await
                }
                .await;
                match res {
                    Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                    Err(
                        Error::SessionNotFound { .. }
                        | Error::Connect { .. }
                        | Error::PoolTimeout { .. },
                    ) => failed.fetch_add(1, Ordering::Relaxed),
                    Err(other) => panic!("untyped failure while the server restarts: {other:?}"),
                };
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        ok.load(Ordering::Relaxed) > 0,
        "work ran before the restart"
    );
    server.stop();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let failures_while_down = failed.load(Ordering::Relaxed);
    assert!(
        failures_while_down > 0,
        "the outage was seen as typed errors"
    );

    // While the server is down: ping reports failures, bind of a new pool fails cleanly.
    let report = pool.ping().await.unwrap();
    assert_eq!(report.topped_up, 0);
    let other = FixedSizePool::new(FixedSizeOptions::default().size(1)).unwrap();
    assert!(matches!(other.bind(&db).await, Err(Error::Connect { .. })));
    assert!(matches!(
        Database::open(&server.url).await,
        Err(Error::Connect { .. })
    ));

    server.start_again();
    let ok_before = ok.load(Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(20);
    while ok.load(Ordering::Relaxed) < ok_before + 20 {
        assert!(
            Instant::now() < deadline,
            "the pool did not recover: {:?}",
            pool.stats()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.expect("no worker panicked");
    }

    // All sessions can be checked out at once, and each is live.
    let mut held = Vec::new();
    for _ in 0..SIZE {
        let mut s = pool.get(Some(Duration::from_secs(5))).await.unwrap();
        s.execute_sql("SELECT 1", &[]).await.unwrap();
        held.push(s);
    }
    let s = pool.stats();
    assert_eq!((s.open, s.in_use, s.waiters), (SIZE, SIZE, 0), "{s:?}");
    assert!(s.replaced >= SIZE as u64, "{s:?}");
    for h in held {
        pool.put(h).unwrap();
    }
    pool.close().await;
}

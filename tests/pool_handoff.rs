//! The lock-free hand-off: checkins that race with arriving waiters, and with `close`,
//! never leave a session idle while someone waits, nor kept by a closed pool.
mod common;

use std::time::Duration;

use session_pool::{Error, FixedSizePool};

const TASKS: usize = 16;
const CHECKOUTS: usize = 20_000;

/// With one session, a session stranded in the idle queue while a task waits would stall
/// every task until its timeout: each checkout here must be served, none time out.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn no_session_is_left_idle_while_someone_waits() {
    let (db, _dir) = common::sqlite().await;
    let pool = FixedSizePool::builder().size(1).build(&db).await.unwrap();
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let pool = pool.clone();
            tokio::spawn(async move {
                for i in 0..CHECKOUTS {
                    let s = pool.session_with_timeout(Duration::from_secs(20)).await?;
                    // Vary the hold so that checkins meet waiters at every step.
                    if (i + t) % 3 == 0 {
                        tokio::task::yield_now().await;
                    }
                    drop(s);
                }
                Ok::<_, Error>(())
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().expect("every checkout served");
    }
    let s = pool.stats();
    assert_eq!((s.open, s.idle, s.in_use, s.waiters), (1, 1, 0, 0), "{s:?}");
    let n = (TASKS * CHECKOUTS) as u64;
    assert_eq!((s.acquired, s.released), (n, n), "{s:?}");
    assert_eq!(s.get_timeouts, 0, "{s:?}");
}

/// Sessions checked in while the pool closes are dropped, not kept idle; every task ends
/// with its sessions back or `Closed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn close_racing_checkins_keeps_nothing() {
    let (db, _dir) = common::sqlite().await;
    for _ in 0..20 {
        let pool = FixedSizePool::builder().size(3).build(&db).await.unwrap();
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let pool = pool.clone();
                tokio::spawn(async move {
                    loop {
                        match pool.session_with_timeout(Duration::from_secs(20)).await {
                            Ok(s) => {
                                tokio::task::yield_now().await;
                                drop(s);
                            }
                            Err(Error::Closed) => return,
                            Err(e) => panic!("{e}"),
                        }
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(5)).await;
        pool.close().await;
        for t in tasks {
            t.await.unwrap();
        }
        let s = pool.stats();
        assert_eq!((s.open, s.idle, s.in_use, s.waiters), (0, 0, 0, 0), "{s:?}");
        assert_eq!(s.acquired, s.released, "{s:?}");
    }
}

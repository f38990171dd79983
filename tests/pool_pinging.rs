//! PingingPool (and the deprecated TransactionPingingPool): LRU order, due pings, reports.
mod common;

use std::time::Duration;

use session_pool::{Database, Error, PingingOptions, PingingPool};

#[test]
fn defaults_are_the_python_clients() {
    let o = PingingOptions::default();
    assert_eq!(o.size, 10);
    assert_eq!(o.default_timeout, Duration::from_secs(10));
    assert_eq!(o.ping_interval, Duration::from_secs(3000));
    assert!(matches!(
        PingingPool::new(o.size(0)),
        Err(Error::InvalidArgument(_))
    ));
}

async fn pings_only_due_sessions(db: Database) {
    let pool = PingingPool::new(
        PingingOptions::default()
            .size(3)
            .ping_interval(Duration::from_millis(200)),
    )
    .unwrap();
    pool.bind(&db).await.unwrap();
    assert_eq!(pool.stats().open, 3);

    // Nothing is due right after creation.
    let report = pool.ping().await.unwrap();
    assert_eq!((report.pinged, report.replaced), (0, 0));

    tokio::time::sleep(Duration::from_millis(250)).await;
    // One session used just now is not due; the two others are.
    pool.session().await.unwrap().ping().await.unwrap();
    let report = pool.ping().await.unwrap();
    assert_eq!((report.pinged, report.replaced, report.failed), (2, 0, 0));
    assert_eq!(pool.stats().pinged, 2);
    // ping() returned after doing its work: everything is back and idle.
    let s = pool.stats();
    assert_eq!((s.idle, s.in_use, s.open), (3, 0, 3));
}

async fn least_recently_used_first(db: Database) {
    let pool = PingingPool::new(PingingOptions::default().size(3)).unwrap();
    pool.bind(&db).await.unwrap();
    let mut order = Vec::new();
    for _ in 0..6 {
        let s = pool.session().await.unwrap();
        order.push(s.session_id().unwrap().to_owned());
    }
    assert_eq!(
        order[0..3],
        order[3..6],
        "round-robin over the three sessions"
    );
    assert_ne!(order[0], order[1]);
}

#[allow(deprecated)]
async fn transaction_pinging_pool_behaves_as_pinging(db: Database) {
    let pool =
        session_pool::TransactionPingingPool::new(PingingOptions::default().size(2)).unwrap();
    pool.bind(&db).await.unwrap();
    pool.begin_pending_transactions().await.unwrap();
    let mut s = pool.session().await.unwrap();
    s.ping().await.unwrap();
    drop(s);
    assert_eq!(pool.stats().open, 2);
    assert_eq!(pool.ping().await.unwrap().pinged, 0);
}

async fn stopping_the_ping_task_loses_no_session(db: Database) {
    // ping_interval 0: every idle session is due, so rounds run back to back.
    let pool = PingingPool::new(
        PingingOptions::default()
            .size(3)
            .ping_interval(Duration::ZERO),
    )
    .unwrap();
    pool.bind(&db).await.unwrap();
    for _ in 0..5 {
        let task = pool.spawn_ping_task(Duration::from_millis(1));
        tokio::time::sleep(Duration::from_millis(20)).await;
        task.shutdown().await;
        let s = pool.stats();
        assert_eq!((s.open, s.idle, s.created), (3, 3, 3), "{s:?}");
    }
    // Dropping the handle stops it too.
    let task = pool.spawn_ping_task(Duration::from_millis(1));
    tokio::time::sleep(Duration::from_millis(20)).await;
    drop(task);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let s = pool.stats();
    assert_eq!((s.open, s.idle, s.created), (3, 3, 3), "{s:?}");
    assert!(s.pinged > 0);
}

on_both!(
    stopping_the_ping_task_loses_no_session,
    pings_only_due_sessions,
    least_recently_used_first,
    transaction_pinging_pool_behaves_as_pinging
);

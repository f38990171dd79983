//! FixedSizePool: defaults, bind, get/put/clear, timeouts, a full pool.
mod common;

use std::time::{Duration, Instant};

use session_pool::prelude::*;
use session_pool::{Database, Error, FixedSizeOptions, FixedSizePool, PoolOptions, SessionOptions};

#[test]
fn defaults_are_the_python_clients() {
    let o = FixedSizeOptions::default();
    assert_eq!(o.size, 10);
    assert_eq!(o.default_timeout, Duration::from_secs(10));
    assert_eq!(o.max_age, Duration::from_secs(55 * 60));
    assert!(matches!(
        FixedSizePool::new(o.size(0)),
        Err(Error::InvalidArgument(_))
    ));
}

async fn semantics(db: Database) {
    let pool = FixedSizePool::new(
        FixedSizeOptions::default()
            .size(3)
            .default_timeout(Duration::from_millis(200))
            .pool(PoolOptions::default().session(SessionOptions::default().label("app", "t"))),
    )
    .unwrap();
    assert!(matches!(pool.get(None).await, Err(Error::NotBound)));
    assert_eq!(pool.labels().get("app").map(String::as_str), Some("t"));

    pool.bind(&db).await.unwrap();
    let s = pool.stats();
    assert_eq!((s.open, s.idle, s.created, s.max_open), (3, 3, 3, 3));
    pool.bind(&db).await.unwrap();
    assert_eq!(pool.stats().created, 3, "binding again creates nothing");

    // Round-robin: the least recently returned session comes first.
    let a = pool.get(None).await.unwrap();
    let first_id = a.session_id().unwrap().to_owned();
    assert_eq!(a.labels().get("app").map(String::as_str), Some("t"));
    pool.put(a).unwrap();
    let b = pool.get(None).await.unwrap();
    assert_ne!(b.session_id().unwrap(), first_id);

    // Exhausted: get times out with a typed error close to the timeout.
    let c = pool.get(None).await.unwrap();
    let d = pool.get(None).await.unwrap();
    let started = Instant::now();
    match pool.get(Some(Duration::from_millis(150))).await {
        Err(Error::PoolTimeout { timeout }) => assert_eq!(timeout, Duration::from_millis(150)),
        other => panic!("expected PoolTimeout, got {other:?}"),
    }
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(150) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
    assert!(
        matches!(pool.get(None).await, Err(Error::PoolTimeout { .. })),
        "default timeout"
    );
    assert_eq!(pool.stats().get_timeouts, 2);

    // Putting a session the pool did not hand out into the full pool fails and gives it back.
    pool.put(b).unwrap();
    pool.put(c).unwrap();
    pool.put(d).unwrap();
    let mut extra = db.session();
    extra.create().await.unwrap();
    let err = pool.put(extra.into()).unwrap_err();
    assert!(matches!(err.error, Error::PoolFull { size: 3 }));
    assert!(
        err.session.is_created(),
        "the session is handed back intact"
    );
    // Not created: refused as invalid.
    assert!(matches!(
        pool.put(db.session().into()).unwrap_err().error,
        Error::InvalidArgument(_)
    ));

    let s = pool.stats();
    assert_eq!(
        (s.open, s.idle, s.in_use, s.acquired, s.released),
        (3, 3, 0, 4, 4)
    );

    // clear() deletes the idle sessions; the pool makes new ones on demand.
    pool.clear().await.unwrap();
    let s = pool.stats();
    assert_eq!((s.open, s.idle, s.deleted), (0, 0, 3));
    let mut again = pool.session().await.unwrap();
    again.ping().await.unwrap();
    assert_eq!(pool.stats().created, 4);
}

async fn checkout_guard_returns_the_session(db: Database) {
    let pool = FixedSizePool::new(FixedSizeOptions::default().size(1)).unwrap();
    pool.bind(&db).await.unwrap();
    let id = {
        let mut s = pool.session().await.unwrap();
        s.execute_sql("SELECT 1", &[]).await.unwrap();
        assert_eq!(pool.stats().in_use, 1);
        s.session_id().unwrap().to_owned()
    };
    assert_eq!(pool.stats().idle, 1);
    let s = pool.session().await.unwrap();
    assert_eq!(s.session_id().unwrap(), id, "the same session came back");
    // Through a shared trait object too, and the guard moves into a task.
    drop(s);
    let dyn_pool: std::sync::Arc<dyn AbstractSessionPool> = std::sync::Arc::new(pool.clone());
    let s = dyn_pool.session().await.unwrap();
    let seen = tokio::spawn(async move { s.session_id().map(str::to_owned) })
        .await
        .unwrap();
    assert_eq!(seen.as_deref(), Some(id.as_str()));
    assert_eq!(pool.stats().idle, 1, "the guard went home from the task");
}

async fn stale_sessions_are_checked_after_max_age(db: Database) {
    let pool =
        FixedSizePool::new(FixedSizeOptions::default().size(2).max_age(Duration::ZERO)).unwrap();
    pool.bind(&db).await.unwrap();
    // max_age 0: every checkout checks exists(); live sessions are kept.
    for _ in 0..4 {
        pool.session().await.unwrap().ping().await.unwrap();
    }
    let s = pool.stats();
    assert_eq!((s.created, s.replaced), (2, 0));
}

async fn rebinding_to_another_database_is_refused(db: Database) {
    let pool = FixedSizePool::new(FixedSizeOptions::default().size(1)).unwrap();
    pool.bind(&db).await.unwrap();
    let other = Database::open("sqlite::memory:").await.unwrap();
    assert!(matches!(
        pool.bind(&other).await,
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(pool.stats().open, 1);
}

on_both!(
    semantics,
    checkout_guard_returns_the_session,
    stale_sessions_are_checked_after_max_age,
    rebinding_to_another_database_is_refused
);

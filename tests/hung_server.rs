//! A server that stops answering (a frozen loopback proxy in front of PostgreSQL): every
//! wait is bounded, by the checkout timeout, the connect timeout, the check timeout or the
//! statement timeout, and the ping task stops promptly.
mod common;

use std::time::{Duration, Instant};

use common::proxy::{Proxy, upstream_of};
use session_pool::prelude::*;
use session_pool::{Database, DatabaseOptions, Error, PingingPool, PoolOptions};

/// Generous: each wait below is bounded well under it.
const BOUND: Duration = Duration::from_secs(5);

async fn behind_proxy(
    f: impl FnOnce(DatabaseOptions) -> DatabaseOptions,
) -> Option<(Proxy, Database)> {
    let url = common::pg_url()?;
    let proxy = Proxy::start(upstream_of(&url)).await;
    let db = f(DatabaseOptions::new(proxy.url_for(&url)))
        .open()
        .await
        .expect("PostgreSQL reachable through the proxy");
    Some((proxy, db))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_bounds_the_check_it_triggers() {
    // A long check timeout: only the checkout's own timeout can end the wait.
    let Some((proxy, db)) = behind_proxy(|o| o.check_timeout(Duration::from_secs(60))).await else {
        return;
    };
    let pool = session_pool::FixedSizePool::builder()
        .size(1)
        .pool(PoolOptions::default().check_idle_after(Duration::ZERO))
        .build(&db)
        .await
        .unwrap();
    proxy.freeze();
    let start = Instant::now();
    let res = pool.get(Some(Duration::from_millis(300))).await;
    assert!(matches!(res, Err(Error::PoolTimeout { .. })), "{res:?}");
    assert!(start.elapsed() < BOUND, "took {:?}", start.elapsed());
    // The place of the session cut off mid-check is free again.
    let stats = pool.stats();
    assert_eq!(stats.in_use, 0, "{stats:?}");
    assert_eq!(stats.get_timeouts, 1, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_bounds_the_creation_it_triggers() {
    let Some((proxy, db)) = behind_proxy(|o| o.connect_timeout(Duration::from_secs(60))).await
    else {
        return;
    };
    let pool = session_pool::BurstyPool::builder()
        .target_size(2)
        .build(&db)
        .await
        .unwrap();
    proxy.freeze();
    let start = Instant::now();
    let res = pool.get(Some(Duration::from_millis(300))).await;
    assert!(matches!(res, Err(Error::PoolTimeout { .. })), "{res:?}");
    assert!(start.elapsed() < BOUND, "took {:?}", start.elapsed());
    assert_eq!(pool.stats().open, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_creation_is_bounded_by_the_connect_timeout() {
    let Some((proxy, db)) = behind_proxy(|o| o.connect_timeout(Duration::from_millis(300))).await
    else {
        return;
    };
    proxy.freeze();
    let start = Instant::now();
    let res = db.session().create().await;
    assert!(matches!(res, Err(Error::Connect { .. })), "{res:?}");
    assert!(start.elapsed() < BOUND, "took {:?}", start.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_are_bounded_by_the_check_timeout() {
    let Some((proxy, db)) = behind_proxy(|o| o.check_timeout(Duration::from_millis(300))).await
    else {
        return;
    };
    let mut a = db.session();
    a.create().await.unwrap();
    let mut b = db.session();
    b.create().await.unwrap();
    proxy.freeze();

    let start = Instant::now();
    assert!(!a.exists().await.unwrap(), "a hung session does not exist");
    assert!(a.is_broken());
    let res = b.ping().await;
    assert!(matches!(res, Err(Error::SessionNotFound { .. })), "{res:?}");
    assert!(b.is_broken());
    assert!(start.elapsed() < BOUND, "took {:?}", start.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_past_its_timeout_on_a_hung_server_is_given_up() {
    let Some((proxy, db)) = behind_proxy(|o| o.check_timeout(Duration::from_millis(300))).await
    else {
        return;
    };
    let mut s = db.session();
    s.create().await.unwrap();
    proxy.freeze();
    let start = Instant::now();
    let res = s
        .with_timeout(Duration::from_millis(200))
        .execute_sql("SELECT 1", &[])
        .await;
    assert!(
        matches!(
            res,
            Err(Error::StatementTimeout {
                session_lost: true,
                ..
            })
        ),
        "{res:?}"
    );
    assert!(s.is_broken(), "a session stuck mid-statement is not reused");
    assert!(start.elapsed() < BOUND, "took {:?}", start.elapsed());

    // A stream too.
    use futures_util::StreamExt;
    let mut t = db.session();
    proxy.thaw();
    t.create().await.unwrap();
    proxy.freeze();
    let start = Instant::now();
    let first = t
        .with_timeout(Duration::from_millis(200))
        .execute_sql_stream("SELECT 1", &[])
        .next()
        .await;
    assert!(
        matches!(
            first,
            Some(Err(Error::StatementTimeout {
                session_lost: true,
                ..
            }))
        ),
        "{first:?}"
    );
    assert!(t.is_broken());
    assert!(start.elapsed() < BOUND, "took {:?}", start.elapsed());
}

/// A statement cut off (its future dropped) while the server hangs: the pool cannot
/// cancel it (the cancel's own connection hangs too), so it gives the session up within
/// the check timeout rather than keep the place, and serves a new one once the server
/// answers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_cut_off_on_a_hung_server_frees_its_place() {
    let Some((proxy, db)) = behind_proxy(|o| o.check_timeout(Duration::from_millis(300))).await
    else {
        return;
    };
    let pool = session_pool::FixedSizePool::builder()
        .size(1)
        .build(&db)
        .await
        .unwrap();
    let mut s = pool.session().await.unwrap();
    proxy.freeze();
    let start = Instant::now();
    let cut = tokio::time::timeout(
        Duration::from_millis(100),
        s.execute_sql("SELECT 1 AS one", &[]),
    )
    .await;
    assert!(cut.is_err(), "{cut:?}");
    drop(s);
    while pool.stats().in_use > 0 {
        assert!(start.elapsed() < BOUND, "still held: {:?}", pool.stats());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stats = pool.stats();
    assert_eq!((stats.open, stats.replaced), (0, 1), "{stats:?}");
    proxy.thaw();
    let mut s = pool.session().await.unwrap();
    s.execute_sql("SELECT 1 AS one", &[]).await.unwrap();
}

/// A cut-off statement whose cancel cannot get through (new connections hang, as when the
/// server or a pooler has none to spare) keeps its session's settle waiting up to the
/// check timeout; a transaction abandoned meanwhile on another session of the pool is
/// still rolled back at once, so its row lock goes, rather than after that settle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_settle_does_not_hold_up_another_sessions_rollback() {
    let Some((proxy, db)) = behind_proxy(|o| o.check_timeout(Duration::from_secs(2))).await else {
        return;
    };
    let direct = Database::open(&common::pg_url().unwrap()).await.unwrap();
    let table = common::counter_table(&direct, "stalled").await;
    let mut s = direct.session();
    s.create().await.unwrap();
    let pool = session_pool::FixedSizePool::builder()
        .size(2)
        .build(&db)
        .await
        .unwrap();
    let (mut a, mut b) = (pool.session().await.unwrap(), pool.session().await.unwrap());
    proxy.stall_new(true);

    // A: a statement cut off; its cancel needs a new connection, which hangs.
    let slow = "SELECT pg_sleep(20.25) IS NOT NULL AS slept";
    let cut = tokio::time::timeout(Duration::from_millis(100), a.execute_sql(slow, &[])).await;
    assert!(cut.is_err(), "{cut:?}");
    drop(a);
    tokio::time::sleep(Duration::from_millis(200)).await;

    // B: a transaction abandoned holding a row lock, with no statement running.
    let update = format!("UPDATE {table} SET n = n + 1 WHERE id = 1");
    let cut = tokio::time::timeout(
        Duration::from_millis(300),
        b.run_in_transaction(async |tx| {
            tx.execute_update(&update, &[]).await?;
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok::<_, Error>(())
        }),
    )
    .await;
    assert!(cut.is_err(), "{cut:?}");
    drop(b);

    // Another writer, straight to the server, waits at most 1 s for the row: less than
    // A's settle takes.
    let start = Instant::now();
    let res = async {
        let mut tx = s.transaction().await?;
        tx.execute_update("SET LOCAL lock_timeout = '1s'", &[])
            .await?;
        let n = tx
            .execute_update(&format!("UPDATE {table} SET n = 100 WHERE id = 1"), &[])
            .await?;
        tx.commit().await?;
        Ok::<_, Error>(n)
    }
    .await;
    assert!(
        matches!(res, Ok(1)),
        "the abandoned transaction still held the row lock after {:?}: {res:?}",
        start.elapsed()
    );

    // A's statement is still running (nothing could cancel it): end it here.
    proxy.stall_new(false);
    s.execute_sql(
        "SELECT pg_cancel_backend(pid) FROM pg_stat_activity \
         WHERE pid <> pg_backend_pid() AND query LIKE '%pg_sleep(20.25)%'",
        &[],
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ping_task_stops_promptly_over_a_hung_server() {
    // Probes that would hang for a minute: only stopping can end them.
    let Some((proxy, db)) = behind_proxy(|o| o.check_timeout(Duration::from_secs(60))).await else {
        return;
    };
    let pool = PingingPool::builder()
        .size(2)
        .ping_interval(Duration::ZERO)
        .build(&db)
        .await
        .unwrap();
    proxy.freeze();

    // Stopped through its handle.
    let task = pool.spawn_ping_task(Duration::from_millis(5));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!task.is_finished(), "the round hangs on the frozen server");
    let start = Instant::now();
    tokio::time::timeout(BOUND, task.shutdown())
        .await
        .expect("shutdown returns while the round hangs");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "took {:?}",
        start.elapsed()
    );

    // Stopped by closing the pool.
    let task = pool.spawn_ping_task(Duration::from_millis(5));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let close = tokio::time::timeout(BOUND, pool.close()).await;
    assert!(close.is_ok(), "close returns while the server hangs");
    for _ in 0..200 {
        if task.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        task.is_finished(),
        "the ping task ends when the pool closes"
    );
}

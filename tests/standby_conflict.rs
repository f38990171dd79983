//! A hot standby ends a session whose transaction, idle between statements, holds back the
//! replay of the primary's changes longer than its `max_standby_streaming_delay`: FATAL
//! `40001`, "terminating connection due to conflict with recovery". The SQLSTATE is the
//! one of a retryable abort, but the session is gone: it must not be retried on, nor go
//! back to its pool. A real primary and streaming standby (`pg_basebackup -R`), the
//! standby's delay 100 ms, the conflict a lock the primary takes on a table the standby's
//! transaction read.
mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use session_pool::prelude::*;
use session_pool::{Database, DatabaseOptions, Error, ErrorKind, Staleness};

use common::OwnServer;

async fn run(db: &Database, sql: &str) {
    let mut s = db.session();
    s.create().await.unwrap();
    s.execute_update(sql, &[]).await.unwrap();
}

/// A primary with table `rc`, and a standby of it that waits no longer than 100 ms for a
/// conflicting query before it cancels it, with `rc` replayed.
async fn pair() -> Option<(OwnServer, OwnServer, Database, Database)> {
    let primary = OwnServer::start()?;
    let standby = primary.start_standby();
    let (p, s) = (
        Database::open(&primary.url).await.unwrap(),
        Database::open(&standby.url).await.unwrap(),
    );
    run(&s, "ALTER SYSTEM SET max_standby_streaming_delay = '100ms'").await;
    run(&s, "SELECT pg_reload_conf()").await;
    run(&p, "CREATE TABLE rc (id int)").await;
    run(&p, "INSERT INTO rc VALUES (1)").await;
    let mut probe = s.session();
    probe.create().await.unwrap();
    for _ in 0..500 {
        let delay: String =
            common::scalar(&mut probe, "SHOW max_standby_streaming_delay", &[]).await;
        let replayed: bool =
            common::scalar(&mut probe, "SELECT to_regclass('rc') IS NOT NULL", &[]).await;
        if delay == "100ms" && replayed {
            return Some((primary, standby, p, s));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the standby did not take its delay or replay the table");
}

/// Takes an exclusive lock on `rc` on the primary, which the standby's replay must wait for.
async fn lock_on_primary(p: &Database) {
    let mut locker = p.session();
    locker.create().await.unwrap();
    locker
        .run_in_transaction(async |tx| {
            tx.execute_update("LOCK TABLE rc IN ACCESS EXCLUSIVE MODE", &[])
                .await
        })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_the_standby_ended_for_a_conflict_is_lost_not_aborted() {
    let Some((_primary, _standby, p, s)) = pair().await else {
        return;
    };
    let pool = common::fixed_pool(&s, 1).await;
    let mut session = pool.session().await.unwrap();
    let err = {
        let mut snapshot = session.snapshot().await.unwrap();
        snapshot.execute_sql("SELECT * FROM rc", &[]).await.unwrap();
        // Replay of this lock waits on the snapshot's, then ends its session.
        lock_on_primary(&p).await;
        tokio::time::sleep(Duration::from_millis(1000)).await;
        snapshot.execute_sql("SELECT 2", &[]).await.unwrap_err()
    };

    assert!(matches!(err, Error::SessionNotFound { .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::SessionLost);
    assert!(!err.is_aborted(), "retried on a session that is gone");
    assert_eq!(err.code(), Some("40001"));
    let text = err.to_string();
    assert!(text.contains("`max_standby_streaming_delay`"), "{text}");
    assert!(text.contains("hot_standby_feedback"), "{text}");
    drop(session);

    // The pool hands out a new session, not the one the standby ended.
    let mut next = pool.session().await.unwrap();
    assert_eq!(
        common::scalar::<i64>(&mut *next, "SELECT count(*) FROM rc", &[]).await,
        1
    );
    assert_eq!(pool.stats().replaced, 1, "{:?}", pool.stats());
}

/// A read-only transaction routed to the replica, whose replica connection the standby
/// ends: the read-only work runs again on a new route, and the session stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_routed_read_only_transaction_runs_again_when_the_standby_ends_its_link() {
    let Some((primary, standby, p, _s)) = pair().await else {
        return;
    };
    let db = DatabaseOptions::new(&primary.url)
        .replica(&standby.url)
        .open()
        .await
        .unwrap();
    let mut session = db.session();
    session.create().await.unwrap();
    let calls = AtomicU32::new(0);
    let loose = Staleness::Max(Duration::from_secs(60));
    let res: Result<i64, Error> = session
        .run_in_read_only_transaction_at(loose, async |snap| {
            let first = calls.fetch_add(1, Ordering::Relaxed) == 0;
            let on_standby: bool = common::scalar(snap, "SELECT pg_is_in_recovery()", &[]).await;
            // First on the replica; then, its only replica just failed it, on the primary.
            assert_eq!(on_standby, first);
            let n: i64 = common::scalar(snap, "SELECT count(*) FROM rc", &[]).await;
            if first {
                lock_on_primary(&p).await;
                tokio::time::sleep(Duration::from_millis(1000)).await;
            }
            snap.execute_sql("SELECT 2", &[]).await?;
            Ok(n)
        })
        .await;
    assert_eq!(res.unwrap(), 1);
    assert_eq!(calls.load(Ordering::Relaxed), 2, "not run again");
    assert!(!session.is_broken());
    assert_eq!(
        common::scalar::<i32>(&mut session, "SELECT 1", &[]).await,
        1
    );
}

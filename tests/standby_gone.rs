//! Synchronous replication with its standby gone: a real primary and streaming standby
//! (`pg_basebackup -R`), `synchronous_standby_names = '*'`, the standby then stopped as a
//! crash would. Every COMMIT on the primary now waits for it, holding its transaction's
//! locks. A COMMIT cut off by a request timeout used to go on waiting after its session
//! was given up, its row locks with it; the settle now cancels the wait, as a cancel of
//! PostgreSQL's own does (the transaction has committed locally; the server warns that it
//! may not be replicated), so the locks go and the session serves again.
mod common;

use std::time::Duration;

use session_pool::prelude::*;
use session_pool::{Database, Error};

use common::OwnServer;

/// Where the cut falls: the COMMIT has been waiting this long.
const CUT: Duration = Duration::from_millis(300);
/// How long the other writer waits for the lock: far less than the standby's absence.
const PATIENCE: Duration = Duration::from_secs(3);

async fn run(db: &Database, sql: &str) {
    let mut s = db.session();
    s.create().await.unwrap();
    s.execute_update(sql, &[]).await.unwrap();
}

/// Waits until the primary counts the standby as its synchronous one.
async fn synchronous(primary: &Database) {
    let mut s = primary.session();
    s.create().await.unwrap();
    for _ in 0..300 {
        let n: i64 = common::scalar(
            &mut s,
            "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'",
            &[],
        )
        .await;
        if n == 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the standby did not become synchronous");
}

/// Another writer, its own COMMIT not waiting for the standby, adding 100 to the row
/// within `PATIENCE` of lock wait (retried if it waited on the cut-off one's update: it
/// is `SERIALIZABLE`).
async fn other_writer_adds(db: &Database, name: &str) -> Result<u64, Error> {
    let mut s = db.session();
    s.create().await?;
    let update = format!("UPDATE {name} SET n = n + 100 WHERE id = 1");
    let lock_timeout = format!("SET LOCAL lock_timeout = '{}s'", PATIENCE.as_secs());
    s.run_in_transaction(async |tx| {
        tx.execute_update("SET LOCAL synchronous_commit = local", &[])
            .await?;
        tx.execute_update(&lock_timeout, &[]).await?;
        tx.execute_update(&update, &[]).await
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_cut_off_waiting_for_a_gone_standby_releases_its_locks() {
    let Some(primary) = OwnServer::start() else {
        return;
    };
    let standby = primary.start_standby();
    let db = Database::open(&primary.url).await.unwrap();
    run(&db, "ALTER SYSTEM SET synchronous_standby_names = '*'").await;
    run(&db, "SELECT pg_reload_conf()").await;
    synchronous(&db).await;
    let name = common::counter_table(&db, "standby_gone").await;
    standby.stop();

    let pool = common::fixed_pool(&db, 1).await;
    let mut s = pool.session().await.unwrap();
    common::cut_off_at_commit(&mut s, &name, &[], CUT).await;
    drop(s);

    let res = other_writer_adds(&db, &name).await;
    assert!(
        matches!(res, Ok(1)),
        "the cut-off COMMIT still held the row lock: {res:?}"
    );
    // Both committed: the cut-off one locally, when its wait was cancelled.
    let mut s = db.session();
    s.create().await.unwrap();
    let n: i64 = common::scalar(&mut s, &format!("SELECT n FROM {name} WHERE id = 1"), &[]).await;
    assert_eq!(n, 101);
    // The pool's session serves the next user (a read: it waits for no standby).
    let next = tokio::time::timeout(PATIENCE, async {
        let mut s = pool.session().await?;
        s.execute_sql("SELECT 1 AS one", &[]).await
    })
    .await;
    assert!(matches!(next, Ok(Ok(_))), "{next:?}");
    let stats = pool.stats();
    assert_eq!((stats.open, stats.replaced), (1, 0), "{stats:?}");
}

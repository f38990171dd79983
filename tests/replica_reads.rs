//! Reads with Spanner's staleness bounds on a real streaming replica (`scripts/test` starts
//! it with `pg_basebackup -R`), its lag forced with `recovery_min_apply_delay`: bounded
//! reads go to the replica while it is fresh enough, strong reads and writes to the
//! primary, and a read at least a commit token never returns older data.
mod common;

use std::time::{Duration, Instant};

use serde_json::json;
use session_pool::adk::{AdkConfig, AdkStore};
use session_pool::items::{ItemsConfig, ItemsStore};
use session_pool::prelude::*;
use session_pool::{
    CommitToken, Database, DatabaseOptions, Error, FixedSizePool, Session, Staleness, params,
};

/// The replica's apply delay is one setting for all: one test at a time changes it.
static LAG: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const LOOSE: Staleness = Staleness::Max(Duration::from_secs(60));

async fn primary_with_replica() -> Option<(Database, Database)> {
    let (primary, replica) = (common::pg_url()?, common::replica_url()?);
    let db = DatabaseOptions::new(&primary)
        .replica(&replica)
        .open()
        .await
        .unwrap();
    let direct = Database::open(&replica).await.unwrap();
    Some((db, direct))
}

/// Sets the replica's `recovery_min_apply_delay`.
async fn apply_delay(replica: &Database, delay: &str) {
    let mut s = replica.session();
    s.create().await.unwrap();
    s.execute_update(
        &format!("ALTER SYSTEM SET recovery_min_apply_delay = '{delay}'"),
        &[],
    )
    .await
    .unwrap();
    s.execute_sql("SELECT pg_reload_conf()", &[]).await.unwrap();
    // The reload is a signal: wait until new sessions see the setting, then a little
    // longer for the startup process, which applies the WAL, to read it too.
    let want = if delay == "0" { "0" } else { delay };
    for _ in 0..100 {
        let mut c = replica.session();
        c.create().await.unwrap();
        let now: String = common::scalar(&mut c, "SHOW recovery_min_apply_delay", &[]).await;
        if now == want {
            tokio::time::sleep(Duration::from_millis(200)).await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("recovery_min_apply_delay did not become {delay}");
}

/// Waits until reads at least `token` are served by the replica.
async fn replicated(s: &mut Session, token: CommitToken) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if s.read_at(Staleness::AtLeast(token))
            .await
            .unwrap()
            .replica()
            == Some(0)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the replica did not replay {token} within 30 s");
}

async fn count(s: &mut Session, bound: Staleness, table: &str) -> (Option<usize>, i64) {
    let mut read = s.read_at(bound).await.unwrap();
    let n = common::scalar(&mut read, &format!("SELECT count(*) FROM {table}"), &[]).await;
    (read.replica(), n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bounded_reads_follow_the_replicas_lag() {
    let Some((db, replica)) = primary_with_replica().await else {
        return;
    };
    let _lag = LAG.lock().await;
    let table = common::unique("rr");
    let mut s = db.session();
    s.create().await.unwrap();
    s.execute_update(
        &format!("CREATE TABLE {table} (id BIGINT PRIMARY KEY)"),
        &[],
    )
    .await
    .unwrap();
    s.execute_update(&format!("INSERT INTO {table} VALUES (1)"), &[])
        .await
        .unwrap();
    let first = s.commit_token().await.unwrap();
    replicated(&mut s, first).await;
    // With no lag, a bounded read goes to the replica and sees everything.
    assert_eq!(count(&mut s, LOOSE, &table).await, (Some(0), 1));

    // Replay held back: the replica is behind by the delay.
    apply_delay(&replica, "2s").await;
    let insert = format!("INSERT INTO {table} VALUES (2)");
    let committed = s
        .run_in_transaction_detailed(Default::default(), async |tx| {
            tx.execute_update(&insert, &[]).await
        })
        .await
        .unwrap();
    // The write returns its token: at or before what the primary says now.
    let second = committed.commit_token.expect("a database with replicas");
    assert!(second <= s.commit_token().await.unwrap());
    assert!(second > first);
    // A loose bound reads the replica's older data; a strong read the primary's.
    assert_eq!(count(&mut s, LOOSE, &table).await, (Some(0), 1));
    assert_eq!(count(&mut s, Staleness::Strong, &table).await, (None, 2));
    // At least the second write's token: never older, so the primary until the replica
    // has replayed it, then the replica.
    assert_eq!(
        count(&mut s, Staleness::AtLeast(second), &table).await,
        (None, 2)
    );
    // A bound tighter than the lag: the primary.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let tight = Staleness::Max(Duration::from_millis(200));
    assert_eq!(count(&mut s, tight, &table).await, (None, 2));
    replicated(&mut s, second).await;
    assert_eq!(
        count(&mut s, Staleness::AtLeast(second), &table).await,
        (Some(0), 2)
    );

    // A snapshot and a retried read-only transaction on the replica.
    {
        let mut snap = s.snapshot_at(LOOSE).await.unwrap();
        let r = snap
            .execute_sql("SELECT pg_is_in_recovery() AS r", &[])
            .await
            .unwrap();
        assert!(r.one().unwrap().get::<bool>("r").unwrap());
        snap.close().await.unwrap();
    }
    let on_standby = s
        .run_in_read_only_transaction_at(LOOSE, async |snap| {
            let rs = snap
                .execute_sql("SELECT pg_is_in_recovery() AS r", &[])
                .await?;
            rs.one()?.get::<bool>("r")
        })
        .await
        .unwrap();
    assert!(on_standby);

    // On a session of the standby itself: SERIALIZABLE is refused, read-only works.
    let mut standby = replica.session();
    standby.create().await.unwrap();
    let err = standby
        .run_in_transaction(async |tx| {
            tx.execute_sql("SELECT 1", &[]).await?;
            Ok::<_, Error>(())
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("0A000"), "{err}");
    let n = standby
        .run_in_read_only_transaction(async |snap| {
            snap.execute_sql(&format!("SELECT count(*) AS n FROM {table}"), &[])
                .await?
                .one()?
                .get::<i64>("n")
        })
        .await
        .unwrap();
    assert_eq!(n, 2);
    apply_delay(&replica, "0").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stores_read_with_the_bound() {
    let Some((db, replica)) = primary_with_replica().await else {
        return;
    };
    let _lag = LAG.lock().await;
    let pool = FixedSizePool::builder().size(2).build(&db).await.unwrap();
    let adk = common::adk_store(&db, AdkConfig::default()).await;
    let adk = AdkStore::new(
        pool.clone(),
        AdkConfig::default()
            .session_table(adk.session_table())
            .events_table(adk.events_table()),
    )
    .unwrap();
    let items = common::items_store(&db).await;
    let items = ItemsStore::new(
        pool.clone(),
        ItemsConfig::default()
            .sessions_table(items.sessions_table())
            .messages_table(items.messages_table()),
    )
    .unwrap();
    adk.create_session("s1", "app", "u", &json!({"v": 1}), None)
        .await
        .unwrap();
    items
        .session("c1")
        .unwrap()
        .add_items(&[json!({"n": 1})])
        .await
        .unwrap();
    let token = adk.commit_token().await.unwrap();
    let mut s = pool.session().await.unwrap();
    replicated(&mut s, token).await;
    drop(s);

    apply_delay(&replica, "2s").await;
    adk.update_session_state("s1", &json!({"v": 2}))
        .await
        .unwrap();
    items
        .session("c1")
        .unwrap()
        .add_items(&[json!({"n": 2})])
        .await
        .unwrap();
    let token = items.commit_token().await.unwrap();

    // Strong (the default) sees the writes; a loose bound reads the replica's past.
    let state = |r: Option<session_pool::adk::SessionRecord>| r.unwrap().state["v"].clone();
    assert_eq!(state(adk.get_session("s1").await.unwrap()), json!(2));
    let stale = adk.clone().with_staleness(LOOSE);
    assert_eq!(state(stale.get_session("s1").await.unwrap()), json!(1));
    let stale_items = items.clone().with_staleness(LOOSE);
    assert_eq!(
        stale_items
            .session("c1")
            .unwrap()
            .get_items(None)
            .await
            .unwrap()
            .len(),
        1
    );
    // At least the token: the writes, whichever server answers.
    let fresh = adk.clone().with_staleness(Staleness::AtLeast(token));
    assert_eq!(state(fresh.get_session("s1").await.unwrap()), json!(2));
    let fresh_items = items.clone().with_staleness(Staleness::AtLeast(token));
    assert_eq!(
        fresh_items
            .session("c1")
            .unwrap()
            .get_items(None)
            .await
            .unwrap()
            .len(),
        2
    );
    apply_delay(&replica, "0").await;
}

#[tokio::test]
async fn an_unreachable_replica_is_skipped() {
    let Some(primary) = common::pg_url() else {
        return;
    };
    // Nothing listens on port 1: the database still opens, and bounded reads use the
    // primary.
    let db = DatabaseOptions::new(&primary)
        .replica("postgres://postgres@127.0.0.1:1/postgres")
        .open()
        .await
        .unwrap();
    assert_eq!(db.replicas().len(), 1);
    let mut s = db.session();
    s.create().await.unwrap();
    let mut read = s.read_at(LOOSE).await.unwrap();
    assert_eq!(read.replica(), None);
    let rs = read
        .execute_sql("SELECT $1::int8 AS n", &params![7])
        .await
        .unwrap();
    assert_eq!(rs.one().unwrap().get::<i64>("n").unwrap(), 7);
    // SQLite has no replicas.
    let err = DatabaseOptions::new("sqlite::memory:")
        .replica(&primary)
        .open()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidUrl { .. }), "{err}");
}

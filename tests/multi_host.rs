//! libpq's multi-host URLs on a real primary and a real streaming standby
//! (`pg_basebackup -R`): `target_session_attrs` picks the host, and a pool on
//! `…?target_session_attrs=read-write` writes again after the standby is promoted and the
//! old primary stopped, without a restart.
mod common;

use std::time::{Duration, Instant};

use session_pool::prelude::*;
use session_pool::{Database, Error, FixedSizePool, params};

use common::OwnServer;

/// Whether the session's server is a standby.
async fn in_recovery(db: &Database) -> bool {
    let mut s = db.session();
    s.create().await.unwrap();
    common::scalar(&mut s, "SELECT pg_is_in_recovery()", &[]).await
}

/// Waits until the standby has replayed everything the primary wrote so far.
async fn caught_up(primary: &Database, standby: &Database) {
    let mut p = primary.session();
    p.create().await.unwrap();
    let lsn: String = common::scalar(&mut p, "SELECT pg_current_wal_lsn()::text", &[]).await;
    let mut s = standby.session();
    s.create().await.unwrap();
    for _ in 0..300 {
        let done: bool = common::scalar(
            &mut s,
            "SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn",
            &params![lsn.clone()],
        )
        .await;
        if done {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the standby did not catch up");
}

fn url(hosts: &[&OwnServer], attrs: &str) -> String {
    let list: Vec<&str> = hosts.iter().map(|s| s.host_port()).collect();
    format!(
        "postgres://postgres@{}/postgres?target_session_attrs={attrs}",
        list.join(",")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_session_attrs_pick_the_host_and_a_pool_follows_a_promotion() {
    let Some(primary) = OwnServer::start() else {
        return;
    };
    let standby = primary.start_standby();
    let (p, s) = (&primary, &standby);

    // Each attribute, whichever host comes first.
    for (hosts, attrs, on_standby) in [
        (vec![s, p], "read-write", false),
        (vec![s, p], "primary", false),
        (vec![p, s], "read-only", true),
        (vec![p, s], "standby", true),
        (vec![p, s], "prefer-standby", true),
        (vec![s, p], "any", true),
        (vec![p, s], "any", false),
    ] {
        let db = Database::open(&url(&hosts, attrs)).await.unwrap();
        assert_eq!(in_recovery(&db).await, on_standby, "{attrs}");
    }
    // prefer-standby with no standby takes the primary.
    let db = Database::open(&url(&[p], "prefer-standby")).await.unwrap();
    assert!(!in_recovery(&db).await);
    // No host fits: a connect error that says so.
    match Database::open(&url(&[s], "read-write")).await {
        Err(Error::Connect { source, .. }) => {
            assert!(source.to_string().contains("read-write"), "{source}")
        }
        other => panic!("expected Connect, got {other:?}"),
    }

    // A pool on the pair, read-write: it writes to the primary...
    let db = Database::open(&url(&[p, s], "read-write")).await.unwrap();
    assert!(db.name().contains(','), "{}", db.name());
    let pool = FixedSizePool::builder().size(3).build(&db).await.unwrap();
    let mut c = pool.session().await.unwrap();
    c.execute_update("CREATE TABLE failover (id BIGINT PRIMARY KEY)", &[])
        .await
        .unwrap();
    for i in 0..10 {
        c.execute_update("INSERT INTO failover VALUES ($1)", &params![i])
            .await
            .unwrap();
    }
    drop(c);
    let direct_p = Database::open(&primary.url).await.unwrap();
    let direct_s = Database::open(&standby.url).await.unwrap();
    caught_up(&direct_p, &direct_s).await;

    // ...the primary goes, the standby is promoted...
    primary.stop();
    standby.promote();
    let promoted = Instant::now();

    // ...and the same pool writes again, on the new primary, without a restart.
    let mut last = None;
    let mut written = false;
    while promoted.elapsed() < Duration::from_secs(30) {
        let res: Result<(), Error> = async {
            let mut c = pool.session().await?;
            c.execute_update("INSERT INTO failover VALUES (100)", &[])
                .await?;
            Ok(())
        }
        .await;
        match res {
            Ok(()) => {
                written = true;
                break;
            }
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(written, "no write within 30 s of the promotion: {last:?}");
    eprintln!("writing again {:?} after the promotion", promoted.elapsed());
    let mut c = pool.session().await.unwrap();
    let n: i64 = common::scalar(&mut *c, "SELECT count(*) FROM failover", &[]).await;
    assert_eq!(n, 11, "the rows written before the failover are there");
    let on_standby: bool = common::scalar(&mut *c, "SELECT pg_is_in_recovery()", &[]).await;
    assert!(!on_standby);
}

#[tokio::test]
async fn unknown_attributes_are_invalid_urls() {
    for url in [
        "postgres://postgres@127.0.0.1:1/postgres?target_session_attrs=master",
        "postgres://postgres@127.0.0.1:1,,127.0.0.1:2/postgres",
    ] {
        match Database::open(url).await {
            Err(Error::InvalidUrl { reason, .. }) => assert!(!reason.is_empty()),
            other => panic!("{url}: expected InvalidUrl, got {other:?}"),
        }
    }
}

//! A burst of cut-off statements (a wave of request timeouts) under a connection limit.
//! Each cancel goes from a connection of its own; sent one each, ten at once overran the
//! role's limit (12 here: the pool's 10 sessions and two to spare), the refused ones could
//! not stop their statements, and those ran on, holding their sessions, for the
//! statement's 30 s. Now waiting cancels go together from one connection.
//!
//! PostgreSQL only (SQLite's interrupt needs no connection); directly, since the role is
//! made for the test.
mod common;

use std::time::{Duration, Instant};

use session_pool::prelude::*;
use session_pool::{Database, FixedSizePool, params};

const SESSIONS: usize = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_cut_off_statements_is_stopped_within_a_connection_limit() {
    let Some(mut admin) = common::pg_admin().await else {
        return;
    };
    let role = common::unique("burst");
    admin
        .execute_update(
            &format!("CREATE ROLE {role} LOGIN CONNECTION LIMIT {}", SESSIONS + 2),
            &[],
        )
        .await
        .unwrap();
    let db = Database::open(&common::as_user(&common::pg_url().unwrap(), &role))
        .await
        .unwrap();
    let pool = FixedSizePool::builder()
        .size(SESSIONS)
        .build(&db)
        .await
        .unwrap();

    // Every session runs a 30 s statement, all cut off at the same moment.
    let mut sessions = Vec::new();
    for _ in 0..SESSIONS {
        sessions.push(pool.session().await.unwrap());
    }
    let cut = futures_util::future::join_all(sessions.iter_mut().map(|s| {
        tokio::time::timeout(
            Duration::from_millis(300),
            s.execute_sql("SELECT pg_sleep(30) IS NOT NULL AS slept", &[]),
        )
    }))
    .await;
    assert!(cut.iter().all(|c| c.is_err()), "{cut:?}");
    drop(sessions);

    // All stopped, and every session back, within a second or so (not the check timeout
    // that a refused cancel would leave them waiting out).
    let start = Instant::now();
    let running = loop {
        let running = admin
            .execute_sql(
                "SELECT count(*) AS n FROM pg_stat_activity WHERE usename = $1 \
                 AND state = 'active' AND query LIKE '%pg_sleep(30)%'",
                &params![role.as_str()],
            )
            .await
            .unwrap()
            .one()
            .unwrap()
            .get::<i64>("n")
            .unwrap();
        if (running == 0 && pool.stats().in_use == 0) || start.elapsed() > Duration::from_secs(3) {
            break running;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let stats = pool.stats();
    assert_eq!(
        (running, stats.in_use, stats.replaced),
        (0, 0, 0),
        "after {:?}: {stats:?}",
        start.elapsed()
    );
    let mut s = pool.session().await.unwrap();
    s.execute_sql("SELECT 1 AS one", &[]).await.unwrap();
}

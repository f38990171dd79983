//! A transaction-mode pooler nobody declared, found by the sessions themselves. Through a
//! current PgBouncer (1.25.2, which `scripts/test` builds: `max_prepared_statements` on by
//! default) prepared statements work in transaction mode, renamed on the server
//! connections, so nothing fails to say that a session's transactions run on shared server
//! connections. Without detection a session's `statement_timeout` and `SET ROLE` landed on
//! them, and its backend pid named whichever client's backend it had first. Session mode,
//! a direct server and a declared mode are left as they are.
mod common;

use std::time::Duration;

use session_pool::prelude::*;
use session_pool::{Database, DatabaseOptions, Error, FixedSizePool, SessionOptions};

/// `statement_timeout` on every server connection of the pooler's database entry at
/// `url`: as many transactions held at once as the entry has server connections (4), so
/// each answers from another one.
async fn server_timeouts(url: &str) -> Vec<String> {
    use sqlx::Row;
    let mut held = common::hold_server_connections(url, 4).await;
    let mut seen = Vec::new();
    for c in &mut held {
        let row = sqlx::raw_sql(
            "SELECT pg_backend_pid()::text || ' ' || current_setting('statement_timeout')",
        )
        .fetch_one(&mut *c)
        .await
        .unwrap();
        seen.push(row.try_get::<String, _>(0).unwrap());
    }
    common::end_held(held).await;
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pooler_that_renames_statements_is_found() {
    if let Some(url) = common::pgbouncer("PGBOUNCER_CURRENT_SMALL_URL") {
        found_by_its_renamed_statements(&url).await;
    }
}

/// PgCat with its statement cache renames them too (`PGCAT_<n>`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgcat_with_its_statement_cache_is_found() {
    if let Some(url) = common::pgbouncer("PGCAT_URL") {
        found_by_its_renamed_statements(&url).await;
    }
}

async fn found_by_its_renamed_statements(url: &str) {
    let url = url.to_owned();
    let timeout = Duration::from_millis(250);
    let db = DatabaseOptions::new(&url)
        .statement_timeout(timeout)
        .open()
        .await
        .unwrap();
    // Nothing is known before a session asks.
    assert!(!db.transaction_pooler());
    let pool = FixedSizePool::builder().size(4).build(&db).await.unwrap();
    assert!(db.transaction_pooler(), "the pooler was not found");

    // Every session is in the pooler mode: no backend pid, the timeout sent with each
    // statement and enforced by the server, the session kept.
    for _ in 0..4 {
        let mut s = pool.get(None).await.unwrap();
        assert_eq!(s.backend_pid(), None);
        let err = s.execute_sql("SELECT pg_sleep(5)", &[]).await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::StatementTimeout {
                    session_lost: false,
                    ..
                }
            ),
            "{err:?}"
        );
        let rs = s.execute_sql("SELECT 41 + 1 AS n", &[]).await.unwrap();
        assert_eq!(rs.one().unwrap().get::<i64>("n").unwrap(), 42);
    }
    // And no server connection kept the sessions' timeout for other clients.
    for seen in server_timeouts(&url).await {
        assert!(seen.ends_with(" 0"), "a server connection kept {seen}");
    }
    // A database role would land on a shared server connection too.
    let mut s = db.session_with(SessionOptions::default().database_role("postgres"));
    let err = s.create().await.unwrap_err();
    assert!(matches!(err, Error::Unsupported(_)), "{err:?}");
    pool.close().await;
}

#[tokio::test]
async fn session_mode_is_not_taken_for_one() {
    let Some(url) = common::pgbouncer("PGBOUNCER_CURRENT_SESSION_URL") else {
        return;
    };
    let db = Database::open(&url).await.unwrap();
    let mut s = db.session_with(SessionOptions::default().database_role("postgres"));
    s.create().await.unwrap();
    assert!(!db.transaction_pooler());
    assert!(s.backend_pid().is_some());
    let rs = s
        .execute_sql("SELECT pg_backend_pid() AS pid", &[])
        .await
        .unwrap();
    assert_eq!(
        rs.one().unwrap().get::<i32>("pid").unwrap(),
        s.backend_pid().unwrap()
    );
}

#[tokio::test]
async fn a_direct_server_is_not_taken_for_one() {
    let Some(db) = common::postgres_with(|o| o.statement_timeout(Duration::from_secs(7))).await
    else {
        return;
    };
    let mut s = db.session();
    s.create().await.unwrap();
    assert!(!db.transaction_pooler());
    assert!(s.backend_pid().is_some());
    // The timeout is the session's own setting, as before.
    let rs = s
        .execute_sql("SELECT current_setting('statement_timeout') AS t", &[])
        .await
        .unwrap();
    assert_eq!(rs.one().unwrap().get::<String>("t").unwrap(), "7s");
}

/// `?pgbouncer=false` is taken at its word: no check, the direct mode (and, in transaction
/// mode, the user's to answer for).
#[tokio::test]
async fn a_declared_mode_is_not_second_guessed() {
    let Some(url) = common::pgbouncer("PGBOUNCER_CURRENT_URL") else {
        return;
    };
    let db = Database::open(&format!("{url}?pgbouncer=false"))
        .await
        .unwrap();
    let mut s = db.session();
    s.create().await.unwrap();
    assert!(!db.transaction_pooler());
    assert!(s.backend_pid().is_some());
    s.delete().await.unwrap();
}

//! PostgreSQL's own limits that end a session: `idle_in_transaction_session_timeout`,
//! `idle_session_timeout` (PostgreSQL 14) and `transaction_timeout` (PostgreSQL 17). Each
//! loses the session (`Error::SessionNotFound`, which a pool replaces), and the error names
//! the setting and what to do. A transaction that took longer than a limit allows is not
//! run again on another session, where it would meet the limit again; a session ended for
//! sitting idle is no fault of the work, which is run again. Each test sets its limit for
//! its own connections only (libpq's `options` in the URL). `transaction_timeout` runs
//! against the newest release's server `scripts/test` starts beside the main one.
mod common;

use std::time::Duration;

use common::overrun::{self, Overrun};
use session_pool::prelude::*;
use session_pool::{Database, Error, ErrorKind, FixedSizePool};

async fn database_with(url: &str, setting: &str, ms: u32) -> Database {
    let url = common::with_server_setting(url, setting, &ms.to_string());
    Database::open(&url).await.unwrap()
}

async fn pool_with(url: &str, setting: &str, ms: u32) -> FixedSizePool {
    common::fixed_pool(&database_with(url, setting, ms).await, 2).await
}

/// The error is a lost session that names the server's `setting`, its SQLSTATE, and what
/// to do.
fn assert_names(err: &Error, setting: &str, code: &str, advice: &str) {
    assert!(matches!(err, Error::SessionNotFound { .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::SessionLost);
    assert_eq!(err.code(), Some(code), "{err:?}");
    let text = err.to_string();
    let named = format!("the server ended the connection at its `{setting}`");
    assert!(text.contains(&named), "{text}");
    assert!(text.contains(&format!("SQLSTATE {code}")), "{text}");
    assert!(text.contains(advice), "{text}");
}

#[tokio::test]
async fn a_transaction_idle_past_idle_in_transaction_session_timeout_is_not_run_again() {
    let Some(url) = common::pg_url() else {
        return;
    };
    let pool = pool_with(&url, "idle_in_transaction_session_timeout", 500).await;
    let idle = Overrun::Idle {
        first: "SELECT 1",
        idle: Duration::from_millis(1500),
    };
    let (res, calls) = overrun::run(&pool, idle).await;

    assert_names(
        &res.unwrap_err(),
        "idle_in_transaction_session_timeout",
        "25P03",
        "outside the transaction",
    );
    assert_eq!(calls, 1, "run again on another session");
    overrun::assert_pool_works(&pool).await;
}

#[tokio::test]
async fn a_commit_after_idling_past_idle_in_transaction_session_timeout_is_a_known_rollback() {
    let Some(url) = common::pg_url() else {
        return;
    };
    let db = database_with(&url, "idle_in_transaction_session_timeout", 500).await;
    let table = common::counter_table(&db, "idle_commit").await;
    let pool = common::fixed_pool(&db, 2).await;
    let idle = Overrun::IdleBeforeCommit {
        table: &table,
        idle: Duration::from_millis(1500),
    };
    let (res, calls) = overrun::run(&pool, idle).await;

    // Not `CommitUnknown`: the server never read the COMMIT.
    assert_names(
        &res.unwrap_err(),
        "idle_in_transaction_session_timeout",
        "25P03",
        "was rolled back",
    );
    assert_eq!(calls, 1);
    assert_eq!(overrun::count(&pool, &table).await, 0);
}

#[tokio::test]
async fn a_session_idle_past_idle_session_timeout_names_it() {
    let Some(url) = common::pg_url() else {
        return;
    };
    let db = database_with(&url, "idle_session_timeout", 500).await;
    let mut s = db.session();
    s.create().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let res = s.execute_sql("SELECT 1", &[]).await;

    assert_names(
        &res.unwrap_err(),
        "idle_session_timeout",
        "57P05",
        "PoolOptions::max_idle_lifetime",
    );
}

#[tokio::test]
async fn a_transaction_meeting_a_session_ended_for_idling_runs_on_another() {
    let Some(url) = common::pg_url() else {
        return;
    };
    let pool = pool_with(&url, "idle_session_timeout", 500).await;
    // Both sessions ended by the server while idle in the pool.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let short = Overrun::Long {
        sql: "SELECT 7",
        times: 1,
    };
    let (res, calls) = overrun::run(&pool, short).await;

    res.unwrap();
    // The loss is met at `BEGIN`, before the function runs: it runs once, on another.
    assert_eq!(calls, 1);
    assert!(pool.stats().replaced >= 1, "{:?}", pool.stats());
    overrun::assert_pool_works(&pool).await;
}

#[tokio::test]
async fn a_store_read_after_the_server_ended_its_idle_sessions_succeeds() {
    let Some(url) = common::pg_url() else {
        return;
    };
    let db = database_with(&url, "idle_session_timeout", 500).await;
    let store = common::items_store(&db).await;
    let conversation = store.session("idle-cut").unwrap();
    let item = serde_json::json!({"role": "user", "content": "hello"});
    conversation
        .add_items(std::slice::from_ref(&item))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // The lost session is no fault of the read, which runs again on another.
    assert_eq!(conversation.get_items(None).await.unwrap(), vec![item]);
}

#[tokio::test]
async fn a_transaction_past_transaction_timeout_is_not_run_again() {
    let Some(url) = common::pg_newest_url() else {
        return;
    };
    let pool = pool_with(&url, "transaction_timeout", 1000).await;
    let long = Overrun::Long {
        sql: "SELECT pg_sleep(0.4)",
        times: 4,
    };
    let (res, calls) = overrun::run(&pool, long).await;

    assert_names(
        &res.unwrap_err(),
        "transaction_timeout",
        "25P04",
        "keep transactions shorter",
    );
    assert_eq!(calls, 1, "run again on another session");
    overrun::assert_pool_works(&pool).await;
}

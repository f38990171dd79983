//! PgBouncer's limits that end a client connection: `query_timeout`,
//! `idle_transaction_timeout`, `transaction_timeout` (new in 1.25) and
//! `client_idle_timeout`. Each loses the session (`Error::SessionNotFound`, which a pool
//! replaces), and the error names the limit and what to do. A transaction that took longer
//! than the limit allows is not run again on another session, where it would meet the
//! limit again; the idle limit is no fault of the work, which is run again. Against the
//! PgBouncer 1.25.2 `scripts/test` builds, each limit set to 1 s from its admin console
//! for the test's length. The server's own limits are `server_timeouts.rs`'s; one of them
//! is met here through the pooler, which passes the server's error on.
mod common;

use std::time::Duration;

use common::overrun::{self, Overrun};
use session_pool::prelude::*;
use session_pool::{Database, Error, ErrorKind, FixedSizePool};

/// The limits are the pooler's, for every client: one test at a time.
static LIMITS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// One of the pooler's limits, set to 1 s from its admin console until [`Limit::lift`].
struct Limit {
    admin: sqlx::PgConnection,
    name: &'static str,
}

impl Limit {
    async fn set(url: &str, name: &'static str) -> Limit {
        let (server, _database) = url.rsplit_once('/').unwrap();
        let mut admin = common::pooler_conn(&format!("{server}/pgbouncer")).await;
        common::pooler_set(&mut admin, name, 1).await;
        Limit { admin, name }
    }

    async fn lift(mut self) {
        common::pooler_set(&mut self.admin, self.name, 0).await;
    }
}

/// Runs `overrun` on `pool` with the pooler's `limit` set to 1 s: the result, and how many
/// times the function ran.
async fn overrun_past(
    url: &str,
    limit: &'static str,
    pool: &FixedSizePool,
    overrun: Overrun<'_>,
) -> (Result<(), Error>, u32) {
    let limit = Limit::set(url, limit).await;
    let out = overrun::run(pool, overrun).await;
    limit.lift().await;
    out
}

async fn pool(url: &str) -> FixedSizePool {
    let db = Database::open(url).await.unwrap();
    common::fixed_pool(&db, 2).await
}

/// The error is a lost session that names `limit` and says what to do.
fn assert_names(err: &Error, limit: &str, advice: &str) {
    assert!(matches!(err, Error::SessionNotFound { .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::SessionLost);
    let text = err.to_string();
    assert!(
        text.contains("the pooler in front ended the connection"),
        "{text}"
    );
    assert!(text.contains(limit), "{text}");
    assert!(text.contains(advice), "{text}");
}

#[tokio::test]
async fn a_statement_past_the_query_timeout_names_it() {
    let Some(url) = common::pgbouncer("PGBOUNCER_CURRENT_URL") else {
        return;
    };
    let _one_at_a_time = LIMITS.lock().await;
    let pool = pool(&url).await;
    let limit = Limit::set(&url, "query_timeout").await;
    let res = async {
        let mut s = pool.session().await?;
        s.execute_sql("SELECT pg_sleep(3)", &[]).await
    }
    .await;
    limit.lift().await;

    assert_names(
        &res.unwrap_err(),
        "`query_timeout`",
        "DatabaseOptions::statement_timeout",
    );
    overrun::assert_pool_works(&pool).await;
}

#[tokio::test]
async fn a_transaction_past_the_transaction_timeout_is_not_run_again() {
    let Some(url) = common::pgbouncer("PGBOUNCER_CURRENT_URL") else {
        return;
    };
    let _one_at_a_time = LIMITS.lock().await;
    let pool = pool(&url).await;
    let long = Overrun::Long {
        sql: "SELECT pg_sleep(0.6)",
        times: 4,
    };
    let (res, calls) = overrun_past(&url, "transaction_timeout", &pool, long).await;

    assert_names(
        &res.unwrap_err(),
        "`transaction_timeout`",
        "keep transactions shorter",
    );
    assert_eq!(calls, 1, "run again on another session");
    overrun::assert_pool_works(&pool).await;
}

#[tokio::test]
async fn a_transaction_idle_past_the_idle_transaction_timeout_is_not_run_again() {
    let Some(url) = common::pgbouncer("PGBOUNCER_CURRENT_URL") else {
        return;
    };
    let _one_at_a_time = LIMITS.lock().await;
    let pool = pool(&url).await;
    let idle = Overrun::Idle {
        first: "SELECT 1",
        idle: Duration::from_millis(2500),
    };
    let (res, calls) = overrun_past(&url, "idle_transaction_timeout", &pool, idle).await;

    assert_names(
        &res.unwrap_err(),
        "`idle_transaction_timeout`",
        "outside the transaction",
    );
    assert_eq!(calls, 1, "run again on another session");
    overrun::assert_pool_works(&pool).await;
}

#[tokio::test]
async fn a_commit_after_idling_past_the_idle_transaction_timeout_is_a_known_rollback() {
    let Some(url) = common::pgbouncer("PGBOUNCER_CURRENT_URL") else {
        return;
    };
    let _one_at_a_time = LIMITS.lock().await;
    let db = Database::open(&url).await.unwrap();
    let table = common::counter_table(&db, "idle_commit").await;
    let pool = common::fixed_pool(&db, 2).await;
    let idle = Overrun::IdleBeforeCommit {
        table: &table,
        idle: Duration::from_millis(2500),
    };
    let (res, calls) = overrun_past(&url, "idle_transaction_timeout", &pool, idle).await;

    // Not `CommitUnknown`: the pooler never passed the COMMIT on.
    assert_names(
        &res.unwrap_err(),
        "`idle_transaction_timeout`",
        "was rolled back",
    );
    assert_eq!(calls, 1);
    assert_eq!(overrun::count(&pool, &table).await, 0);
}

#[tokio::test]
async fn a_session_idle_past_the_client_idle_timeout_names_it() {
    let Some(url) = common::pgbouncer("PGBOUNCER_CURRENT_URL") else {
        return;
    };
    let _one_at_a_time = LIMITS.lock().await;
    let db = Database::open(&url).await.unwrap();
    let mut s = db.session();
    s.create().await.unwrap();
    let limit = Limit::set(&url, "client_idle_timeout").await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let res = s.execute_sql("SELECT 1", &[]).await;
    limit.lift().await;

    assert_names(
        &res.unwrap_err(),
        "`client_idle_timeout`",
        "PoolOptions::max_idle_lifetime",
    );
}

#[tokio::test]
async fn a_store_read_after_the_pooler_dropped_the_idle_sessions_succeeds() {
    let Some(url) = common::pgbouncer("PGBOUNCER_CURRENT_URL") else {
        return;
    };
    let _one_at_a_time = LIMITS.lock().await;
    let db = Database::open(&url).await.unwrap();
    let store = common::items_store(&db).await;
    let conversation = store.session("idle-cut").unwrap();
    let item = serde_json::json!({"role": "user", "content": "hello"});
    conversation
        .add_items(std::slice::from_ref(&item))
        .await
        .unwrap();
    // Every idle session of the store's pool ended by the pooler.
    let limit = Limit::set(&url, "client_idle_timeout").await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    limit.lift().await;

    // The lost session is no fault of the read, which runs again on another.
    assert_eq!(conversation.get_items(None).await.unwrap(), vec![item]);
}

#[tokio::test]
async fn the_servers_own_limit_passed_on_by_the_pooler_is_named_and_not_run_again() {
    let Some(url) = common::pgbouncer("PGBOUNCER_CURRENT_URL") else {
        return;
    };
    let _one_at_a_time = LIMITS.lock().await;
    let pool = pool(&url).await;
    // The server ends its connection; the pooler passes the server's FATAL on first.
    let idle = Overrun::Idle {
        first: "SET LOCAL idle_in_transaction_session_timeout = '500ms'",
        idle: Duration::from_millis(1500),
    };
    let (res, calls) = overrun::run(&pool, idle).await;

    let err = res.unwrap_err();
    assert!(matches!(err, Error::SessionNotFound { .. }), "{err:?}");
    assert_eq!(err.code(), Some("25P03"), "{err:?}");
    let named = "the server ended the connection at its `idle_in_transaction_session_timeout`";
    assert!(err.to_string().contains(named), "{err}");
    assert_eq!(calls, 1, "run again on another session");
    overrun::assert_pool_works(&pool).await;
}

//! PgBouncer's limits that end a client connection: `query_timeout`,
//! `idle_transaction_timeout`, `transaction_timeout` (new in 1.25) and
//! `client_idle_timeout`. Each loses the session (`Error::SessionNotFound`, which a pool
//! replaces), and the error names the limit and what to do. A transaction that took longer
//! than the limit allows is not run again on another session, where it would meet the
//! limit again; the idle limit is no fault of the work, which is run again. Against the
//! PgBouncer 1.25.2 `scripts/test` builds, each limit set to 1 s from its admin console
//! for the test's length.
mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

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

/// After the loss the pool hands out a working session.
async fn assert_pool_works(pool: &FixedSizePool) {
    let mut s = pool.session().await.unwrap();
    assert_eq!(common::scalar::<i64>(&mut *s, "SELECT 1", &[]).await, 1);
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
    assert_pool_works(&pool).await;
}

#[tokio::test]
async fn a_transaction_past_the_transaction_timeout_is_not_run_again() {
    let Some(url) = common::pgbouncer("PGBOUNCER_CURRENT_URL") else {
        return;
    };
    let _one_at_a_time = LIMITS.lock().await;
    let pool = pool(&url).await;
    let limit = Limit::set(&url, "transaction_timeout").await;
    let calls = AtomicU32::new(0);
    // Each statement shorter than the limit, the transaction longer.
    let res: Result<(), Error> = pool
        .run_in_transaction(async |tx| {
            calls.fetch_add(1, Ordering::Relaxed);
            for _ in 0..4 {
                tx.execute_sql("SELECT pg_sleep(0.6)", &[]).await?;
            }
            Ok(())
        })
        .await;
    limit.lift().await;

    assert_names(
        &res.unwrap_err(),
        "`transaction_timeout`",
        "keep transactions shorter",
    );
    assert_eq!(
        calls.load(Ordering::Relaxed),
        1,
        "run again on another session"
    );
    assert_pool_works(&pool).await;
}

#[tokio::test]
async fn a_transaction_idle_past_the_idle_transaction_timeout_is_not_run_again() {
    let Some(url) = common::pgbouncer("PGBOUNCER_CURRENT_URL") else {
        return;
    };
    let _one_at_a_time = LIMITS.lock().await;
    let pool = pool(&url).await;
    let limit = Limit::set(&url, "idle_transaction_timeout").await;
    let calls = AtomicU32::new(0);
    let res: Result<(), Error> = pool
        .run_in_transaction(async |tx| {
            calls.fetch_add(1, Ordering::Relaxed);
            tx.execute_sql("SELECT 1", &[]).await?;
            // Work that is not SQL, inside the transaction.
            tokio::time::sleep(Duration::from_millis(2500)).await;
            tx.execute_sql("SELECT 2", &[]).await?;
            Ok(())
        })
        .await;
    limit.lift().await;

    assert_names(
        &res.unwrap_err(),
        "`idle_transaction_timeout`",
        "outside the transaction",
    );
    assert_eq!(
        calls.load(Ordering::Relaxed),
        1,
        "run again on another session"
    );
    assert_pool_works(&pool).await;
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

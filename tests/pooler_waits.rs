//! A query a transaction pooler cannot give a server connection: PgBouncer ends the client
//! connection after its `query_wait_timeout`, and the error says what that wait means
//! (the pool held by other transactions, or the server out of reach), not that this
//! client opened too many connections. Against the PgBouncer 1.25.2 `scripts/test` builds,
//! its `query_wait_timeout` lowered to 1 s from its admin console for the test's length.
//! A query that waits less gets a NOTICE in the middle of its statement (1.25's
//! `query_wait_notify`), and runs once a server connection frees.
mod common;

use std::time::Duration;

use session_pool::prelude::*;
use session_pool::{Database, Error, ErrorKind};

/// Each test holds every server connection of the pooler's `small` entry: one at a time.
static SMALL_ENTRY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn set_query_wait_timeout(admin: &mut sqlx::PgConnection, seconds: u32) {
    common::pooler_set(admin, "query_wait_timeout", seconds).await;
}

#[tokio::test]
async fn a_query_that_waited_out_the_pooler_says_why() {
    let Some(url) = common::pgbouncer("PGBOUNCER_CURRENT_SMALL_URL") else {
        return;
    };
    let _one_at_a_time = SMALL_ENTRY.lock().await;
    let db = Database::open(&url).await.unwrap();
    let mut s = db.session();
    s.create().await.unwrap();

    let mut admin = common::pooler_conn(&url.replace("/small", "/pgbouncer")).await;
    set_query_wait_timeout(&mut admin, 1).await;
    // Every server connection of the entry (4) held by an open transaction.
    let held = common::hold_server_connections(&url, 4).await;
    let res = s.execute_sql("SELECT 1 AS n", &[]).await;
    common::end_held(held).await;
    set_query_wait_timeout(&mut admin, 120).await;

    let err = res.unwrap_err();
    assert!(matches!(err, Error::TooManyConnections { .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::TooManyConnections);
    let text = err.to_string();
    assert!(text.contains("query_wait_timeout"), "{text}");
    assert!(text.contains("could not reach the server"), "{text}");
    assert!(!text.contains("put a pooler"), "{text}");

    // The pool is free again: a new session works.
    let mut s = db.session();
    s.create().await.unwrap();
    s.execute_sql("SELECT 1 AS n", &[]).await.unwrap();
}

#[tokio::test]
async fn a_query_queued_past_the_poolers_notice_runs_once_a_connection_frees() {
    let Some(url) = common::pgbouncer("PGBOUNCER_CURRENT_SMALL_URL") else {
        return;
    };
    let _one_at_a_time = SMALL_ENTRY.lock().await;
    // sqlx logs each NOTICE (target `sqlx::postgres::notice`); the test's runtime runs
    // every future on this thread, so a thread-local subscriber sees it.
    let log = common::Captured::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("sqlx::postgres::notice=info")
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _logging = tracing::subscriber::set_default(subscriber);

    let db = Database::open(&url).await.unwrap();
    let pool = common::fixed_pool(&db, 1).await;
    let mut admin = common::pooler_conn(&url.replace("/small", "/pgbouncer")).await;
    common::pooler_set(&mut admin, "query_wait_notify", 1).await;
    let held = common::hold_server_connections(&url, 4).await;
    // Queued for longer than `query_wait_notify` (whole seconds, "more than" 1), then
    // served.
    let (res, ()) = tokio::join!(
        async {
            let mut s = pool.session().await?;
            let n = s
                .execute_sql("SELECT 7 AS n", &[])
                .await?
                .one()?
                .get::<i64>("n")?;
            Ok::<_, Error>((n, s.session_id().map(str::to_owned)))
        },
        async {
            tokio::time::sleep(Duration::from_secs(4)).await;
            common::end_held(held).await;
        }
    );
    common::pooler_set(&mut admin, "query_wait_notify", 5).await;

    let (n, queued) = res.unwrap();
    assert_eq!(n, 7);
    let logged = log.text();
    assert!(
        logged.contains("client being queued"),
        "no NOTICE logged: {logged:?}"
    );
    // The session that took the NOTICE stays in the pool (of one) and works.
    let mut s = pool.session().await.unwrap();
    assert_eq!(s.session_id().map(str::to_owned), queued);
    assert_eq!(common::scalar::<i64>(&mut *s, "SELECT 8", &[]).await, 8);
    drop(s);
    let stats = pool.stats();
    assert_eq!((stats.created, stats.replaced), (1, 0), "{stats:?}");
}

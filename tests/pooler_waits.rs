//! A query a transaction pooler cannot give a server connection: PgBouncer ends the client
//! connection after its `query_wait_timeout`, and the error says what that wait means
//! (the pool held by other transactions, or the server out of reach), not that this
//! client opened too many connections. Against the PgBouncer 1.24.1 `scripts/test` builds,
//! its `query_wait_timeout` lowered to 1 s from its admin console for the test's length.
mod common;

use session_pool::prelude::*;
use session_pool::{Database, Error, ErrorKind};

async fn set_query_wait_timeout(admin: &mut sqlx::PgConnection, seconds: u32) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "SET query_wait_timeout = {seconds}"
    )))
    .execute(admin)
    .await
    .unwrap();
}

#[tokio::test]
async fn a_query_that_waited_out_the_pooler_says_why() {
    let Some(url) = common::pgbouncer("PGBOUNCER_CURRENT_SMALL_URL") else {
        return;
    };
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

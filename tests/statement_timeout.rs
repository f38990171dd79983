//! Statement timeouts: per call (`with_timeout`) and database-wide, cancelled on the server
//! (PostgreSQL: a cancel for the backend; SQLite: an interrupt), the session still usable.
mod common;

use std::time::{Duration, Instant};

use session_pool::prelude::*;
use session_pool::{Database, Error, ErrorKind};

/// A statement that runs far longer than any timeout below.
fn slow_sql(db: &Database) -> &'static str {
    common::by_dialect(
        db,
        // Counts forever: only an interrupt ends it.
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) \
         SELECT count(*) AS n FROM c",
        "SELECT pg_sleep(30)",
    )
}

fn assert_cancelled<T: std::fmt::Debug>(res: &session_pool::Result<T>, timeout: Duration) {
    match res {
        Err(Error::StatementTimeout {
            timeout: t,
            session_lost: false,
        }) => assert_eq!(*t, timeout),
        other => panic!("expected a cancelled statement, got {other:?}"),
    }
}

async fn a_per_call_timeout_cancels_the_statement(db: Database) {
    let mut s = db.session();
    s.create().await.unwrap();
    let pid = s.backend_pid();
    let timeout = Duration::from_millis(200);
    let start = Instant::now();
    let res = s
        .with_timeout(timeout)
        .execute_sql(slow_sql(&db), &[])
        .await;
    assert_cancelled(&res, timeout);
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    // The same connection goes on.
    assert!(!s.is_broken());
    assert_eq!(s.backend_pid(), pid);
    let rs = s.execute_sql("SELECT 7 AS n", &[]).await.unwrap();
    assert_eq!(rs.one().unwrap().get::<i64>("n").unwrap(), 7);
    // A stream too, with nothing but the per-call timeout to stop it.
    {
        use futures_util::StreamExt;
        let start = Instant::now();
        let first = s
            .with_timeout(timeout)
            .execute_sql_stream(slow_sql(&db), &[])
            .next()
            .await;
        match first {
            Some(Err(Error::StatementTimeout {
                session_lost: false,
                ..
            })) => {}
            other => panic!("expected a cancelled stream, got {other:?}"),
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(s.backend_pid(), pid);
    }
    // A fast statement under a timeout is untouched.
    let rs = s
        .with_timeout(timeout)
        .execute_sql("SELECT 8 AS n", &[])
        .await
        .unwrap();
    assert_eq!(rs.one().unwrap().get::<i64>("n").unwrap(), 8);
    // And the timeout does not outlive its call.
    let rs = s
        .execute_sql(
            common::by_dialect(
                &db,
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000) \
                 SELECT count(*) AS n FROM c",
                "SELECT count(*) AS n FROM pg_sleep(0.4)",
            ),
            &[],
        )
        .await
        .unwrap();
    assert!(rs.one().unwrap().get::<i64>("n").unwrap() > 0);
}

async fn a_database_wide_timeout_cancels_every_statement(db: Database) {
    let timeout = Duration::from_millis(200);
    let db = reopen_with_timeout(&db, timeout).await;
    let mut s = db.session();
    s.create().await.unwrap();
    let res = s.execute_sql(slow_sql(&db), &[]).await;
    assert_cancelled(&res, timeout);
    s.execute_sql("SELECT 1", &[]).await.unwrap();
    // Inside a transaction too; the transaction is then over, the session fine.
    let mut tx = s.transaction().await.unwrap();
    let res = tx.execute_sql(slow_sql(&db), &[]).await;
    assert_cancelled(&res, timeout);
    drop(tx);
    s.execute_sql("SELECT 1", &[]).await.unwrap();
    // With a per-call timeout too, the shorter applies.
    let shorter = Duration::from_millis(100);
    let res = s
        .with_timeout(shorter)
        .execute_sql(slow_sql(&db), &[])
        .await;
    assert_cancelled(&res, shorter);
    let res = s
        .with_timeout(Duration::from_secs(10))
        .execute_sql(slow_sql(&db), &[])
        .await;
    assert_cancelled(&res, timeout);
    s.execute_sql("SELECT 1", &[]).await.unwrap();
}

async fn a_stream_is_bounded_too(db: Database) {
    use futures_util::StreamExt;
    let timeout = Duration::from_millis(200);
    let db = reopen_with_timeout(&db, timeout).await;
    let mut s = db.session();
    s.create().await.unwrap();
    let sql = slow_sql(&db);
    let first = s.execute_sql_stream(sql, &[]).next().await;
    match first {
        Some(Err(Error::StatementTimeout { .. })) => {}
        other => panic!("expected a timeout, got {other:?}"),
    }
    s.execute_sql("SELECT 1", &[]).await.unwrap();
    // A per-call timeout (shorter than the database-wide one) bounds a stream too.
    let shorter = Duration::from_millis(100);
    let first = s
        .with_timeout(shorter)
        .execute_sql_stream(sql, &[])
        .next()
        .await;
    match first {
        Some(Err(Error::StatementTimeout {
            timeout,
            session_lost: false,
        })) => assert_eq!(timeout, shorter),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(!s.is_broken());
    s.execute_sql("SELECT 1", &[]).await.unwrap();
}

async fn reopen_with_timeout(db: &Database, timeout: Duration) -> Database {
    let url = match db.dialect() {
        session_pool::Dialect::Postgres => common::pg_url().unwrap(),
        _ => db.name().to_owned(),
    };
    session_pool::DatabaseOptions::new(url)
        .statement_timeout(timeout)
        .open()
        .await
        .unwrap()
}

/// A statement of a transaction past its timeout: PostgreSQL's cancel aborts the
/// transaction as any error does, so a `commit` after the timeout was handled reports the
/// rollback (`Error::RolledBack`, SQLSTATE 57014) rather than pass it off as a commit.
/// SQLite's interrupt stops a query and leaves the transaction as it was: it commits.
async fn a_timeout_inside_a_transaction_fails_its_commit(db: Database) {
    let name = common::counter_table(&db, "timeout_tx").await;
    let mut s = db.session();
    s.create().await.unwrap();
    let timeout = Duration::from_millis(200);
    let mut tx = s.transaction().await.unwrap();
    tx.execute_update(&format!("UPDATE {name} SET n = n + 1 WHERE id = 1"), &[])
        .await
        .unwrap();
    let res = tx
        .with_timeout(timeout)
        .execute_sql(slow_sql(&db), &[])
        .await;
    assert_cancelled(&res, timeout);
    let committed = tx.commit().await;
    let postgres = db.dialect() == session_pool::Dialect::Postgres;
    if postgres {
        match &committed {
            Err(e @ Error::RolledBack { .. }) => assert_eq!(e.code(), Some("57014")),
            other => panic!("expected the rollback reported, got {other:?}"),
        }
    } else {
        committed.unwrap();
    }
    let n: i64 = common::scalar(&mut s, &format!("SELECT n FROM {name} WHERE id = 1"), &[]).await;
    assert_eq!(n, if postgres { 0 } else { 1 });
}

on_both!(
    a_timeout_inside_a_transaction_fails_its_commit,
    a_per_call_timeout_cancels_the_statement,
    a_database_wide_timeout_cancels_every_statement,
    a_stream_is_bounded_too,
);

/// A role's or database's own `statement_timeout`, which the crate did not set: the error
/// keeps the server's code, is of the statement-timeout kind, and the session lives on.
#[tokio::test]
async fn the_servers_own_statement_timeout_is_of_the_statement_timeout_kind() {
    let Some(url) = common::pg_url() else {
        return;
    };
    let url = common::with_server_setting(&url, "statement_timeout", "200");
    let db = Database::open(&url).await.unwrap();
    let mut s = db.session();
    s.create().await.unwrap();
    let err = s.execute_sql(slow_sql(&db), &[]).await.unwrap_err();

    assert_eq!(err.kind(), ErrorKind::StatementTimeout, "{err:?}");
    assert_eq!(err.code(), Some("57014"));
    assert_eq!(common::scalar::<i32>(&mut s, "SELECT 1", &[]).await, 1);
}

/// A statement cancelled from outside (`pg_cancel_backend`) has the same SQLSTATE, but is
/// no timeout.
#[tokio::test]
async fn a_cancel_from_outside_is_not_a_timeout() {
    let Some(db) = common::postgres().await else {
        return;
    };
    let mut admin = common::pg_admin().await.unwrap();
    let mut s = db.session();
    s.create().await.unwrap();
    let pid = s.backend_pid().unwrap();
    let cancel = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let sql = "SELECT pg_cancel_backend($1::int)";
        admin
            .execute_sql(sql, &session_pool::params![pid])
            .await
            .unwrap();
    };
    let (res, ()) = tokio::join!(s.execute_sql(slow_sql(&db), &[]), cancel);
    let err = res.unwrap_err();

    assert_eq!(err.code(), Some("57014"), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Database, "{err:?}");
}

//! Errors in their right classes: a refused statement leaves the session in the pool, a
//! wrong parameter count on SQLite is refused before it writes NULL, too many connections
//! and an unknown commit outcome have variants of their own, and a bind that fails
//! part-way closes what it opened.
mod common;

use std::time::Duration;

use session_pool::prelude::*;
use session_pool::{Database, Error, ErrorKind, FixedSizePool, params};

fn assert_invalid_statement<T: std::fmt::Debug>(res: session_pool::Result<T>, code: Option<&str>) {
    match res {
        Err(e @ Error::InvalidStatement { .. }) => {
            assert_eq!(e.kind(), ErrorKind::InvalidArgument);
            assert_eq!(e.code(), code, "{e}");
        }
        other => panic!("expected an invalid statement, got {other:?}"),
    }
}

async fn a_nul_in_sql_is_refused_before_sending(db: Database) {
    let pool = common::fixed_pool(&db, 1).await;
    let mut s = pool.session().await.unwrap();
    assert_invalid_statement(s.execute_sql("SELECT 1\0; SELECT 2", &[]).await, None);
    assert_invalid_statement(s.execute_update("SELECT 1\0", &[]).await, None);
    assert!(!s.is_broken());
    s.execute_sql("SELECT 1", &[]).await.unwrap();
}

async fn a_wrong_parameter_count_keeps_the_session(db: Database) {
    let name = common::unique("arity");
    let pool = common::fixed_pool(&db, 1).await;
    let mut s = pool.session().await.unwrap();
    s.execute_update(
        &format!("CREATE TABLE {name} (id BIGINT PRIMARY KEY, a TEXT)"),
        &[],
    )
    .await
    .unwrap();
    s.execute_update(&format!("INSERT INTO {name} VALUES (1, 'kept')"), &[])
        .await
        .unwrap();
    let pid = s.backend_pid();
    let update = format!("UPDATE {name} SET a = $1 WHERE id = $2");
    // Too few or too many: refused before sending (SQLite would bind NULL; PostgreSQL
    // answered according to sqlx's statement cache, or not at all behind a pooler).
    let code = None;
    assert_invalid_statement(s.execute_update(&update, &params!["lost"]).await, code);
    assert_invalid_statement(
        s.execute_update(&update, &params!["x", 1, "extra"]).await,
        code,
    );
    assert_invalid_statement(
        s.execute_sql(&format!("SELECT a FROM {name} WHERE id = $1"), &[])
            .await,
        code,
    );
    // Nothing was written, and the same connection goes on.
    assert!(!s.is_broken());
    assert_eq!(s.backend_pid(), pid);
    let rs = s
        .execute_sql(&format!("SELECT a FROM {name} WHERE id = $1"), &params![1])
        .await
        .unwrap();
    assert_eq!(rs.one().unwrap().get::<String>("a").unwrap(), "kept");
    drop(s);
    assert_eq!(pool.stats().replaced, 0, "the session stayed in the pool");
}

on_both!(
    a_nul_in_sql_is_refused_before_sending,
    a_wrong_parameter_count_keeps_the_session,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_completion_unknown_has_its_own_variant() {
    let Some(db) = common::postgres().await else {
        return;
    };
    let mut s = db.session();
    s.create().await.unwrap();
    let res = s
        .execute_update(
            "DO $$ BEGIN RAISE EXCEPTION 'result is ambiguous' USING ERRCODE = '40003'; END $$",
            &[],
        )
        .await;
    match res {
        Err(e @ Error::CommitUnknown { .. }) => {
            assert_eq!(e.kind(), ErrorKind::CommitUnknown);
            assert!(e.to_string().contains("may have been applied"), "{e}");
        }
        other => panic!("expected CommitUnknown, got {other:?}"),
    }
    s.execute_sql("SELECT 1", &[]).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_connections_is_typed_and_a_failed_bind_closes_what_it_opened() {
    let Some(mut admin) = common::pg_admin().await else {
        return;
    };
    let role = common::unique("limited");
    admin
        .execute_update(&format!("CREATE ROLE {role} LOGIN CONNECTION LIMIT 2"), &[])
        .await
        .unwrap();
    let url = common::as_user(&common::pg_url().unwrap(), &role);
    let db = Database::open(&url).await.unwrap();
    let count = async |admin: &mut session_pool::Session| {
        admin
            .execute_sql(
                "SELECT count(*) AS n FROM pg_stat_activity WHERE usename = $1",
                &params![role.as_str()],
            )
            .await
            .unwrap()
            .one()
            .unwrap()
            .get::<i64>("n")
            .unwrap()
    };
    // The probe connection of `open` is gone before the pool starts.
    for _ in 0..100 {
        if count(&mut admin).await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let res = FixedSizePool::builder().size(4).build(&db).await;
    match res {
        Err(e @ Error::TooManyConnections { .. }) => {
            assert_eq!(e.kind(), ErrorKind::TooManyConnections);
            assert!(e.to_string().contains("lower the pool sizes"), "{e}");
        }
        other => panic!("expected TooManyConnections, got {other:?}"),
    }
    // The two sessions that were made are closed again.
    let mut left = -1;
    for _ in 0..100 {
        left = count(&mut admin).await;
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(left, 0, "a failed bind kept connections open");

    // A single session past the limit is typed the same way.
    let mut a = db.session();
    a.create().await.unwrap();
    let mut b = db.session();
    b.create().await.unwrap();
    let mut c = db.session();
    assert!(matches!(
        c.create().await,
        Err(Error::TooManyConnections { .. })
    ));
    drop((a, b));
    admin
        .execute_update(&format!("DROP ROLE {role}"), &[])
        .await
        .ok();
}

//! A transaction abandoned half-way (its task aborted, or panicking) on an otherwise idle
//! pool: the pool rolls it back at once, so another writer gets the row lock within its
//! lock timeout instead of waiting for the session's next use.
mod common;

use std::time::Duration;

use session_pool::prelude::*;
use session_pool::{Database, DatabaseOptions, Dialect, Error, FixedSizePool, params};

/// How the transaction is abandoned.
#[derive(Clone, Copy, Debug)]
enum Abandon {
    Abort,
    Panic,
}

/// Takes the row lock in a transaction on a pool session, then abandons it.
async fn abandon_a_locking_transaction(pool: &FixedSizePool, name: &str, how: Abandon) {
    let (locked, is_locked) = tokio::sync::oneshot::channel::<()>();
    let (pool, name) = (pool.clone(), name.to_owned());
    let task = tokio::spawn(async move {
        let mut s = pool.session().await.unwrap();
        let locked = std::sync::Mutex::new(Some(locked));
        let update = format!("UPDATE {name} SET n = n + 1 WHERE id = 1");
        let _ = s
            .run_in_transaction(async move |tx| {
                tx.execute_update(&update, &[]).await?;
                let l = locked.lock().unwrap().take();
                if let Some(l) = l {
                    let _ = l.send(());
                }
                match how {
                    Abandon::Abort => std::future::pending::<()>().await,
                    Abandon::Panic => panic!("application bug inside the transaction"),
                }
                Ok::<_, Error>(())
            })
            .await;
    });
    is_locked.await.expect("the transaction took the lock");
    if matches!(how, Abandon::Abort) {
        task.abort();
    }
    let _ = task.await;
}

/// Another writer, outside the pool, with a lock wait of 3 s.
async fn other_writer(db: &Database) -> session_pool::Session {
    let other = match db.dialect() {
        Dialect::Postgres => DatabaseOptions::new(common::pg_url().unwrap()),
        _ => DatabaseOptions::new(db.name()).sqlite_busy_timeout(Duration::from_secs(3)),
    }
    .open()
    .await
    .unwrap();
    let mut s = other.session();
    s.create().await.unwrap();
    if db.dialect() == Dialect::Postgres {
        s.execute_update("SET lock_timeout = '3s'", &[])
            .await
            .unwrap();
    }
    s
}

async fn check(db: Database, how: Abandon) {
    let name = common::counter_table(&db, "abandoned").await;
    let pool = common::fixed_pool(&db, 2).await;
    abandon_a_locking_transaction(&pool, &name, how).await;

    // Nothing else touches the pool: only its own janitor can release the lock.
    let mut writer = other_writer(&db).await;
    let res = writer
        .execute_update(&format!("UPDATE {name} SET n = 100 WHERE id = 1"), &[])
        .await;
    assert!(
        res.is_ok(),
        "the abandoned transaction still held the row lock: {res:?}"
    );
    let rs = writer
        .execute_sql(&format!("SELECT n FROM {name} WHERE id = $1"), &params![1])
        .await
        .unwrap();
    assert_eq!(rs.one().unwrap().get::<i64>("n").unwrap(), 100);

    // The session came back to the pool, rolled back and usable.
    for _ in 0..200 {
        if pool.stats().idle == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stats = pool.stats();
    assert_eq!(
        (stats.open, stats.idle, stats.in_use),
        (2, 2, 0),
        "{stats:?}"
    );
    for _ in 0..2 {
        let mut s = pool.session().await.unwrap();
        s.execute_update(&format!("UPDATE {name} SET n = n + 1 WHERE id = 1"), &[])
            .await
            .unwrap();
    }
}

async fn an_aborted_task_releases_its_locks(db: Database) {
    check(db, Abandon::Abort).await
}

async fn a_panicking_task_releases_its_locks(db: Database) {
    check(db, Abandon::Panic).await
}

on_both!(
    an_aborted_task_releases_its_locks,
    a_panicking_task_releases_its_locks,
);

/// On PostgreSQL, the backend is out of its transaction right away, not just unblocked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backend_is_not_left_idle_in_transaction() {
    let Some((db, app)) = common::postgres_tagged("abandoned").await else {
        return;
    };
    let name = common::counter_table(&db, "abandoned").await;
    let pool = common::fixed_pool(&db, 1).await;
    abandon_a_locking_transaction(&pool, &name, Abandon::Abort).await;
    let mut admin = common::pg_admin().await.unwrap();
    let mut state = String::new();
    for _ in 0..100 {
        let rs = admin
            .execute_sql(
                "SELECT state FROM pg_stat_activity WHERE application_name = $1",
                &params![app.as_str()],
            )
            .await
            .unwrap();
        state = rs.one().unwrap().get::<String>("state").unwrap();
        if state == "idle" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the pool's backend stayed `{state}`");
}

//! A statement cut off while it runs: its future or stream dropped half-way, as a request
//! timeout or a client gone away does. Dropping sends nothing, so before this was handled
//! the statement ran on: its transaction's row locks (PostgreSQL) or the write lock
//! (SQLite) stayed held until it ended by itself (30 s of `pg_sleep` here), and the
//! session went back to the pool idle while still busy, so the next user waited for it.
//! Now the pool's janitor (or the session's next use) cancels it, by backend pid, through
//! a transaction pooler by the mark at the head of its text, or with SQLite's interrupt,
//! and rolls the transaction back.
//!
//! `scripts/test` runs this file directly, and again through both PgBouncers in
//! transaction mode (declared, and found).
mod common;

use std::time::Duration;

use futures_util::StreamExt;
use session_pool::prelude::*;
use session_pool::{Database, DatabaseOptions, Dialect, Error, FixedSizePool, Session, params};

/// Taken by each case for its whole run. Through a transaction pooler with four server
/// connections (scripts/test's small entry), two cases at once hold all four (two cut-off
/// statements, two writers waiting on their locks), and the cancels, queries there, queue
/// behind the writers until those give up: the limit the README states. One at a time,
/// a case needs three.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Where the cut falls: the statement has been running this long.
const CUT: Duration = Duration::from_millis(300);
/// How long the other writer waits for the lock, and the next user for a session: far
/// less than the cut-off statement would run by itself.
const PATIENCE: Duration = Duration::from_secs(3);

/// A statement that runs for a long time unless stopped: 30 s of sleep on PostgreSQL, a
/// long count on SQLite.
fn slow_query(db: &Database) -> &'static str {
    match db.dialect() {
        Dialect::Postgres => "SELECT pg_sleep(30) IS NOT NULL AS slept",
        _ => {
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c \
             WHERE x < 2000000000) SELECT count(*) > 0 AS slept FROM c"
        }
    }
}

/// Another writer, outside the pool, updating the row within `PATIENCE` of lock wait.
async fn other_writer_updates(db: &Database, name: &str) -> Result<u64, Error> {
    let other = match db.dialect() {
        Dialect::Postgres => DatabaseOptions::new(common::pg_url().unwrap()),
        _ => DatabaseOptions::new(db.name()).sqlite_busy_timeout(PATIENCE),
    }
    .open()
    .await
    .unwrap();
    let mut s = other.session();
    s.create().await.unwrap();
    let mut tx = s.transaction().await?;
    if db.dialect() == Dialect::Postgres {
        // Local to the transaction: through a pooler a session-wide SET would stay on a
        // shared server connection.
        tx.execute_update(
            &format!("SET LOCAL lock_timeout = '{}s'", PATIENCE.as_secs()),
            &[],
        )
        .await?;
    }
    let n = tx
        .execute_update(&format!("UPDATE {name} SET n = 100 WHERE id = 1"), &[])
        .await?;
    tx.commit().await?;
    Ok(n)
}

async fn value(db: &Database, name: &str) -> i64 {
    let mut s = db.session();
    s.create().await.unwrap();
    let rs = s
        .execute_sql(&format!("SELECT n FROM {name} WHERE id = $1"), &params![1])
        .await
        .unwrap();
    rs.one().unwrap().get::<i64>("n").unwrap()
}

/// The pool's one session serves the next user within `PATIENCE`.
async fn next_user_is_served(pool: &FixedSizePool) {
    let next = tokio::time::timeout(PATIENCE, async {
        let mut s = pool.session().await?;
        s.execute_sql("SELECT 1 AS one", &[]).await
    })
    .await;
    assert!(
        matches!(next, Ok(Ok(_))),
        "the next user waited for the cut-off statement: {next:?}"
    );
}

/// On `s`: a transaction in the caller's hands updates the row, then runs `slow`; all is
/// cut off at `CUT`, the transaction dropped with the statement.
async fn cut_off_in_a_transaction(s: &mut Session, name: &str, slow: &str) {
    let cut = tokio::time::timeout(CUT, async {
        let mut tx = s.transaction().await?;
        tx.execute_update(&format!("UPDATE {name} SET n = n + 1 WHERE id = 1"), &[])
            .await?;
        tx.execute_sql(slow, &[]).await?;
        tx.commit().await
    })
    .await;
    assert!(cut.is_err(), "the slow statement was not cut off: {cut:?}");
}

/// A transaction that took a row lock, cut off while its next statement runs.
async fn a_transaction_cut_off_mid_statement_releases_its_locks(db: Database) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let name = common::counter_table(&db, "cutoff").await;
    let pool = common::fixed_pool(&db, 1).await;
    let (update, slow) = (
        format!("UPDATE {name} SET n = n + 1 WHERE id = 1"),
        slow_query(&db),
    );
    let mut s = pool.session().await.unwrap();
    let cut = tokio::time::timeout(
        CUT,
        s.run_in_transaction(async |tx| {
            tx.execute_update(&update, &[]).await?;
            tx.execute_sql(slow, &[]).await?;
            Ok::<_, Error>(())
        }),
    )
    .await;
    assert!(cut.is_err(), "the slow statement was not cut off: {cut:?}");
    drop(s);

    let res = other_writer_updates(&db, &name).await;
    assert!(
        matches!(res, Ok(1)),
        "the cut-off transaction still held the row lock: {res:?}"
    );
    assert_eq!(value(&db, &name).await, 100);
    next_user_is_served(&pool).await;
    let stats = pool.stats();
    assert_eq!((stats.open, stats.replaced), (1, 0), "{stats:?}");
}

/// The same with the transaction in the caller's hands, dropped with the statement.
async fn a_dropped_transaction_cut_off_mid_statement_releases_its_locks(db: Database) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let name = common::counter_table(&db, "cutoff").await;
    let pool = common::fixed_pool(&db, 1).await;
    let slow = slow_query(&db);
    let mut s = pool.session().await.unwrap();
    cut_off_in_a_transaction(&mut s, &name, slow).await;
    drop(s);

    let res = other_writer_updates(&db, &name).await;
    assert!(
        matches!(res, Ok(1)),
        "the cut-off transaction still held the row lock: {res:?}"
    );
    next_user_is_served(&pool).await;
}

/// A statement outside any transaction, cut off: stopped before it changed anything
/// (it would have after its slow part), and the next user is served at once.
async fn a_statement_cut_off_outside_a_transaction_is_stopped(db: Database) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let name = common::counter_table(&db, "cutoff").await;
    let pool = common::fixed_pool(&db, 1).await;
    let slow = slow_query(&db);
    let update = format!(
        "UPDATE {name} SET n = n + 1 WHERE id = 1 AND ({})",
        slow.replace(" AS slept", "")
    );
    let mut s = pool.session().await.unwrap();
    let cut = tokio::time::timeout(CUT, s.execute_update(&update, &[])).await;
    assert!(cut.is_err(), "the slow statement was not cut off: {cut:?}");
    drop(s);
    next_user_is_served(&pool).await;
    // Stopped, not left to run: no backend runs it any more (PostgreSQL), the write lock
    // it held is free (SQLite), and it changed nothing.
    if db.dialect() == Dialect::Postgres {
        assert_eq!(
            running(&db, &name).await,
            0,
            "the cut-off statement still runs"
        );
    } else {
        let res = other_writer_updates(&db, &name).await;
        assert!(matches!(res, Ok(1)), "{res:?}");
        return;
    }
    assert_eq!(value(&db, &name).await, 0);
    assert_eq!(pool.stats().replaced, 0, "{:?}", pool.stats());
}

/// How many backends are running a statement on table `name` (PostgreSQL).
async fn running(db: &Database, name: &str) -> i64 {
    let mut s = db.session();
    s.create().await.unwrap();
    let rs = s
        .execute_sql(
            "SELECT count(*) AS n FROM pg_stat_activity WHERE state = 'active' \
             AND pid <> pg_backend_pid() AND position($1 in query) > 0",
            &params![name],
        )
        .await
        .unwrap();
    rs.one().unwrap().get::<i64>("n").unwrap()
}

/// A session outside any pool settles at its own next use.
async fn a_session_settles_a_cut_off_statement_at_its_next_use(db: Database) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let name = common::counter_table(&db, "cutoff").await;
    let slow = slow_query(&db);
    let mut s = db.session();
    s.create().await.unwrap();
    cut_off_in_a_transaction(&mut s, &name, slow).await;
    let next = tokio::time::timeout(PATIENCE, s.execute_sql("SELECT 1 AS one", &[])).await;
    assert!(matches!(next, Ok(Ok(_))), "{next:?}");
    let res = other_writer_updates(&db, &name).await;
    assert!(matches!(res, Ok(1)), "{res:?}");
}

/// A stream dropped before its end: its statement is stopped too.
async fn a_stream_dropped_half_way_is_stopped(db: Database) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let mut s = db.session();
    s.create().await.unwrap();
    // SQLite sends its first row at once and then counts; PostgreSQL sends nothing before
    // the sleeps are over, so the stream is dropped while it waits.
    let sql = match db.dialect() {
        Dialect::Postgres => format!("SELECT g FROM generate_series(1, 2) AS g WHERE ({})", {
            slow_query(&db).replace(" AS slept", "")
        }),
        _ => "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c \
              WHERE x < 2000000000) SELECT x FROM c WHERE x = 1 OR x = 2000000000"
            .to_owned(),
    };
    {
        let mut rows = s.execute_sql_stream(&sql, &[]);
        let first = tokio::time::timeout(CUT, rows.next()).await;
        if db.dialect() == Dialect::Sqlite {
            assert!(matches!(first, Ok(Some(Ok(_)))), "{first:?}");
            let second = tokio::time::timeout(CUT, rows.next()).await;
            assert!(second.is_err(), "the count ended: {second:?}");
        } else {
            assert!(first.is_err(), "{first:?}");
        }
    }
    let next = tokio::time::timeout(PATIENCE, s.execute_sql("SELECT 1 AS one", &[])).await;
    assert!(
        matches!(next, Ok(Ok(_))),
        "the next use waited for the dropped stream's statement: {next:?}"
    );
}

/// A COMMIT cut off while it waits: here a deferred unique check waiting for another
/// transaction that holds the same key uncommitted. It is cancelled, so the row lock its
/// transaction took goes with it, and nothing it wrote is committed. (PostgreSQL: SQLite's
/// COMMIT has nothing to wait for once `BEGIN IMMEDIATE` holds the write lock.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_cut_off_while_it_waits_releases_its_locks() {
    let Some(db) = common::postgres().await else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let name = common::counter_table(&db, "cutoff").await;
    let keys = format!("{name}_keys");
    let mut setup = db.session();
    setup.create().await.unwrap();
    setup
        .execute_update(
            &format!("CREATE TABLE {keys} (k BIGINT UNIQUE DEFERRABLE INITIALLY DEFERRED)"),
            &[],
        )
        .await
        .unwrap();
    let insert = format!("INSERT INTO {keys} VALUES (1)");
    let mut holder = db.session();
    holder.create().await.unwrap();
    let mut held = holder.transaction().await.unwrap();
    held.execute_update(&insert, &[]).await.unwrap();

    let pool = common::fixed_pool(&db, 1).await;
    let mut s = pool.session().await.unwrap();
    // The key is checked at COMMIT (deferred), which then waits for the holder.
    common::cut_off_at_commit(&mut s, &name, &[&insert], CUT).await;
    drop(s);

    let res = other_writer_updates(&db, &name).await;
    assert!(
        matches!(res, Ok(1)),
        "the cut-off COMMIT still held the row lock: {res:?}"
    );
    held.rollback().await.unwrap();
    assert_eq!(value(&db, &name).await, 100);
    let n: i64 = common::scalar(&mut setup, &format!("SELECT count(*) FROM {keys}"), &[]).await;
    assert_eq!(n, 0, "the cancelled COMMIT committed its key");
    next_user_is_served(&pool).await;
    let stats = pool.stats();
    assert_eq!((stats.open, stats.replaced), (1, 0), "{stats:?}");
}

on_both!(
    a_transaction_cut_off_mid_statement_releases_its_locks,
    a_dropped_transaction_cut_off_mid_statement_releases_its_locks,
    a_statement_cut_off_outside_a_transaction_is_stopped,
    a_session_settles_a_cut_off_statement_at_its_next_use,
    a_stream_dropped_half_way_is_stopped,
);

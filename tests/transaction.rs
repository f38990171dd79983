//! Transactions and snapshots: DML, batch DML, buffered mutations, commit, rollback, drop.
mod common;

use futures_util::StreamExt;
use session_pool::prelude::*;
use session_pool::{Database, Dialect, ErrorKind, KeySet, Session, params};

async fn table(db: &Database) -> (Session, String) {
    let t = common::unique("tx");
    let mut s = db.session();
    s.create().await.unwrap();
    s.execute_update(
        &format!("CREATE TABLE {t} (id BIGINT PRIMARY KEY, v BIGINT NOT NULL)"),
        &[],
    )
    .await
    .unwrap();
    (s, t)
}

/// Inserts row (`id`, `v`) into `t` through `ctx` (a session or a transaction).
async fn insert(
    ctx: &mut impl WriteContext,
    t: &str,
    id: i64,
    v: i64,
) -> session_pool::Result<u64> {
    ctx.execute_update(&format!("INSERT INTO {t} VALUES ($1, $2)"), &params![id, v])
        .await
}

async fn count(s: &mut Session, t: &str) -> i64 {
    let rs = s
        .execute_sql(&format!("SELECT count(*) AS n FROM {t}"), &[])
        .await
        .unwrap();
    rs.one().unwrap().get("n").unwrap()
}

async fn commit_applies_dml_and_mutations(db: Database) {
    let (mut s, t) = table(&db).await;
    let mut tx = s.transaction().await.unwrap();
    let n = tx
        .execute_update(&format!("INSERT INTO {t} VALUES ($1, $2)"), &params![1, 10])
        .await
        .unwrap();
    assert_eq!(n, 1);
    let counts = tx
        .batch_update(&[
            (
                format!("INSERT INTO {t} VALUES (2, 20), (3, 30)"),
                params![],
            ),
            (
                format!("UPDATE {t} SET v = v + 1 WHERE id >= $1"),
                params![2],
            ),
        ])
        .await
        .unwrap();
    assert_eq!(counts, [2, 2]);
    tx.insert(&t, &["id", "v"], vec![params![4, 40]]).unwrap();
    // Buffered mutations are not applied before commit.
    let seen = tx
        .read(&t, &["id"], &KeySet::keys([[4]]), None, 0)
        .await
        .unwrap();
    assert!(seen.is_empty());
    let rows: Vec<i64> = tx
        .execute_sql_stream(&format!("SELECT v FROM {t} ORDER BY id"), &[])
        .map(|r| r.unwrap().get::<i64>(0).unwrap())
        .collect()
        .await;
    assert_eq!(rows, [10, 21, 31]);
    tx.commit().await.unwrap();
    assert_eq!(count(&mut s, &t).await, 4);
}

async fn rollback_and_drop_discard_everything(db: Database) {
    let (mut s, t) = table(&db).await;
    let mut tx = s.transaction().await.unwrap();
    insert(&mut tx, &t, 1, 1).await.unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(count(&mut s, &t).await, 0);

    // Dropped without commit: rolled back, and the session works at once.
    {
        let mut tx = s.transaction().await.unwrap();
        insert(&mut tx, &t, 2, 2).await.unwrap();
        tx.insert(&t, &["id", "v"], vec![params![3, 3]]).unwrap();
    }
    assert_eq!(count(&mut s, &t).await, 0);
    assert!(!s.is_broken());

    // Another session can write: no lock was left behind.
    let mut other = db.session();
    other.create().await.unwrap();
    other
        .execute_update(&format!("INSERT INTO {t} VALUES (4, 4)"), &[])
        .await
        .unwrap();
    assert_eq!(count(&mut s, &t).await, 1);
}

async fn cancelled_transaction_future_leaves_the_session_clean(db: Database) {
    let (mut s, t) = table(&db).await;
    for step in 0..4u32 {
        // Give each attempt a deadline that cuts it off at a different point.
        let fut = async {
            let mut tx = s.transaction().await.unwrap();
            insert(&mut tx, &t, step.into(), 1).await.unwrap();
            tokio::time::sleep(std::time::Duration::from_secs(10)).await;
            tx.commit().await.unwrap();
        };
        let cut = std::time::Duration::from_micros(50 * u64::from(step));
        let _ = tokio::time::timeout(cut, fut).await;
    }
    assert_eq!(
        count(&mut s, &t).await,
        0,
        "no cut-off transaction committed"
    );
    let mut tx = s.transaction().await.unwrap();
    insert(&mut tx, &t, 9, 9).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(count(&mut s, &t).await, 1);
}

async fn snapshot_sees_one_state(db: Database) {
    let (mut s, t) = table(&db).await;
    insert(&mut s, &t, 1, 1).await.unwrap();
    let mut writer = db.session();
    writer.create().await.unwrap();

    let mut snap = s.snapshot().await.unwrap();
    let first = snap
        .read(&t, &["v"], &KeySet::all(), None, 0)
        .await
        .unwrap();
    writer
        .execute_update(&format!("UPDATE {t} SET v = 2"), &[])
        .await
        .unwrap();
    writer
        .execute_update(&format!("INSERT INTO {t} VALUES (2, 2)"), &[])
        .await
        .unwrap();
    let second = snap
        .execute_sql(&format!("SELECT v FROM {t}"), &[])
        .await
        .unwrap();
    assert_eq!(
        first.rows, second.rows,
        "the snapshot does not see later commits"
    );
    snap.close().await.unwrap();
    assert_eq!(count(&mut s, &t).await, 2);
}

/// A statement fails in the transaction, the caller handles its error and commits.
/// PostgreSQL then rolls the whole transaction back (and answers the COMMIT with no
/// error): the commit says so, as `Error::RolledBack` with the failed statement's code.
/// SQLite undoes only the failed statement, and commits the rest.
async fn a_commit_after_a_failed_statement_is_not_passed_off_as_one(db: Database) {
    let (mut s, t) = table(&db).await;
    let mut tx = s.transaction().await.unwrap();
    insert(&mut tx, &t, 1, 1).await.unwrap();
    let dup = insert(&mut tx, &t, 1, 2).await;
    assert!(dup.is_err(), "{dup:?}");
    let res = tx.commit().await;
    match db.dialect() {
        Dialect::Postgres => {
            let err = res.expect_err("PostgreSQL rolled the transaction back");
            assert_eq!(err.kind(), ErrorKind::RolledBack, "{err}");
            assert_eq!(err.code(), Some("23505"), "{err}");
            assert!(err.to_string().contains("SAVEPOINT"), "{err}");
            assert_eq!(count(&mut s, &t).await, 0);
        }
        _ => {
            res.unwrap();
            assert_eq!(count(&mut s, &t).await, 1);
        }
    }
    // The session goes on as before.
    insert(&mut s, &t, 2, 2).await.unwrap();
}

/// The way to go on after an expected error: a savepoint rolled back to. The transaction
/// is usable again, and its commit commits.
async fn a_savepoint_rolled_back_to_lets_the_transaction_commit(db: Database) {
    let (mut s, t) = table(&db).await;
    let mut tx = s.transaction().await.unwrap();
    insert(&mut tx, &t, 1, 1).await.unwrap();
    tx.execute_update("SAVEPOINT before_dup", &[])
        .await
        .unwrap();
    let dup = insert(&mut tx, &t, 1, 2).await;
    assert!(dup.is_err(), "{dup:?}");
    tx.execute_update("ROLLBACK TO SAVEPOINT before_dup", &[])
        .await
        .unwrap();
    insert(&mut tx, &t, 2, 2).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(count(&mut s, &t).await, 2);
}

on_both!(
    a_commit_after_a_failed_statement_is_not_passed_off_as_one,
    a_savepoint_rolled_back_to_lets_the_transaction_commit,
    commit_applies_dml_and_mutations,
    rollback_and_drop_discard_everything,
    cancelled_transaction_future_leaves_the_session_clean,
    snapshot_sees_one_state
);

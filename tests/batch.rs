//! Batches: every mutation kind, atomicity, and bad input that leaves the table untouched.
mod common;

use session_pool::prelude::*;
use session_pool::{Database, Error, KeyRange, KeySet, Session, Value, params};

async fn table(db: &Database) -> (Session, String) {
    let t = common::unique("bt");
    let mut s = db.session();
    s.create().await.unwrap();
    s.execute_update(
        &format!(
            "CREATE TABLE {t} (id BIGINT PRIMARY KEY, name TEXT NOT NULL, score BIGINT DEFAULT 7)"
        ),
        &[],
    )
    .await
    .unwrap();
    (s, t)
}

async fn contents(s: &mut Session, t: &str) -> Vec<(i64, String, Option<i64>)> {
    s.read(t, &["id", "name", "score"], &KeySet::all(), None, 0)
        .await
        .unwrap()
        .rows
        .iter()
        .map(|r| {
            (
                r.get("id").unwrap(),
                r.get("name").unwrap(),
                r.get("score").unwrap(),
            )
        })
        .collect()
}

fn rows(rs: &[(i64, &str)]) -> Vec<Vec<Value>> {
    rs.iter()
        .map(|(i, n)| vec![Value::from(*i), Value::from(*n)])
        .collect()
}

async fn every_mutation_kind(db: Database) {
    let (mut s, t) = table(&db).await;
    let cols = ["id", "name"];
    let mut b = s.batch().unwrap();
    b.insert(&t, &cols, rows(&[(1, "a"), (2, "b"), (3, "c"), (4, "d")]))
        .unwrap();
    let before = chrono::Utc::now();
    let committed = b.commit().await.unwrap();
    assert!(committed >= before);

    let mut b = s.batch().unwrap();
    b.update(&t, &["id", "score"], vec![vec![1.into(), 100.into()]])
        .unwrap();
    b.insert_or_update(&t, &cols, rows(&[(2, "B"), (5, "e")]))
        .unwrap();
    // replace: columns not named go back to their default.
    b.replace(&t, &cols, rows(&[(1, "A")])).unwrap();
    b.delete(
        &t,
        KeySet::keys([[3]]).with_range(KeyRange::closed_closed([4], [4])),
    )
    .unwrap();
    assert_eq!(b.mutations().len(), 4);
    b.commit().await.unwrap();

    assert_eq!(
        contents(&mut s, &t).await,
        [
            (1, "A".into(), Some(7)),
            (2, "B".into(), Some(7)),
            (5, "e".into(), Some(7))
        ]
    );

    let mut b = s.batch().unwrap();
    b.delete(&t, KeySet::all()).unwrap();
    b.commit().await.unwrap();
    assert!(contents(&mut s, &t).await.is_empty());
}

async fn a_failing_mutation_rolls_back_the_batch(db: Database) {
    let (mut s, t) = table(&db).await;
    let mut b = s.batch().unwrap();
    b.insert(&t, &["id", "name"], rows(&[(1, "a")])).unwrap();
    b.commit().await.unwrap();

    // The second mutation updates a row that does not exist: nothing is applied.
    let mut b = s.batch().unwrap();
    b.insert(&t, &["id", "name"], rows(&[(2, "b")])).unwrap();
    b.update(&t, &["id", "name"], rows(&[(99, "z")])).unwrap();
    assert!(matches!(b.commit().await, Err(Error::NotFound(_))));
    // A duplicate key (a database error) rolls back too.
    let mut b = s.batch().unwrap();
    b.insert(&t, &["id", "name"], rows(&[(3, "c")])).unwrap();
    b.insert(&t, &["id", "name"], rows(&[(1, "dup")])).unwrap();
    assert!(matches!(b.commit().await, Err(Error::Database { .. })));
    // An unknown column (valid name, not in the table) rolls back too.
    let mut b = s.batch().unwrap();
    b.insert(&t, &["id", "name"], rows(&[(4, "d")])).unwrap();
    b.insert(&t, &["id", "nope"], rows(&[(5, "e")])).unwrap();
    assert!(b.commit().await.is_err());

    assert_eq!(contents(&mut s, &t).await, [(1, "a".into(), Some(7))]);
    assert!(!s.is_broken());
}

async fn bad_identifiers_are_invalid_arguments(db: Database) {
    let (mut s, t) = table(&db).await;
    let mut b = s.batch().unwrap();
    b.insert(&t, &["id", "name"], rows(&[(1, "a")])).unwrap();
    b.commit().await.unwrap();

    let evil = format!("{t}; DROP TABLE {t}; --");
    let mut b = s.batch().unwrap();
    assert!(matches!(
        b.insert(&evil, &["id", "name"], rows(&[(2, "b")])),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        b.update(&t, &["id", "na me"], rows(&[(1, "x")])),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        b.delete("t\"x", KeySet::all()),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        b.insert(&t, &["id", "id"], rows(&[(2, "b")])),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        b.insert(&t, &["id", "name"], vec![vec![Value::Int(3)]]),
        Err(Error::InvalidArgument(_))
    ));
    assert!(
        b.mutations().is_empty(),
        "rejected mutations are not buffered"
    );
    // An update that does not name the whole key is rejected at commit, before any write.
    b.insert(&t, &["id", "name"], rows(&[(2, "b")])).unwrap();
    b.update(&t, &["name"], vec![vec!["x".into()]]).unwrap();
    assert!(matches!(b.commit().await, Err(Error::InvalidArgument(_))));
    drop(s.execute_sql("SELECT 1", &params![]).await.unwrap());

    assert_eq!(contents(&mut s, &t).await, [(1, "a".into(), Some(7))]);
}

async fn batch_needs_a_created_session(db: Database) {
    let mut s = db.session();
    assert!(matches!(s.batch(), Err(Error::NotCreated)));
}

on_both!(
    every_mutation_kind,
    a_failing_mutation_rolls_back_the_batch,
    bad_identifiers_are_invalid_arguments,
    batch_needs_a_created_session
);

//! read(table, columns, keyset, index, limit): keys, ranges, prefixes, indexes, bad names.
mod common;

use session_pool::prelude::*;
use session_pool::{Bound, Database, Error, KeyRange, KeySet, Session, Value};

async fn setup(db: &Database) -> (Session, String) {
    let t = common::unique("rd");
    let mut s = db.session();
    s.create().await.unwrap();
    s.execute_update(
        &format!(
            "CREATE TABLE {t} (a BIGINT NOT NULL, b BIGINT NOT NULL, name TEXT, PRIMARY KEY (a, b))"
        ),
        &[],
    )
    .await
    .unwrap();
    s.execute_update(&format!("CREATE INDEX {t}_by_name ON {t} (name)"), &[])
        .await
        .unwrap();
    let mut batch = s.batch().unwrap();
    let rows: Vec<Vec<Value>> = (1..=3)
        .flat_map(|a| {
            (1..=3).map(move |b| vec![a.into(), b.into(), format!("n{}", 12 - (a * 3 + b)).into()])
        })
        .collect();
    batch.insert(&t, &["a", "b", "name"], rows).unwrap();
    batch.commit().await.unwrap();
    (s, t)
}

fn keys(rs: &session_pool::ResultSet) -> Vec<(i64, i64)> {
    rs.rows
        .iter()
        .map(|r| (r.get("a").unwrap(), r.get("b").unwrap()))
        .collect()
}

async fn reads_keys_ranges_and_all(db: Database) {
    let (mut s, t) = setup(&db).await;
    let cols = ["a", "b", "name"];

    let all = s.read(&t, &cols, &KeySet::all(), None, 0).await.unwrap();
    assert_eq!(all.len(), 9);
    assert_eq!(keys(&all)[0], (1, 1), "key order");

    let some = s
        .read(&t, &cols, &KeySet::keys([[2, 2], [1, 3], [9, 9]]), None, 0)
        .await
        .unwrap();
    assert_eq!(keys(&some), [(1, 3), (2, 2)]);

    // A prefix range: every row whose first key column is 2.
    let prefix = KeySet::ranges([KeyRange::closed_closed([2], [2])]);
    assert_eq!(
        keys(&s.read(&t, &cols, &prefix, None, 0).await.unwrap()),
        [(2, 1), (2, 2), (2, 3)]
    );

    // Open and closed ends on full keys.
    let r = KeySet::ranges([KeyRange::open_closed([1, 3], [2, 2])]);
    assert_eq!(
        keys(&s.read(&t, &cols, &r, None, 0).await.unwrap()),
        [(2, 1), (2, 2)]
    );
    let r = KeySet::ranges([KeyRange::new(
        Bound::Open(vec![Value::Int(2)]),
        Bound::Unbounded,
    )]);
    assert_eq!(
        keys(&s.read(&t, &cols, &r, None, 0).await.unwrap()),
        [(3, 1), (3, 2), (3, 3)]
    );

    // Keys and ranges together, with a limit.
    let mixed = KeySet::keys([[1, 1]]).with_range(KeyRange::closed_open([3], [4]));
    assert_eq!(
        keys(&s.read(&t, &cols, &mixed, None, 2).await.unwrap()),
        [(1, 1), (3, 1)]
    );

    assert!(
        s.read(&t, &cols, &KeySet::empty(), None, 0)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn reads_through_an_index(db: Database) {
    let (mut s, t) = setup(&db).await;
    let index = format!("{t}_by_name");
    let rs = s
        .read(
            &t,
            &["name", "a", "b"],
            &KeySet::keys([["n1"], ["n4"]]),
            Some(&index),
            0,
        )
        .await
        .unwrap();
    assert_eq!(keys(&rs), [(3, 2), (2, 2)], "ordered by the index column");
    // Index order, limited.
    let first = s
        .read(&t, &["name"], &KeySet::all(), Some(&index), 1)
        .await
        .unwrap();
    assert_eq!(first.one().unwrap().get::<String>("name").unwrap(), "n0");
    // An index of another table, or none at all, is not found.
    match s
        .read(&t, &["a"], &KeySet::all(), Some("no_such_index"), 0)
        .await
    {
        Err(Error::NotFound(msg)) => assert!(msg.contains("no_such_index")),
        other => panic!("expected NotFound, got {other:?}"),
    }
}

async fn bad_names_are_rejected_before_sql(db: Database) {
    let (mut s, t) = setup(&db).await;
    let evil = format!("{t}; DROP TABLE {t}");
    for (table, col, index) in [
        (evil.as_str(), "a", None),
        (t.as_str(), "a\" FROM x --", None),
        (t.as_str(), "a", Some("x y")),
        (t.as_str(), "", None),
    ] {
        let res = s.read(table, &[col], &KeySet::all(), index, 0).await;
        assert!(
            matches!(res, Err(Error::InvalidArgument(_))),
            "{table} {col}: {res:?}"
        );
    }
    let long = "x".repeat(64);
    assert!(matches!(
        s.read(&long, &["a"], &KeySet::all(), None, 0).await,
        Err(Error::InvalidArgument(_))
    ));
    // A key of the wrong width is rejected too.
    let res = s.read(&t, &["a"], &KeySet::keys([[1]]), None, 0).await;
    assert!(matches!(res, Err(Error::InvalidArgument(_))), "{res:?}");
    // The table is untouched.
    assert_eq!(
        s.read(&t, &["a"], &KeySet::all(), None, 0)
            .await
            .unwrap()
            .len(),
        9
    );
    // A missing table is "not found".
    let res = s
        .read("no_such_table_here", &["a"], &KeySet::all(), None, 0)
        .await;
    assert!(matches!(res, Err(Error::NotFound(_))), "{res:?}");
}

on_both!(
    reads_keys_ranges_and_all,
    reads_through_an_index,
    bad_names_are_rejected_before_sql
);

//! The store checks each column's type once per result and decodes later rows without
//! sqlx's per-value check: a column of the wrong type must still be a typed error naming
//! it, on whichever row its first value is, and never a value decoded from the wrong bytes.
mod common;

use chrono::{Duration, Utc};
use session_pool::adk::AdkConfig;
use session_pool::adk::AdkStore;
use session_pool::prelude::*;
use session_pool::{Database, Error, Value};

/// A store on tables of its own, with session `s1` of app `app`, user `u1`.
async fn store_with_session() -> Option<(Database, AdkStore)> {
    let db = common::postgres().await?;
    let store = common::adk_store(&db, AdkConfig::default()).await;
    store
        .create_session("s1", "app", "u1", &serde_json::json!({}), None)
        .await
        .unwrap();
    Some((db, store))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_column_of_another_type_is_an_error_on_any_row() {
    let Some((db, store)) = store_with_session().await else {
        return;
    };
    let events = store.events_table().to_owned();
    let mut s = db.session();
    s.create().await.unwrap();
    // Another app's migration made `branch` an integer (the seed's is VARCHAR).
    s.execute_update(
        &format!("ALTER TABLE {events} ALTER COLUMN branch TYPE integer USING NULL"),
        &[],
    )
    .await
    .unwrap();
    let t0 = Utc::now() - Duration::seconds(10);
    // The first event's branch is NULL (no type to check on that row); the later ones'
    // are integers, whose four bytes would pass for text if decoded unchecked.
    for (n, branch) in [Value::Null, Value::Int(7), Value::Int(8)]
        .into_iter()
        .enumerate()
    {
        s.execute_update(
            &format!(
                "INSERT INTO {events} (id, session_id, app_name, user_id, branch, timestamp) \
                 VALUES ($1, 's1', 'app', 'u1', $2::integer, $3)"
            ),
            &[
                Value::Text(format!("e{n}")),
                branch,
                Value::Timestamp(t0 + Duration::seconds(n as i64)),
            ],
        )
        .await
        .unwrap();
    }

    match store.get_events("s1", None, None).await {
        Err(Error::ColumnDecode {
            column, expected, ..
        }) => {
            assert_eq!(column, "branch");
            assert!(expected.contains("String"), "{expected}");
        }
        other => panic!("expected a ColumnDecode error for `branch`, got {other:?}"),
    }
    // Where the column is NULL on every row, the result reads, as sqlx reads it.
    s.execute_update(
        &format!("UPDATE {events} SET branch = NULL WHERE id <> 'e0'"),
        &[],
    )
    .await
    .unwrap();
    let all = store.get_events("s1", None, None).await.unwrap();
    let ids: Vec<_> = all.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["e0", "e1", "e2"]);
    assert!(all.iter().all(|e| e.branch.is_none()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_row_of_a_long_result_decodes_as_its_own() {
    let Some((_db, store)) = store_with_session().await else {
        return;
    };
    let t0 = Utc::now() - Duration::seconds(100);
    for n in 0..40 {
        let mut e = session_pool::adk::EventRecord::new(format!("e{n:02}"), "s1", "app", "u1");
        e.timestamp = t0 + Duration::seconds(n);
        // Optional columns alternate between NULL and a value, row to row.
        if n % 2 == 1 {
            e.branch = Some(format!("b{n}"));
            e.content = Some(serde_json::json!({"n": n}));
            e.partial = Some(n % 4 == 1);
        }
        store.append_event(&e).await.unwrap();
    }
    let events = store.get_events("s1", None, None).await.unwrap();
    assert_eq!(events.len(), 40);
    for (n, e) in events.iter().enumerate() {
        assert_eq!(e.id, format!("e{n:02}"));
        if n % 2 == 1 {
            assert_eq!(e.branch.as_deref(), Some(format!("b{n}").as_str()));
            assert_eq!(e.content, Some(serde_json::json!({"n": n})));
            assert_eq!(e.partial, Some(n % 4 == 1));
        } else {
            assert_eq!((&e.branch, &e.content, e.partial), (&None, &None, None));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamps_read_back_to_the_microsecond_on_every_row() {
    let Some((_db, store)) = store_with_session().await else {
        return;
    };
    // Later rows are decoded from the column's eight bytes rather than by sqlx: times
    // before the Unix epoch and PostgreSQL's, on either side of 2000-01-01, and far out.
    let times: Vec<chrono::DateTime<Utc>> = [
        "1901-12-13T20:45:52.000001Z",
        "1969-07-20T20:17:40.123456Z",
        "1999-12-31T23:59:59.999999Z",
        "2000-01-01T00:00:00Z",
        "2000-01-01T00:00:00.000001Z",
        "2026-12-06T03:14:15.926535Z",
        "2262-04-11T23:47:16.854775Z",
    ]
    .iter()
    .map(|s| chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc())
    .collect();
    for (n, &t) in times.iter().enumerate() {
        let mut e = session_pool::adk::EventRecord::new(format!("t{n}"), "s1", "app", "u1");
        e.timestamp = t;
        store.append_event(&e).await.unwrap();
    }
    let read: Vec<_> = store
        .get_events("s1", None, None)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.timestamp)
        .collect();
    assert_eq!(read, times);
}

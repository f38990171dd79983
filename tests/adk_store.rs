//! AdkStore operations on SQLite and PostgreSQL: sessions, events, ordering, limits,
//! cascade, paging, idle cleanup and bad input.
mod common;

use chrono::{Duration, Utc};
use serde_json::json;
use session_pool::Database;
use session_pool::Error;
use session_pool::adk::{AdkConfig, EventRecord};
use session_pool::prelude::*;

fn event(id: &str, session: &str, at: chrono::DateTime<Utc>) -> EventRecord {
    let mut e = EventRecord::new(id, session, "app", "u1");
    e.author = Some("user".into());
    e.timestamp = at;
    e.content = Some(json!({"parts": [{"text": id}]}));
    e
}

fn ids(events: &[EventRecord]) -> Vec<&str> {
    events.iter().map(|e| e.id.as_str()).collect()
}

async fn session_crud(db: Database) {
    let store = common::adk_store(&db, AdkConfig::default()).await;
    let state = json!({"ctx": "greeting", "prefs": {"lang": "en"}, "cart": []});
    let created = store
        .create_session("s1", "app", "u1", &state, None)
        .await
        .unwrap();
    assert_eq!(created.state, state);
    assert_eq!(created.create_time, created.update_time);
    assert!((Utc::now() - created.create_time).num_seconds().abs() < 60);

    let got = store.get_session("s1").await.unwrap().unwrap();
    assert_eq!(got, created);
    assert!(store.get_session("nope").await.unwrap().is_none());

    let new_state = json!({"ctx": "checkout", "cart": ["item1"]});
    let updated = store.update_session_state("s1", &new_state).await.unwrap();
    assert_eq!(updated.state, new_state, "full replace, not merge");
    assert!(updated.update_time > created.update_time);
    assert_eq!(updated.create_time, created.create_time);
    assert_eq!(store.get_session("s1").await.unwrap().unwrap(), updated);

    let err = store
        .create_session("s1", "app", "u1", &json!({}), None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AlreadyExists(_)), "{err}");
    let err = store
        .update_session_state("nope", &json!({}))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err}");

    assert!(store.delete_session("s1").await.unwrap());
    assert!(!store.delete_session("s1").await.unwrap());
    assert!(store.get_session("s1").await.unwrap().is_none());
}

async fn list_newest_first_and_paged(db: Database) {
    let store = common::adk_store(&db, AdkConfig::default()).await;
    for (id, user) in [("a", "u1"), ("b", "u2"), ("c", "u1"), ("d", "u1")] {
        store
            .create_session(id, "app", user, &json!({}), None)
            .await
            .unwrap();
    }
    store
        .create_session("x", "other", "u1", &json!({}), None)
        .await
        .unwrap();
    // Touch `a` last: it becomes the newest.
    store
        .update_session_state("a", &json!({"n": 1}))
        .await
        .unwrap();

    let all: Vec<String> = store
        .list_sessions("app", None)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(all[0], "a");
    assert_eq!(all.len(), 4);
    let u1: Vec<String> = store
        .list_sessions("app", Some("u1"))
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(u1.len(), 3);
    assert!(!u1.contains(&"b".to_string()));

    let mut paged = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .list_sessions_page("app", None, 3, cursor.as_ref())
            .await
            .unwrap();
        assert!(page.sessions.len() <= 3);
        paged.extend(page.sessions.into_iter().map(|s| s.id));
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(paged, all, "pages concatenate to the full listing");
    assert!(
        store
            .list_sessions_page("app", None, 0, None)
            .await
            .is_err()
    );
}

async fn events_in_order_with_filters(db: Database) {
    let store = common::adk_store(&db, AdkConfig::default()).await;
    store
        .create_session("s", "app", "u1", &json!({}), None)
        .await
        .unwrap();
    let t0 = Utc::now() - Duration::hours(1);
    // Written out of order; read back chronologically.
    for (id, minutes) in [("e3", 3), ("e1", 1), ("e5", 5), ("e2", 2), ("e4", 4)] {
        store
            .append_event(&event(id, "s", t0 + Duration::minutes(minutes)))
            .await
            .unwrap();
    }
    let all = store.get_events("s", None, None).await.unwrap();
    assert_eq!(ids(&all), ["e1", "e2", "e3", "e4", "e5"]);
    assert_eq!(all[0].content, Some(json!({"parts": [{"text": "e1"}]})));
    assert_eq!(all[0].author.as_deref(), Some("user"));
    let drift = (all[0].timestamp - (t0 + Duration::minutes(1)))
        .num_microseconds()
        .unwrap();
    assert!(
        drift.abs() <= 50,
        "timestamp kept to the stored precision: {drift} µs"
    );

    let latest = store.get_events("s", None, Some(2)).await.unwrap();
    assert_eq!(
        ids(&latest),
        ["e4", "e5"],
        "limit keeps the newest, in order"
    );
    let after = store
        .get_events("s", Some(all[2].timestamp), None)
        .await
        .unwrap();
    assert_eq!(
        ids(&after),
        ["e4", "e5"],
        "strictly after a time read back from the store"
    );
    let after_limited = store
        .get_events("s", Some(all[0].timestamp), Some(2))
        .await
        .unwrap();
    assert_eq!(ids(&after_limited), ["e4", "e5"]);
    assert!(
        store
            .get_events("s", None, Some(0))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .get_events("unknown", None, None)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn equal_timestamps_break_ties_by_id(db: Database) {
    let store = common::adk_store(&db, AdkConfig::default()).await;
    store
        .create_session("s", "app", "u1", &json!({}), None)
        .await
        .unwrap();
    let t = Utc::now();
    for id in ["k3", "k1", "k4", "k2", "k0"] {
        store.append_event(&event(id, "s", t)).await.unwrap();
    }
    for _ in 0..3 {
        let all = store.get_events("s", None, None).await.unwrap();
        assert_eq!(ids(&all), ["k0", "k1", "k2", "k3", "k4"]);
        let newest = store.get_events("s", None, Some(2)).await.unwrap();
        assert_eq!(ids(&newest), ["k3", "k4"]);
    }
}

async fn all_event_columns_round_trip(db: Database) {
    let store = common::adk_store(&db, AdkConfig::default()).await;
    store
        .create_session("s", "app", "u1", &json!({}), None)
        .await
        .unwrap();
    let mut full = event("full", "s", Utc::now());
    full.invocation_id = Some("inv_1".into());
    full.actions = Some(vec![0, 159, 146, 150, 255]);
    full.long_running_tool_ids_json = Some(r#"["call_1"]"#.into());
    full.branch = Some("root.child".into());
    full.grounding_metadata = Some(json!({"sources": ["kb"]}));
    full.custom_metadata = Some(json!({"confidence": 0.95}));
    full.partial = Some(false);
    full.turn_complete = Some(true);
    full.interrupted = Some(false);
    full.error_code = Some("E1".into());
    full.error_message = Some("é".repeat(1024));
    store.append_event(&full).await.unwrap();
    let mut bare = event("bare", "s", Utc::now() + Duration::seconds(1));
    bare.author = None;
    bare.content = None;
    store.append_event(&bare).await.unwrap();
    let got = store.get_events("s", None, None).await.unwrap();
    let mut expect_full = full.clone();
    expect_full.timestamp = got[0].timestamp;
    assert_eq!(got[0], expect_full);
    let mut expect_bare = bare.clone();
    expect_bare.timestamp = got[1].timestamp;
    assert_eq!(got[1], expect_bare);
    let err = store.append_event(&full).await.unwrap_err();
    assert!(matches!(err, Error::AlreadyExists(_)), "{err}");
}

async fn delete_cascades_to_events(db: Database) {
    let store = common::adk_store(&db, AdkConfig::default()).await;
    for s in ["gone", "kept"] {
        store
            .create_session(s, "app", "u1", &json!({}), None)
            .await
            .unwrap();
        for i in 0..3 {
            store
                .append_event(&event(&format!("{s}{i}"), s, Utc::now()))
                .await
                .unwrap();
        }
    }
    assert!(store.delete_session("gone").await.unwrap());
    assert!(
        store
            .get_events("gone", None, None)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.get_events("kept", None, None).await.unwrap().len(), 3);
    // Not filtered by session: the rows are really gone from the table.
    let mut s = store.pool().session().await.unwrap();
    let n: i64 = s
        .execute_sql(
            &format!("SELECT COUNT(*) FROM \"{}\"", store.events_table()),
            &[],
        )
        .await
        .unwrap()
        .one()
        .unwrap()
        .get(0)
        .unwrap();
    assert_eq!(n, 3);
}

async fn idle_sessions_are_deleted(db: Database) {
    let store = common::adk_store(&db, AdkConfig::default()).await;
    store
        .create_session("old", "app", "u1", &json!({}), None)
        .await
        .unwrap();
    store
        .append_event(&event("old_e", "old", Utc::now()))
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let cutoff = Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    store
        .create_session("new", "app", "u1", &json!({}), None)
        .await
        .unwrap();
    assert_eq!(store.delete_idle_sessions(cutoff).await.unwrap(), 1);
    assert!(store.get_session("old").await.unwrap().is_none());
    assert!(store.get_session("new").await.unwrap().is_some());
    assert!(
        store
            .get_events("old", None, None)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn bad_input_is_rejected_before_any_query(db: Database) {
    let store = common::adk_store(&db, AdkConfig::default()).await;
    let long = "x".repeat(129);
    let invalid = |e: Error| assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    invalid(
        store
            .create_session(&long, "app", "u", &json!({}), None)
            .await
            .unwrap_err(),
    );
    invalid(
        store
            .create_session("s", &long, "u", &json!({}), None)
            .await
            .unwrap_err(),
    );
    invalid(
        store
            .create_session("s", "app", "", &json!({}), None)
            .await
            .unwrap_err(),
    );
    invalid(store.get_session(&long).await.unwrap_err());
    invalid(store.delete_session(&long).await.unwrap_err());
    invalid(store.get_events(&long, None, None).await.unwrap_err());
    for state in [json!([1, 2]), json!("text"), json!(null), json!(3)] {
        invalid(
            store
                .create_session("s", "app", "u", &state, None)
                .await
                .unwrap_err(),
        );
    }
    invalid(
        store
            .create_session("s", "app", "u", &json!({}), Some(1.into()))
            .await
            .unwrap_err(),
    );
    store
        .create_session("s", "app", "u1", &json!({}), None)
        .await
        .unwrap();
    invalid(
        store
            .update_session_state("s", &json!([1]))
            .await
            .unwrap_err(),
    );
    invalid(
        store
            .append_event(&event(&long, "s", Utc::now()))
            .await
            .unwrap_err(),
    );
    let mut nul = event("e", "s", Utc::now());
    nul.author = Some("a\0b".into());
    invalid(store.append_event(&nul).await.unwrap_err());

    // An unknown session, or one of another app or user, is a typed not-found.
    for e in [
        event("e1", "missing", Utc::now()),
        {
            let mut e = event("e2", "s", Utc::now());
            e.app_name = "other".into();
            e
        },
        {
            let mut e = event("e3", "s", Utc::now());
            e.user_id = "u2".into();
            e
        },
    ] {
        let err = store.append_event(&e).await.unwrap_err();
        assert!(matches!(err, Error::NotFound(_)), "{err}");
    }
    // Nothing was written by the rejected calls.
    assert!(store.get_events("s", None, None).await.unwrap().is_empty());
    assert_eq!(
        store.get_session("s").await.unwrap().unwrap().state,
        json!({})
    );
}

on_both!(
    session_crud,
    list_newest_first_and_paged,
    events_in_order_with_filters,
    equal_timestamps_break_ties_by_id,
    all_event_columns_round_trip,
    delete_cascades_to_events,
    idle_sessions_are_deleted,
    bad_input_is_rejected_before_any_query,
);

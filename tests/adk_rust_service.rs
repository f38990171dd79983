//! `adk_session::SessionService` (ADK-Rust's trait, feature `adk-rust`) on this crate's
//! service, used only through the trait object a `Runner` holds, on both backends.
#![cfg(feature = "adk-rust")]
mod common;

use std::collections::HashMap;
use std::sync::Arc;

use adk_core::{Content, ErrorCategory, Part};
use adk_session::{CreateRequest, DeleteRequest, GetRequest, ListRequest, SessionService};
use chrono::{Duration, Utc};
use serde_json::{Value, json};
use session_pool::Database;
use session_pool::adk::AdkConfig;

async fn service(db: &Database) -> Arc<dyn SessionService> {
    let store = common::adk_store(db, AdkConfig::default()).await;
    Arc::new(session_pool::adk::SessionService::new(store))
}

fn create(app: &str, user: &str, id: Option<&str>, state: Value) -> CreateRequest {
    CreateRequest {
        app_name: app.into(),
        user_id: user.into(),
        session_id: id.map(Into::into),
        state: serde_json::from_value(state).unwrap(),
    }
}

fn get(app: &str, user: &str, id: &str) -> GetRequest {
    GetRequest {
        app_name: app.into(),
        user_id: user.into(),
        session_id: id.into(),
        num_recent_events: None,
        after: None,
    }
}

fn event(author: &str, text: &str, delta: Value) -> adk_core::Event {
    let mut e = adk_core::Event::new("inv-1");
    e.author = author.into();
    e.llm_response.content = Some(Content {
        role: "model".into(),
        parts: vec![Part::Text { text: text.into() }],
    });
    e.actions.state_delta = serde_json::from_value(delta).unwrap();
    e
}

fn state(s: &dyn adk_session::Session) -> HashMap<String, Value> {
    s.state().all()
}

async fn create_get_and_state_scopes(db: Database) {
    let svc = service(&db).await;
    let s = svc
        .create(create(
            "app",
            "ann",
            None,
            json!({"topic": "x", "user:name": "Ann", "app:version": 2, "temp:scratch": 1}),
        ))
        .await
        .unwrap();
    assert!(
        uuid::Uuid::parse_str(s.id()).is_ok(),
        "a fresh UUID: {}",
        s.id()
    );
    assert_eq!(
        state(s.as_ref()),
        serde_json::from_value(json!({"topic": "x", "user:name": "Ann", "app:version": 2}))
            .unwrap()
    );
    // The same id again is refused.
    let err = svc
        .create(create("app", "ann", Some(s.id()), json!({})))
        .await
        .err()
        .unwrap();
    assert_eq!(err.category, ErrorCategory::InvalidInput, "{err}");
    assert_eq!(err.code, "session.already_exists");

    // user: keys reach the user's other sessions, app: keys every user's.
    let again = svc
        .create(create("app", "ann", Some("ann-2"), json!({})))
        .await
        .unwrap();
    assert_eq!(again.state().get("user:name"), Some(json!("Ann")));
    let bob = svc
        .create(create("app", "bob", Some("bob-1"), json!({})))
        .await
        .unwrap();
    assert_eq!(bob.state().get("user:name"), None);
    assert_eq!(bob.state().get("app:version"), Some(json!(2)));

    // A delta's scopes, through append_event; temp: keys are never stored.
    svc.append_event(
        "bob-1",
        event(
            "agent",
            "hi",
            json!({"user:name": "Bob", "app:version": 3, "temp:t": 1, "mood": "ok"}),
        ),
    )
    .await
    .unwrap();
    let bob = svc.get(get("app", "bob", "bob-1")).await.unwrap();
    let st = state(bob.as_ref());
    assert_eq!(st["user:name"], "Bob");
    assert_eq!(st["mood"], "ok");
    assert!(!st.contains_key("temp:t"));
    assert_eq!(bob.events().len(), 1);
    assert!(
        !bob.events()
            .at(0)
            .unwrap()
            .actions
            .state_delta
            .contains_key("temp:t"),
        "temp: keys are not stored in the event either"
    );
    let ann = svc.get(get("app", "ann", "ann-2")).await.unwrap();
    assert_eq!(ann.state().get("user:name"), Some(json!("Ann")));
    assert_eq!(ann.state().get("app:version"), Some(json!(3)));

    // A missing session, or one of another user, is session.not_found.
    for (user, id) in [("ann", "nope"), ("ann", "bob-1")] {
        let err = svc.get(get("app", user, id)).await.err().unwrap();
        assert!(err.is_not_found(), "{err}");
        assert_eq!(err.code, "session.not_found");
    }
    // Identifiers ADK refuses, or the schema cannot hold, are invalid input.
    for bad in [get("", "ann", "x"), get("app", "ann", &"x".repeat(300))] {
        let err = svc.get(bad).await.err().unwrap();
        assert_eq!(err.category, ErrorCategory::InvalidInput, "{err}");
    }
    svc.health_check().await.unwrap();
}

async fn events_round_trip_and_filters(db: Database) {
    let svc = service(&db).await;
    svc.create(create("app", "u", Some("s"), json!({})))
        .await
        .unwrap();
    let t0 = Utc::now() - Duration::seconds(60);
    let mut written = Vec::new();
    for i in 0..5 {
        let mut e = event("agent", &format!("m{i}"), json!({ "n": i }));
        e.timestamp = t0 + Duration::seconds(i);
        e.branch = "root.agent".into();
        e.llm_response.turn_complete = i == 4;
        e.actions.transfer_to_agent = (i == 1).then(|| "billing".into());
        e.actions.route = Some(vec![format!("node{i}")]);
        e.long_running_tool_ids = vec![format!("call_{i}")];
        e.provider_metadata.insert("k".into(), format!("v{i}"));
        e.llm_response.provider_metadata = Some(json!({"tokens": i}));
        svc.append_event("s", e.clone()).await.unwrap();
        written.push(e);
    }
    // Partial (streaming) events are not stored.
    let mut partial = event("agent", "chunk", json!({"partial": true}));
    partial.llm_response.partial = true;
    svc.append_event("s", partial).await.unwrap();

    let all = svc.get(get("app", "u", "s")).await.unwrap();
    let read = all.events().all();
    assert_eq!(read.len(), 5);
    for (r, w) in read.iter().zip(&written) {
        // Every field comes back; only the time is as the backend holds it.
        let mut w = serde_json::to_value(w).unwrap();
        let mut r = serde_json::to_value(r).unwrap();
        let (wt, rt) = (w["timestamp"].take(), r["timestamp"].take());
        assert_eq!(r, w);
        let (wt, rt): (chrono::DateTime<Utc>, chrono::DateTime<Utc>) = (
            serde_json::from_value(wt).unwrap(),
            serde_json::from_value(rt).unwrap(),
        );
        assert!(
            (wt - rt).num_microseconds().unwrap().abs() < 100,
            "{wt} vs {rt}"
        );
    }
    assert_eq!(all.state().get("n"), Some(json!(4)));
    assert!(all.state().get("partial").is_none());

    // The newest N, and those at or after a time (inclusive), as the trait's services do.
    let mut req = get("app", "u", "s");
    req.num_recent_events = Some(2);
    let texts = |s: &dyn adk_session::Session| -> Vec<String> {
        s.events()
            .all()
            .iter()
            .map(
                |e| match &e.llm_response.content.as_ref().unwrap().parts[0] {
                    Part::Text { text } => text.clone(),
                    other => panic!("{other:?}"),
                },
            )
            .collect()
    };
    assert_eq!(
        texts(svc.get(req.clone()).await.unwrap().as_ref()),
        ["m3", "m4"]
    );
    req.num_recent_events = None;
    req.after = Some(all.events().at(2).unwrap().timestamp);
    assert_eq!(
        texts(svc.get(req.clone()).await.unwrap().as_ref()),
        ["m2", "m3", "m4"]
    );
    req.num_recent_events = Some(1);
    assert_eq!(texts(svc.get(req).await.unwrap().as_ref()), ["m4"]);

    // Appending to a session that does not exist is not found.
    let err = svc
        .append_event("missing", event("a", "x", json!({})))
        .await
        .err()
        .unwrap();
    assert!(err.is_not_found(), "{err}");
}

async fn list_and_delete(db: Database) {
    let svc = service(&db).await;
    for i in 0..5 {
        svc.create(create("app", "u", Some(&format!("s{i}")), json!({"i": i})))
            .await
            .unwrap();
    }
    svc.create(create("app", "other", Some("o"), json!({})))
        .await
        .unwrap();
    // s1 becomes the most recently updated.
    svc.append_event("s1", event("a", "x", json!({})))
        .await
        .unwrap();
    let list = |offset, limit| ListRequest {
        app_name: "app".into(),
        user_id: "u".into(),
        offset,
        limit,
    };
    let ids = |v: Vec<Box<dyn adk_session::Session>>| -> Vec<String> {
        v.iter().map(|s| s.id().to_owned()).collect()
    };
    let all = ids(svc.list(list(None, None)).await.unwrap());
    assert_eq!(all, ["s1", "s4", "s3", "s2", "s0"]);
    assert_eq!(
        ids(svc.list(list(Some(1), Some(2))).await.unwrap()),
        ["s4", "s3"]
    );
    assert!(svc.list(list(Some(9), None)).await.unwrap().is_empty());

    let del = |id: &str| DeleteRequest {
        app_name: "app".into(),
        user_id: "u".into(),
        session_id: id.into(),
    };
    svc.delete(del("s1")).await.unwrap();
    assert!(
        svc.get(get("app", "u", "s1"))
            .await
            .err()
            .unwrap()
            .is_not_found()
    );
    // Deleting what is not there is fine, as in ADK-Rust's services.
    svc.delete(del("s1")).await.unwrap();
    svc.delete_all_sessions("app", "u").await.unwrap();
    assert!(svc.list(list(None, None)).await.unwrap().is_empty());
    assert!(svc.get(get("app", "other", "o")).await.is_ok());
}

async fn concurrent_appends_lose_nothing(db: Database) {
    let svc = service(&db).await;
    svc.create(create("app", "u", Some("s"), json!({})))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..6)
        .map(|t| {
            let svc = Arc::clone(&svc);
            tokio::spawn(async move {
                for i in 0..5 {
                    let key = format!("k{t}_{i}");
                    svc.append_event("s", event("a", "x", json!({ key: i })))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let s = svc.get(get("app", "u", "s")).await.unwrap();
    assert_eq!(s.events().len(), 30);
    let st = state(s.as_ref());
    for t in 0..6 {
        for i in 0..5 {
            assert_eq!(st[&format!("k{t}_{i}")], json!(i), "k{t}_{i}");
        }
    }
}

on_both!(
    create_get_and_state_scopes,
    events_round_trip_and_filters,
    list_and_delete,
    concurrent_appends_lose_nothing,
);

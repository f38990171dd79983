//! The real Python stores on the same tables: SQLSpec 0.41.1's `SQLSpecSessionService` with
//! google-adk (`tests/python/adk_interop.py`, in the venv `scripts/test` makes).
//!
//! On PostgreSQL and SQLite, with either side creating the tables: Python writes a session
//! (pickled actions, JSON tool ids, nested models) and this crate reads every field of it;
//! this crate writes a session with [`ActionsCodec::Pickle`] and Python's service loads it
//! into real `EventActions`; a table holding both formats reads as one.
mod common;

use std::path::Path;

use serde_json::{Value, json};
use session_pool::Database;
use session_pool::adk::{
    ActionsCodec, AdkConfig, AdkStore, AgentSession, Event, GetSessionConfig, SessionService,
};

use common::unique;

/// Who runs `create_tables` first; the other side runs it too, as both would at startup.
#[derive(Clone, Copy, PartialEq)]
enum Creator {
    Python,
    Rust,
}

async fn interop(db: Database, python_url: String, creator: Creator) {
    let Some(python) = common::python() else {
        return;
    };
    let (sessions, events) = (unique("py_s"), unique("py_e"));
    let config = AdkConfig::default()
        .session_table(&sessions)
        .events_table(&events)
        .app_state_table(unique("py_a"))
        .user_state_table(unique("py_u"));
    let pool = common::fixed_pool(&db, 4).await;
    let store = AdkStore::new(
        pool.clone(),
        config.clone().actions_codec(ActionsCodec::Pickle),
    )
    .unwrap();
    let service = SessionService::new(store.clone());
    let json_service =
        SessionService::new(AdkStore::new(pool, config.actions_codec(ActionsCodec::Json)).unwrap());
    let request = |extra: Value| {
        let mut r = json!({
            "backend": if python_url.starts_with("postgres") { "postgres" } else { "sqlite" },
            "url": python_url, "session_table": sessions, "events_table": events,
            "create_tables": true,
        });
        r.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        r
    };
    let (app, user) = ("interop", "u1");

    // Python writes session A into tables either side created.
    if creator == Creator::Rust {
        store.create_tables().await.unwrap();
    }
    let ids = json!({"app": app, "user": user, "session_id": "py-a"});
    let answer = common::run_python(
        &python,
        "adk_interop.py",
        &request(json!({"write": ids, "read": ids})),
    )
    .await;
    if creator == Creator::Python {
        // Adds the app/user state tables; leaves SQLSpec's two as they are.
        store.create_tables().await.unwrap();
    }
    let py_a = &answer["read"];
    assert_eq!(py_a["events"].as_array().unwrap().len(), 2, "{answer}");

    // This crate reads every field Python wrote, actions from the pickle included.
    let a = service
        .get_session(app, user, "py-a", &GetSessionConfig::default())
        .await
        .unwrap()
        .expect("Python's session");
    assert_same_session(&a, py_a);
    let actions = &a.events[0].actions;
    assert_eq!(actions.transfer_to_agent.as_deref(), Some("billing"));
    assert_eq!(actions.state_delta["big"], json!(1u64 << 40));
    assert_eq!(actions.artifact_delta["notes.txt"], 2);
    let second = &a.events[1].actions;
    assert_eq!(second.skip_summarization, Some(true));
    assert_eq!(
        second.extra["requested_tool_confirmations"]["call_1"]["payload"]["amount"],
        12.5
    );
    assert_eq!(
        second.extra["compaction"]["compacted_content"]["parts"][0]["text"],
        "summary"
    );

    // A mixed table: an event with JSON actions after Python's pickles reads as one session.
    let mut a_json = a.clone();
    json_service
        .append_event(
            &mut a_json,
            Event::text("model", "model", "json actions").with_state_delta("mixed", json!(true)),
        )
        .await
        .unwrap();
    let mixed = service
        .get_session(app, user, "py-a", &GetSessionConfig::default())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(mixed.events.len(), 3);
    assert_eq!(mixed.events[..2], a.events[..]);
    assert_eq!(mixed.events[2].actions.state_delta["mixed"], json!(true));

    // This crate writes session B with pickled actions; Python's service loads it.
    let mut b = service
        .create_session(
            app,
            user,
            Some(json!({"lang": "rs"}).as_object().unwrap().clone()),
            Some("rs-b"),
        )
        .await
        .unwrap();
    let mut first = Event::text("user", "user", "Hello from Rust \u{1F980} 'quotes' \\ $$")
        .with_invocation_id("inv-rs-1")
        .with_state_delta("topic", json!("pickles"))
        .with_state_delta(
            "nested",
            json!({"list": [1, -2, 2.5, null, true, "x"], "deep": {"k": i64::MIN, "u": u64::MAX}}),
        );
    first.actions.transfer_to_agent = Some("support".into());
    first.actions.artifact_delta.insert("report.pdf".into(), 3);
    first.long_running_tool_ids = Some(vec!["call_9".into()]);
    first.custom_metadata = Some(json!({"trace": "rs"}));
    let mut second = Event::text("agent", "model", "Done.").with_invocation_id("inv-rs-1");
    second.branch = Some("root.support".into());
    second.turn_complete = Some(true);
    second.actions.escalate = Some(true);
    second
        .actions
        .extra
        .insert("end_of_agent".into(), json!(true));
    second.actions.extra.insert(
        "requested_tool_confirmations".into(),
        json!({"call_9": {"hint": "Refund?", "confirmed": true, "payload": {"amount": 3}}}),
    );
    service.append_event(&mut b, first).await.unwrap();
    service.append_event(&mut b, second).await.unwrap();
    // Actions read from Python's pickle (nested ToolConfirmation, EventCompaction with a
    // genai Content), written back as a pickle: Python validates them into its models again.
    let mut relay = Event::new("relay").with_invocation_id("inv-rs-2");
    relay.actions = a.events[1].actions.clone();
    service.append_event(&mut b, relay).await.unwrap();
    // No invocation id: Python's model wants a string, and reads the empty one.
    service
        .append_event(&mut b, Event::text("user", "user", "again"))
        .await
        .unwrap();
    let ids = json!({"app": app, "user": user, "session_id": "rs-b"});
    let answer =
        common::run_python(&python, "adk_interop.py", &request(json!({"read": ids}))).await;
    assert_same_session(&b, &answer["read"]);
}

/// `rust` and what Python's service loaded (`adk_interop.py`'s `session_json`) agree on
/// the state and on every event field both sides model.
fn assert_same_session(rust: &AgentSession, py: &Value) {
    assert_eq!(py["id"], rust.id.as_str(), "{py}");
    assert_eq!(py["state"], Value::Object(rust.state.clone()), "state");
    let py_events = py["events"].as_array().expect("events");
    assert_eq!(py_events.len(), rust.events.len());
    for (r, p) in rust.events.iter().zip(py_events) {
        let what = format!("event {}", r.id);
        assert_eq!(p["id"], r.id.as_str(), "{what}");
        assert_eq!(p["author"], r.author.as_str(), "{what}");
        assert_eq!(
            p["invocation_id"],
            json!(r.invocation_id.clone().unwrap_or_default()),
            "{what}"
        );
        assert_eq!(p["branch"], json!(r.branch), "{what}");
        assert_eq!(p["content"], json!(r.content), "{what}");
        assert_eq!(p["custom_metadata"], json!(r.custom_metadata), "{what}");
        assert_eq!(p["turn_complete"], json!(r.turn_complete), "{what}");
        let mut ids = r.long_running_tool_ids.clone();
        if let Some(ids) = &mut ids {
            ids.sort();
        }
        assert_eq!(p["long_running_tool_ids"], json!(ids), "{what}");
        assert_eq!(
            p["actions"],
            serde_json::to_value(&r.actions).unwrap(),
            "{what} actions"
        );
        // SQLite's Julian days hold about 40 µs; PostgreSQL keeps microseconds.
        let t = r.timestamp.timestamp_micros() as f64 / 1e6;
        let pt = p["timestamp"].as_f64().unwrap();
        assert!(
            (t - pt).abs() < 1e-4,
            "{what}: timestamp {t} vs Python's {pt}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_python_creates() {
    let (db, dir) = common::sqlite().await;
    interop(db, sqlite_path(dir.path()), Creator::Python).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_rust_creates() {
    let (db, dir) = common::sqlite().await;
    interop(db, sqlite_path(dir.path()), Creator::Rust).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_python_creates() {
    if let (Some(db), Some(url)) = (common::postgres().await, common::pg_url()) {
        interop(db, url, Creator::Python).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_rust_creates() {
    if let (Some(db), Some(url)) = (common::postgres().await, common::pg_url()) {
        interop(db, url, Creator::Rust).await;
    }
}

fn sqlite_path(dir: &Path) -> String {
    dir.join("test.db").display().to_string()
}

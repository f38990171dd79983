//! SessionService: ADK semantics (generated ids, partial events, state deltas, `temp:`
//! keys, stale copies, recent-event windows) on both backends.
mod common;

use serde_json::json;
use session_pool::Database;
use session_pool::Error;
use session_pool::adk::{AdkConfig, Event, GetSessionConfig, JsonMap, SessionService};

fn map(v: serde_json::Value) -> JsonMap {
    v.as_object().unwrap().clone()
}

async fn service(db: &Database) -> SessionService {
    SessionService::new(common::adk_store(db, AdkConfig::default()).await)
}

async fn create_get_list_delete(db: Database) {
    let svc = service(&db).await;
    let generated = svc
        .create_session("app", "u1", Some(map(json!({"k": 1, "temp:x": 2}))), None)
        .await
        .unwrap();
    assert_eq!(generated.id.len(), 36, "a UUID: {}", generated.id);
    // An empty id is no id, as in every ADK service.
    let blank = svc
        .create_session("app3", "u1", None, Some(""))
        .await
        .unwrap();
    assert_eq!(blank.id.len(), 36, "a UUID: {}", blank.id);
    assert_eq!(
        generated.state,
        map(json!({"k": 1})),
        "temp: keys are not stored"
    );
    let named = svc
        .create_session("app", "u1", None, Some("chosen"))
        .await
        .unwrap();
    assert_eq!(named.id, "chosen");
    assert!(named.state.is_empty());
    svc.create_session("app", "u2", None, Some("other_user"))
        .await
        .unwrap();

    let cfg = GetSessionConfig::default();
    let got = svc
        .get_session("app", "u1", "chosen", &cfg)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, named);
    // Another app or user does not see it.
    assert!(
        svc.get_session("app", "u2", "chosen", &cfg)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        svc.get_session("other", "u1", "chosen", &cfg)
            .await
            .unwrap()
            .is_none()
    );

    let listed = svc.list_sessions("app", Some("u1")).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|s| s.events.is_empty()));
    assert_eq!(svc.list_sessions("app", None).await.unwrap().len(), 3);

    assert!(!svc.delete_session("app", "u2", "chosen").await.unwrap());
    assert!(svc.delete_session("app", "u1", "chosen").await.unwrap());
    assert!(
        svc.get_session("app", "u1", "chosen", &cfg)
            .await
            .unwrap()
            .is_none()
    );
}

async fn append_event_applies_deltas(db: Database) {
    let svc = service(&db).await;
    let mut s = svc
        .create_session("app", "u", Some(map(json!({"turns": 0}))), None)
        .await
        .unwrap();
    let v0 = s.last_update_time;
    let user = Event::text("user", "user", "hello")
        .with_state_delta("turns", json!(1))
        .with_state_delta("temp:scratch", json!("never stored"))
        .with_invocation_id("inv1");
    let stored = svc.append_event(&mut s, user).await.unwrap();
    assert!(!stored.actions.state_delta.contains_key("temp:scratch"));
    // The event comes back whole (its content lent to the write and returned).
    assert_eq!(stored.first_text(), Some("hello"));
    // `temp:` keys apply in memory for the rest of the invocation, and are never stored.
    assert_eq!(
        s.state,
        map(json!({"turns": 1, "temp:scratch": "never stored"}))
    );
    assert!(s.last_update_time > v0);
    assert_eq!(s.events, vec![stored.clone()]);

    // Partial events are neither stored nor applied.
    let mut partial = Event::text("model", "model", "hel").with_state_delta("turns", json!(99));
    partial.partial = Some(true);
    svc.append_event(&mut s, partial).await.unwrap();
    assert_eq!(s.state["turns"], 1);
    assert_eq!(s.events.len(), 1);

    let mut reply = Event::text("model", "model", "hi there").with_state_delta("mood", json!("ok"));
    reply.actions.transfer_to_agent = Some("helper".into());
    reply.turn_complete = Some(true);
    svc.append_event(&mut s, reply).await.unwrap();

    // What was stored is what the service holds in memory.
    let fresh = svc
        .get_session("app", "u", &s.id, &GetSessionConfig::default())
        .await
        .unwrap()
        .unwrap();
    s.state.remove("temp:scratch");
    assert_eq!(fresh, s);
    assert_eq!(
        fresh.events[1].actions.transfer_to_agent.as_deref(),
        Some("helper")
    );
    assert_eq!(fresh.events[0].first_text(), Some("hello"));
    assert_eq!(fresh.state, map(json!({"turns": 1, "mood": "ok"})));
}

async fn stale_copies_are_rejected(db: Database) {
    let svc = service(&db).await;
    let mut a = svc.create_session("app", "u", None, None).await.unwrap();
    let mut b = a.clone();
    svc.append_event(
        &mut a,
        Event::new("user").with_state_delta("by", json!("a")),
    )
    .await
    .unwrap();
    let before = b.clone();
    let err = svc
        .append_event(
            &mut b,
            Event::new("user").with_state_delta("by", json!("b")),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::StaleSession { .. }), "{err}");
    assert_eq!(b, before, "a failed append leaves the copy unchanged");
    // Reloaded, the write goes through and nothing is lost.
    let mut b = svc
        .get_session("app", "u", &b.id, &GetSessionConfig::default())
        .await
        .unwrap()
        .unwrap();
    svc.append_event(
        &mut b,
        Event::new("user").with_state_delta("also", json!("b")),
    )
    .await
    .unwrap();
    assert_eq!(b.state, map(json!({"by": "a", "also": "b"})));
    assert_eq!(b.events.len(), 2);

    // Appending to a session deleted meanwhile is a typed not-found.
    svc.delete_session("app", "u", &b.id).await.unwrap();
    let err = svc
        .append_event(&mut b, Event::new("user"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err}");
}

async fn recent_events_window(db: Database) {
    let svc = service(&db).await;
    let mut s = svc.create_session("app", "u", None, None).await.unwrap();
    for i in 0..6 {
        svc.append_event(&mut s, Event::text("user", "user", &format!("m{i}")))
            .await
            .unwrap();
    }
    let texts = |cfg: GetSessionConfig| {
        let svc = svc.clone();
        let id = s.id.clone();
        async move {
            svc.get_session("app", "u", &id, &cfg)
                .await
                .unwrap()
                .unwrap()
                .events
                .iter()
                .map(|e| e.first_text().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(texts(GetSessionConfig::default()).await.len(), 6);
    let recent = GetSessionConfig::default().num_recent_events(2);
    assert_eq!(texts(recent).await, ["m4", "m5"]);
    // SQLSpec 0.41.1 kept the oldest; on request, so does this.
    let oldest = GetSessionConfig::default()
        .num_recent_events(2)
        .keep_oldest();
    assert_eq!(texts(oldest).await, ["m0", "m1"]);
    // Inclusive, as ADK's services are; the store keeps the seed's exclusive `>`.
    let t3 = s.events[3].timestamp;
    let after = GetSessionConfig::default().after_timestamp(t3);
    assert_eq!(texts(after).await, ["m3", "m4", "m5"]);
    let after_recent = GetSessionConfig::default()
        .after_timestamp(t3)
        .num_recent_events(1);
    assert_eq!(texts(after_recent).await, ["m5"]);
    let stored = svc
        .store()
        .unwrap()
        .get_events(&s.id, Some(t3), None)
        .await
        .unwrap();
    assert_eq!(stored.len(), 2, "the store's after_timestamp is exclusive");
    let none = GetSessionConfig::default().num_recent_events(0);
    assert!(texts(none).await.is_empty());
}

/// Event fields the seed's columns have no place for round-trip through the service.
async fn extra_event_fields_round_trip(db: Database) {
    let svc = service(&db).await;
    let mut s = svc.create_session("app", "u", None, None).await.unwrap();
    let mut event = Event::text("model", "model", "answer");
    event.extra.insert(
        "usage_metadata".into(),
        json!({"prompt_token_count": 120, "candidates_token_count": 30, "total_token_count": 150}),
    );
    event.extra.insert(
        "citation_metadata".into(),
        json!({"citations": [{"uri": "https://example.com", "start_index": 0}]}),
    );
    event
        .extra
        .insert("field_of_a_later_adk".into(), json!({"nested": [1, 2, 3]}));
    event.custom_metadata = Some(json!({"trace_id": "abc"}));
    let stored = svc.append_event(&mut s, event.clone()).await.unwrap();
    let fresh = svc
        .get_session("app", "u", &s.id, &GetSessionConfig::default())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fresh.events, vec![stored.clone()]);
    assert_eq!(fresh.events[0].extra, event.extra);
    assert_eq!(
        fresh.events[0].custom_metadata,
        Some(json!({"trace_id": "abc"}))
    );
}

/// While another task appends, every read is one snapshot: the state's counter and the
/// events read agree.
async fn reads_are_one_snapshot(db: Database) {
    let svc = service(&db).await;
    let mut s = svc
        .create_session("app", "u", Some(map(json!({"n": -1}))), None)
        .await
        .unwrap();
    let id = s.id.clone();
    let writer = {
        let svc = svc.clone();
        tokio::spawn(async move {
            for i in 0..60 {
                let event = Event::text("user", "user", "x").with_state_delta("n", json!(i));
                svc.append_event(&mut s, event).await.unwrap();
            }
        })
    };
    let mut reads = 0;
    while !writer.is_finished() || reads == 0 {
        let got = svc
            .get_session("app", "u", &id, &GetSessionConfig::default())
            .await
            .unwrap()
            .unwrap();
        let n = got.state["n"].as_i64().unwrap();
        assert_eq!(
            n + 1,
            got.events.len() as i64,
            "state and events from one snapshot"
        );
        reads += 1;
    }
    writer.await.unwrap();
}

async fn bad_input(db: Database) {
    let svc = service(&db).await;
    let long = "x".repeat(129);
    for err in [
        svc.create_session(&long, "u", None, None)
            .await
            .unwrap_err(),
        svc.create_session("app", "u", None, Some(&long))
            .await
            .unwrap_err(),
        svc.get_session("app", "u", &long, &GetSessionConfig::default())
            .await
            .unwrap_err(),
        svc.delete_session("app", &long, "s").await.unwrap_err(),
    ] {
        assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    }
    let mut s = svc.create_session("app", "u", None, None).await.unwrap();
    let mut e = Event::new("user");
    e.id = long;
    let err = svc.append_event(&mut s, e).await.unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    assert!(s.events.is_empty());

    // U+0000 in an event's text or in a state value: PostgreSQL cannot store it (JSONB,
    // text), and says so as a typed error that names the character, with nothing written
    // and the session and pool fine; SQLite stores it and reads it back as it was.
    let postgres = db.dialect() == session_pool::Dialect::Postgres;
    let nul_text = Event::text("m", "model", "before\u{0}after");
    let nul_state = Event::new("m").with_state_delta("k", json!("a\u{0}b"));
    for e in [nul_text, nul_state] {
        match svc.append_event(&mut s, e).await {
            Err(err) => {
                assert!(postgres, "{err}");
                assert_eq!(
                    err.kind(),
                    session_pool::ErrorKind::InvalidArgument,
                    "{err:?}"
                );
                assert!(matches!(err.code(), Some("22P05" | "22021")), "{err:?}");
                assert!(err.to_string().contains("U+0000"), "{err}");
            }
            Ok(stored) => assert!(!postgres, "{stored:?}"),
        }
    }
    let fine = svc
        .append_event(&mut s, Event::text("m", "model", "fine"))
        .await
        .unwrap();
    let back = svc
        .get_session("app", "u", &s.id, &GetSessionConfig::default())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back, s, "what was stored is what the service holds");
    assert_eq!(back.events.last(), Some(&fine));
    if postgres {
        assert_eq!(back.events.len(), 1);
    } else {
        assert_eq!(back.events[0].first_text(), Some("before\u{0}after"));
        assert_eq!(back.state["k"], json!("a\u{0}b"));
    }
}

on_both!(
    extra_event_fields_round_trip,
    reads_are_one_snapshot,
    create_get_list_delete,
    append_event_applies_deltas,
    stale_copies_are_rejected,
    recent_events_window,
    bad_input,
);

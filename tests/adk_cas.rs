//! append_event_and_update_state: atomic, and a real compare-and-swap on the update time.
mod common;

use std::sync::Arc;

use serde_json::json;
use session_pool::adk::{AdkConfig, AdkStore, EventRecord};
use session_pool::{Database, Error};

fn event(id: String, session: &str) -> EventRecord {
    let mut e = EventRecord::new(id, session, "app", "u");
    e.author = Some("model".into());
    e
}

async fn appends_and_updates_atomically(db: Database) {
    let store = common::adk_store(&db, AdkConfig::default()).await;
    let created = store
        .create_session("s", "app", "u", &json!({"n": 0}), None)
        .await
        .unwrap();
    let updated = store
        .append_event_and_update_state(&event("e1".into(), "s"), &json!({"n": 1}), None)
        .await
        .unwrap();
    assert_eq!(updated.state, json!({"n": 1}));
    assert!(updated.update_time > created.update_time);
    assert_eq!(store.get_session("s").await.unwrap().unwrap(), updated);
    assert_eq!(store.get_events("s", None, None).await.unwrap().len(), 1);

    // With the version just read: succeeds and moves the version on.
    let next = store
        .append_event_and_update_state(
            &event("e2".into(), "s"),
            &json!({"n": 2}),
            Some(updated.update_time),
        )
        .await
        .unwrap();
    assert!(next.update_time > updated.update_time);
    // With the old version: stale, and neither the event nor the state is written.
    let err = store
        .append_event_and_update_state(
            &event("e3".into(), "s"),
            &json!({"n": 3}),
            Some(updated.update_time),
        )
        .await
        .unwrap_err();
    match err {
        Error::StaleSession {
            expected, actual, ..
        } => {
            assert_eq!(expected, updated.update_time);
            assert_eq!(actual, next.update_time);
        }
        other => panic!("expected StaleSession, got {other}"),
    }
    assert_eq!(store.get_events("s", None, None).await.unwrap().len(), 2);
    assert_eq!(
        store.get_session("s").await.unwrap().unwrap().state,
        json!({"n": 2})
    );

    // A duplicate event id fails the whole step: the state stays as it was.
    let err = store
        .append_event_and_update_state(&event("e2".into(), "s"), &json!({"n": 9}), None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AlreadyExists(_)), "{err}");
    assert_eq!(store.get_session("s").await.unwrap().unwrap(), next);

    for expected in [None, Some(next.update_time)] {
        let err = store
            .append_event_and_update_state(&event("e4".into(), "missing"), &json!({}), expected)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::NotFound(_)), "{err}");
    }
    let err = store
        .append_event_and_update_state(&event("e4".into(), "s"), &json!([]), None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
}

async fn racing_writers_from_one_version(db: Database) {
    let store = common::adk_store(&db, AdkConfig::default()).await;
    const WRITERS: usize = 4;
    for round in 0..20 {
        let sid = format!("race{round}");
        let v0 = store
            .create_session(&sid, "app", "u", &json!({}), None)
            .await
            .unwrap()
            .update_time;
        let barrier = Arc::new(tokio::sync::Barrier::new(WRITERS));
        let tasks: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (store, sid, barrier) = (store.clone(), sid.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    store
                        .append_event_and_update_state(
                            &event(format!("{sid}_{w}"), &sid),
                            &json!({ "winner": w }),
                            Some(v0),
                        )
                        .await
                })
            })
            .collect();
        let mut winners = Vec::new();
        for (w, t) in tasks.into_iter().enumerate() {
            match t.await.unwrap() {
                Ok(record) => winners.push((w, record)),
                Err(Error::StaleSession { expected, .. }) => assert_eq!(expected, v0),
                Err(other) => panic!("round {round}: unexpected {other}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: exactly one writer wins");
        let (w, record) = &winners[0];
        let stored = store.get_session(&sid).await.unwrap().unwrap();
        assert_eq!(&stored, record);
        assert_eq!(stored.state, json!({ "winner": w }));
        let events = store.get_events(&sid, None, None).await.unwrap();
        assert_eq!(events.len(), 1, "round {round}: losers wrote no event");
        assert_eq!(events[0].id, format!("{sid}_{w}"));
    }
}

/// Writers that reread and retry on a stale error lose nothing.
async fn retrying_writers_lose_nothing(db: Database) {
    let store: AdkStore = common::adk_store(&db, AdkConfig::default()).await;
    store
        .create_session("s", "app", "u", &json!({}), None)
        .await
        .unwrap();
    const WRITERS: usize = 4;
    const EACH: usize = 10;
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut stale = 0;
                for i in 0..EACH {
                    loop {
                        let current = store.get_session("s").await.unwrap().unwrap();
                        let mut state = current.state.clone();
                        state[format!("w{w}_{i}")] = json!(true);
                        match store
                            .append_event_and_update_state(
                                &event(format!("w{w}_{i}_{stale}"), "s"),
                                &state,
                                Some(current.update_time),
                            )
                            .await
                        {
                            Ok(_) => break,
                            Err(Error::StaleSession { .. }) => stale += 1,
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
                stale
            })
        })
        .collect();
    let mut stale_total = 0;
    for t in tasks {
        stale_total += t.await.unwrap();
    }
    let state = store.get_session("s").await.unwrap().unwrap().state;
    assert_eq!(state.as_object().unwrap().len(), WRITERS * EACH, "{state}");
    let events = store.get_events("s", None, None).await.unwrap();
    assert_eq!(events.len(), WRITERS * EACH);
    eprintln!(
        "{}: {} writes, {stale_total} stale retries",
        db.name(),
        WRITERS * EACH
    );
}

on_both!(
    appends_and_updates_atomically,
    racing_writers_from_one_version,
    retrying_writers_lose_nothing,
);

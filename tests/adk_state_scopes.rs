//! ADK's state scopes through the session service: `user:` keys shared by a user's
//! sessions, `app:` keys by the whole app, `temp:` keys never stored; app and user state
//! written atomically with the event, merged key by key under concurrency, and only when
//! a delta holds such keys.
mod common;

use serde_json::json;
use session_pool::adk::{AdkConfig, AdkStore, Event, GetSessionConfig, JsonMap, SessionService};
use session_pool::prelude::*;
use session_pool::{Database, Error, params};

fn map(v: serde_json::Value) -> JsonMap {
    v.as_object().unwrap().clone()
}

struct Fixture {
    svc: SessionService,
    app_table: String,
    user_table: String,
    session_table: String,
}

async fn fixture(db: &Database) -> Fixture {
    let (s, e) = (common::unique("scope_s"), common::unique("scope_e"));
    let (a, u) = (common::unique("scope_a"), common::unique("scope_u"));
    let config = AdkConfig::default()
        .session_table(&s)
        .events_table(&e)
        .app_state_table(&a)
        .user_state_table(&u);
    let store = AdkStore::new(common::fixed_pool(db, 8).await, config).unwrap();
    store.create_tables().await.unwrap();
    Fixture {
        svc: SessionService::new(store),
        app_table: a,
        user_table: u,
        session_table: s,
    }
}

/// A stored JSON column, read back raw (PostgreSQL JSONB, SQLite text).
async fn stored(
    db: &Database,
    sql: &str,
    args: &[session_pool::Value],
) -> Option<serde_json::Value> {
    let mut s = db.session();
    s.create().await.unwrap();
    let rows = s.execute_sql(sql, args).await.unwrap();
    rows.rows.first().map(|r| {
        let v: serde_json::Value = r.get(0).unwrap();
        match v {
            serde_json::Value::String(text) => serde_json::from_str(&text).unwrap(),
            other => other,
        }
    })
}

async fn user_keys_follow_the_user_and_app_keys_the_app(db: Database) {
    let f = fixture(&db).await;
    let cfg = GetSessionConfig::default();
    let mut first = f
        .svc
        .create_session("app", "ann", None, None)
        .await
        .unwrap();
    let event = Event::text("agent", "agent", "noted")
        .with_state_delta("user:name", json!("Ann"))
        .with_state_delta("app:greeting", json!("hello"))
        .with_state_delta("topic", json!("cats"));
    f.svc.append_event(&mut first, event).await.unwrap();

    // A new session of the same user sees the user's and the app's keys, not the topic.
    let second = f
        .svc
        .create_session("app", "ann", None, None)
        .await
        .unwrap();
    assert_eq!(
        second.state,
        map(json!({"user:name": "Ann", "app:greeting": "hello"}))
    );
    // Another user sees only the app's.
    let other = f
        .svc
        .create_session("app", "bob", None, None)
        .await
        .unwrap();
    assert_eq!(other.state, map(json!({"app:greeting": "hello"})));
    // Another app sees nothing.
    let elsewhere = f
        .svc
        .create_session("other_app", "ann", None, None)
        .await
        .unwrap();
    assert!(elsewhere.state.is_empty(), "{:?}", elsewhere.state);

    // get_session and list_sessions merge too.
    let got = f
        .svc
        .get_session("app", "ann", &first.id, &cfg)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        got.state,
        map(json!({"topic": "cats", "user:name": "Ann", "app:greeting": "hello"}))
    );
    let listed = f.svc.list_sessions("app", Some("bob")).await.unwrap();
    assert_eq!(listed[0].state, map(json!({"app:greeting": "hello"})));

    // Stored apart, without prefixes, as ADK's app_states / user_states hold them.
    let session_state = stored(
        &db,
        &format!("SELECT state FROM {} WHERE id = $1", f.session_table),
        &params![first.id.as_str()],
    )
    .await;
    assert_eq!(session_state, Some(json!({"topic": "cats"})));
    let user_state = stored(
        &db,
        &format!(
            "SELECT state FROM {} WHERE app_name = $1 AND user_id = $2",
            f.user_table
        ),
        &params!["app", "ann"],
    )
    .await;
    assert_eq!(user_state, Some(json!({"name": "Ann"})));
    let app_state = stored(
        &db,
        &format!("SELECT state FROM {} WHERE app_name = $1", f.app_table),
        &params!["app"],
    )
    .await;
    assert_eq!(app_state, Some(json!({"greeting": "hello"})));
}

async fn create_session_splits_its_initial_state(db: Database) {
    let f = fixture(&db).await;
    let initial = map(json!({"k": 1, "user:lang": "fr", "app:v": 2, "temp:t": 3}));
    let s = f
        .svc
        .create_session("app", "u", Some(initial), None)
        .await
        .unwrap();
    assert_eq!(s.state, map(json!({"k": 1, "user:lang": "fr", "app:v": 2})));
    let next = f.svc.create_session("app", "u", None, None).await.unwrap();
    assert_eq!(next.state, map(json!({"user:lang": "fr", "app:v": 2})));
}

async fn temp_keys_live_in_memory_only(db: Database) {
    let f = fixture(&db).await;
    let mut s = f.svc.create_session("app", "u", None, None).await.unwrap();
    let event = Event::text("agent", "agent", "x").with_state_delta("temp:step", json!(7));
    let appended = f.svc.append_event(&mut s, event).await.unwrap();
    assert_eq!(
        s.state["temp:step"], 7,
        "visible for the rest of the invocation"
    );
    assert!(
        appended.actions.state_delta.is_empty(),
        "not in the stored event"
    );
    let fresh = f
        .svc
        .get_session("app", "u", &s.id, &GetSessionConfig::default())
        .await
        .unwrap()
        .unwrap();
    assert!(fresh.state.is_empty(), "{:?}", fresh.state);
    assert!(fresh.events[0].actions.state_delta.is_empty());
}

async fn scope_rows_are_written_only_when_a_delta_has_such_keys(db: Database) {
    let f = fixture(&db).await;
    let mut s = f.svc.create_session("app", "u", None, None).await.unwrap();
    for i in 0..3 {
        let event = Event::text("agent", "agent", "x").with_state_delta("n", json!(i));
        f.svc.append_event(&mut s, event).await.unwrap();
    }
    let mut admin = db.session();
    admin.create().await.unwrap();
    for table in [&f.app_table, &f.user_table] {
        let rows = admin
            .execute_sql(&format!("SELECT count(*) AS n FROM {table}"), &[])
            .await
            .unwrap();
        assert_eq!(rows.one().unwrap().get::<i64>("n").unwrap(), 0, "{table}");
    }
}

async fn a_stale_append_writes_no_scope(db: Database) {
    let f = fixture(&db).await;
    let mut a = f.svc.create_session("app", "u", None, None).await.unwrap();
    let mut b = a.clone();
    f.svc
        .append_event(
            &mut a,
            Event::text("agent", "agent", "a").with_state_delta("user:x", json!(1)),
        )
        .await
        .unwrap();
    let err = f
        .svc
        .append_event(
            &mut b,
            Event::text("agent", "agent", "b")
                .with_state_delta("user:y", json!(2))
                .with_state_delta("app:z", json!(3)),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::StaleSession { .. }), "{err}");
    let fresh = f.svc.create_session("app", "u", None, None).await.unwrap();
    assert_eq!(fresh.state, map(json!({"user:x": 1})));
}

async fn concurrent_appends_keep_every_users_keys(db: Database) {
    let f = fixture(&db).await;
    const N: usize = 8;
    let mut tasks = Vec::new();
    for i in 0..N {
        let svc = f.svc.clone();
        tasks.push(tokio::spawn(async move {
            // Two sessions per user, and every session writes an app key too.
            let user = format!("user{}", i % 2);
            let mut s = svc.create_session("app", &user, None, None).await?;
            let event = Event::text("agent", "agent", "x")
                .with_state_delta(format!("user:k{i}"), json!(i))
                .with_state_delta(format!("app:k{i}"), json!(i));
            svc.append_event(&mut s, event).await?;
            Ok::<_, Error>(())
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    for u in 0..2 {
        let s = f
            .svc
            .create_session("app", &format!("user{u}"), None, None)
            .await
            .unwrap();
        for i in 0..N {
            assert_eq!(s.state[&format!("app:k{i}")], i, "app key {i} kept");
            let user_key = format!("user:k{i}");
            if i % 2 == u {
                assert_eq!(s.state[&user_key], i, "user{u}: {user_key} kept");
            } else {
                assert!(!s.state.contains_key(&user_key), "user{u} sees {user_key}");
            }
        }
    }
}

/// Sessions created at once with `app:` and `user:` keys in their initial state, in one
/// app, by two users: every create succeeds and every key is kept. (On PostgreSQL the
/// create's transaction ran `SERIALIZABLE`, and two upserts of the app's row at once
/// failed one with a serialization failure, 40001.)
async fn concurrent_creates_keep_every_scope_key(db: Database) {
    let f = fixture(&db).await;
    const N: usize = 8;
    let mut tasks = Vec::new();
    for round in 0..3 {
        for i in 0..N {
            let svc = f.svc.clone();
            tasks.push(tokio::spawn(async move {
                let user = format!("user{}", i % 2);
                let state = map(json!({
                    format!("app:k{round}_{i}"): i,
                    format!("user:k{round}_{i}"): i,
                    "own": i,
                }));
                svc.create_session("app", &user, Some(state), None).await
            }));
        }
        for t in tasks.drain(..) {
            let s = t.await.unwrap().unwrap();
            assert_eq!(
                s.state["own"],
                s.state[&format!("app:k{round}_{}", s.state["own"])]
            );
        }
    }
    let app = f
        .svc
        .create_session("app", "user0", None, None)
        .await
        .unwrap();
    for round in 0..3 {
        for i in 0..N {
            assert_eq!(app.state[&format!("app:k{round}_{i}")], i, "app key kept");
            let user_key = format!("user:k{round}_{i}");
            if i % 2 == 0 {
                assert_eq!(app.state[&user_key], i, "{user_key} kept");
            } else {
                assert!(!app.state.contains_key(&user_key), "user0 sees {user_key}");
            }
        }
    }
}

async fn get_user_state_reads_the_users_keys(db: Database) {
    let f = fixture(&db).await;
    assert!(f.svc.get_user_state("app", "ann").await.unwrap().is_empty());
    let mut s = f
        .svc
        .create_session(
            "app",
            "ann",
            Some(map(json!({"user:name": "Ann", "k": 1}))),
            None,
        )
        .await
        .unwrap();
    let e = Event::new("agent").with_state_delta("user:seen", json!(true));
    f.svc.append_event(&mut s, e).await.unwrap();
    assert_eq!(
        f.svc.get_user_state("app", "ann").await.unwrap(),
        map(json!({"name": "Ann", "seen": true}))
    );
    assert!(
        f.svc
            .get_user_state("other", "ann")
            .await
            .unwrap()
            .is_empty()
    );
    let err = f.svc.get_user_state("app", "").await.unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
}

on_both!(
    get_user_state_reads_the_users_keys,
    user_keys_follow_the_user_and_app_keys_the_app,
    create_session_splits_its_initial_state,
    temp_keys_live_in_memory_only,
    scope_rows_are_written_only_when_a_delta_has_such_keys,
    a_stale_append_writes_no_scope,
    concurrent_appends_keep_every_users_keys,
    concurrent_creates_keep_every_scope_key,
);

//! `SessionService::append_events`: several events appended in order, all or none, with
//! the same effect as appending them one by one (ADK 2.15's `append_events`), on the
//! store's tables and on google-adk's `DatabaseSessionService` tables in each form they
//! come in (JSON and JSONB columns, schema version 0, `SqliteSessionService`'s file).
mod common;

use serde_json::json;
use session_pool::adk::{
    AdkConfig, AgentSession, DatabaseSessionTables, Event, GetSessionConfig, JsonMap,
    SessionService,
};
use session_pool::prelude::*;
use session_pool::{Database, Error};

/// Runs `async fn name(svc: SessionService)` on every layout, on SQLite files and on
/// PostgreSQL (the google-adk tables, whose names are fixed, in a schema of their own).
macro_rules! on_layouts {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use crate::common;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn store_sqlite() {
                let (db, _dir) = common::sqlite().await;
                super::$name(super::store(&db).await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn store_postgres() {
                if let Some(db) = common::postgres().await {
                    super::$name(super::store(&db).await).await
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn tables_sqlite() {
                let (db, _dir) = common::sqlite().await;
                super::$name(super::tables(&db).await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn tables_postgres_json() {
                if let Some((db, _, _)) = common::postgres_in_schema("adkbatch").await {
                    super::$name(super::tables(&db).await).await
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn tables_postgres_jsonb() {
                if let Some((db, _, _)) = common::postgres_in_schema("adkbatch").await {
                    super::$name(super::jsonb_tables(&db).await).await
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite_session_service_tables() {
                let (db, _dir) = common::sqlite().await;
                common::adk_tables::sqlite_service_tables(&db).await;
                super::$name(super::tables(&db).await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn legacy_sqlite() {
                let (db, _dir) = common::sqlite().await;
                common::adk_tables::make_legacy_tables(&db).await;
                super::$name(super::tables(&db).await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn legacy_postgres() {
                if let Some((db, _, _)) = common::postgres_in_schema("adkbatch").await {
                    common::adk_tables::make_legacy_tables(&db).await;
                    super::$name(super::tables(&db).await).await
                }
            }
        }
    )*};
}

on_layouts!(
    like_one_by_one,
    all_or_none,
    nothing_to_store,
    concurrent_calls,
    many_events
);

async fn store(db: &Database) -> SessionService {
    SessionService::new(common::adk_store(db, AdkConfig::default()).await)
}

/// A service on google-adk's tables, made (around version 0's, when they are there) by
/// `create_tables`.
async fn tables(db: &Database) -> SessionService {
    let tables = DatabaseSessionTables::new(common::fixed_pool(db, 4).await);
    tables.create_tables().await.unwrap();
    SessionService::on_tables(tables)
}

/// A service on google-adk's tables with `JSONB` columns, as google-adk before 2.15 made
/// them; the service learns them at its first call.
async fn jsonb_tables(db: &Database) -> SessionService {
    tables(db).await;
    let mut admin = db.session();
    admin.create().await.unwrap();
    for (table, column) in [
        ("sessions", "state"),
        ("app_states", "state"),
        ("user_states", "state"),
        ("events", "event_data"),
    ] {
        let ddl =
            format!("ALTER TABLE {table} ALTER COLUMN {column} TYPE jsonb USING {column}::jsonb");
        admin.execute_update(&ddl, &[]).await.unwrap();
    }
    SessionService::on_tables(DatabaseSessionTables::new(common::fixed_pool(db, 4).await))
}

fn map(v: serde_json::Value) -> JsonMap {
    v.as_object().unwrap().clone()
}

fn all() -> GetSessionConfig {
    GetSessionConfig::default()
}

/// A turn's events, their ids starting with `tag`: a user message, a partial (streamed)
/// chunk, the model's answer and a closing event, with deltas in every scope.
fn turn(tag: &str) -> Vec<Event> {
    let mut chunk = Event::text("model", "model", "hel").with_state_delta("n", json!(99));
    chunk.partial = Some(true);
    let mut events = vec![
        Event::text("user", "user", "hello")
            .with_state_delta("n", json!(1))
            .with_state_delta("user:seen", json!(1))
            .with_state_delta("temp:scratch", json!("never stored"))
            .with_invocation_id("inv-1"),
        chunk,
        Event::text("model", "model", "hi there")
            .with_state_delta("n", json!(2))
            .with_state_delta("mood", json!("ok"))
            .with_state_delta("app:turns", json!(1))
            .with_invocation_id("inv-1"),
        Event::new("model")
            .with_state_delta("user:seen", json!(2))
            .with_state_delta("last", json!(["done"]))
            .with_invocation_id("inv-1"),
    ];
    for (i, event) in events.iter_mut().enumerate() {
        event.id = format!("{tag}-{i}");
    }
    events
}

async fn fresh(svc: &SessionService, s: &AgentSession) -> AgentSession {
    svc.get_session(&s.app_name, &s.user_id, &s.id, &all())
        .await
        .unwrap()
        .expect("the session is there")
}

/// The stored part of an event, which appending one by one and in one call must agree on.
fn stored_part(e: &Event) -> (Option<&str>, &str, &JsonMap, Option<&str>) {
    (
        e.first_text(),
        e.author.as_str(),
        &e.actions.state_delta,
        e.invocation_id.as_deref(),
    )
}

/// One session gets a turn's events one by one, another (of another user) in one call:
/// both end with the same state, events and user state, and what is stored is what the
/// service holds.
async fn like_one_by_one(svc: SessionService) {
    let init = map(json!({"n": 0, "user:seen": 0}));
    let mut one = svc
        .create_session("app", "u1", Some(init.clone()), Some("one"))
        .await
        .unwrap();
    let mut many = svc
        .create_session("app", "u2", Some(init), Some("many"))
        .await
        .unwrap();
    let mut singly = Vec::new();
    for event in turn("o") {
        singly.push(svc.append_event(&mut one, event).await.unwrap());
    }
    let before = many.last_update_time;
    let returned = svc.append_events(&mut many, turn("m")).await.unwrap();

    // Every event comes back, in order, the partial one as it was given.
    let ids: Vec<_> = returned.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["m-0", "m-1", "m-2", "m-3"]);
    assert_eq!(returned[1].partial, Some(true));
    assert_eq!(returned[1].actions.state_delta, map(json!({"n": 99})));
    assert!(!returned[0].actions.state_delta.contains_key("temp:scratch"));
    for (a, b) in singly.iter().zip(&returned) {
        assert_eq!(stored_part(a), stored_part(b));
    }

    // The same effect in memory: `temp:` keys applied, the partial event not.
    let expected = map(json!({
        "n": 2, "mood": "ok", "last": ["done"], "user:seen": 2,
        "temp:scratch": "never stored", "app:turns": 1,
    }));
    assert_eq!(many.state, expected);
    assert!(many.last_update_time > before);
    assert_eq!(many.events.len(), 3);
    assert_eq!(
        many.events.iter().map(stored_part).collect::<Vec<_>>(),
        one.events.iter().map(stored_part).collect::<Vec<_>>()
    );

    // The same effect stored, and what is stored is what the service holds.
    let mut stored = fresh(&svc, &many).await;
    many.state.remove("temp:scratch");
    assert_eq!(stored, many);
    assert_eq!(
        svc.get_user_state("app", "u2").await.unwrap(),
        svc.get_user_state("app", "u1").await.unwrap()
    );
    assert_eq!(
        svc.get_user_state("app", "u2").await.unwrap(),
        map(json!({"seen": 2}))
    );
    let one_stored = fresh(&svc, &one).await;
    assert_eq!(one_stored.state["n"], stored.state["n"]);

    // The version the call left is the stored one: the next append goes through.
    svc.append_event(
        &mut stored,
        Event::new("user").with_state_delta("n", json!(3)),
    )
    .await
    .unwrap();
    assert_eq!(fresh(&svc, &stored).await.state["n"], 3);
}

/// A call that fails anywhere stores none of its events and none of their deltas, in any
/// scope, and leaves the caller's copy as it was.
async fn all_or_none(svc: SessionService) {
    let mut s = svc
        .create_session(
            "app",
            "u",
            Some(map(json!({"k": 0, "user:seen": 0}))),
            Some("s"),
        )
        .await
        .unwrap();
    let mut taken = Event::text("user", "user", "first");
    taken.id = "taken".into();
    svc.append_event(&mut s, taken).await.unwrap();
    let stored = fresh(&svc, &s).await;
    assert_eq!(stored, s);

    // The second event's id is taken: the first, written before it in the same step,
    // goes too.
    let mut first = Event::text("user", "user", "again")
        .with_state_delta("k", json!(1))
        .with_state_delta("user:seen", json!(5))
        .with_state_delta("app:flag", json!(true));
    first.id = "fresh-1".into();
    let mut second = Event::text("model", "model", "clash");
    second.id = "taken".into();
    let copy = s.clone();
    let err = svc
        .append_events(&mut s, vec![first.clone(), second])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AlreadyExists(_)), "{err:?}");
    assert_eq!(s, copy, "a failed call leaves the copy unchanged");
    nothing_stored(&svc, &s, "an id taken").await;

    // One id twice in one call is refused before anything is written.
    let mut twin = Event::new("model");
    twin.id = "fresh-1".into();
    let err = svc
        .append_events(&mut s, vec![first.clone(), twin])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    assert_eq!(s, copy);
    nothing_stored(&svc, &s, "one id twice").await;

    // A stale copy: another writer appended since it was read.
    let mut stale = s.clone();
    let mut other = Event::new("user").with_state_delta("k", json!(7));
    other.id = "other".into();
    svc.append_event(&mut s, other).await.unwrap();
    let err = svc
        .append_events(&mut stale, vec![first.clone(), Event::new("model")])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::StaleSession { .. }), "{err:?}");
    let now = fresh(&svc, &s).await;
    assert_eq!(now, s, "the other writer's append alone");
    assert_eq!(now.state["k"], 7);

    // A session deleted meanwhile is a typed not-found.
    svc.delete_session("app", "u", "s").await.unwrap();
    let err = svc
        .append_events(&mut s, vec![first, Event::new("model")])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
}

/// Nothing of a failed call is stored: `s` is as it was, and so are the user's and the
/// app's state.
async fn nothing_stored(svc: &SessionService, s: &AgentSession, why: &str) {
    assert_eq!(&fresh(svc, s).await, s, "{why}: the session as it was");
    assert_eq!(
        svc.get_user_state("app", "u").await.unwrap(),
        map(json!({"seen": 0})),
        "{why}: the user's state as it was"
    );
    let other = svc
        .create_session("app", "probe", None, None)
        .await
        .unwrap();
    assert!(
        !other.state.contains_key("app:flag"),
        "{why}: the app's state as it was"
    );
    svc.delete_session("app", "probe", &other.id).await.unwrap();
}

/// Nothing to store writes nothing: no events, or only partial ones.
async fn nothing_to_store(svc: SessionService) {
    let mut s = svc.create_session("app", "u", None, None).await.unwrap();
    assert!(
        svc.append_events(&mut s, Vec::new())
            .await
            .unwrap()
            .is_empty()
    );
    let mut chunk = Event::text("model", "model", "par").with_state_delta("k", json!(1));
    chunk.partial = Some(true);
    let copy = s.clone();
    let back = svc
        .append_events(&mut s, vec![chunk.clone(), chunk])
        .await
        .unwrap();
    assert_eq!(back.len(), 2);
    assert_eq!(back[0].actions.state_delta, map(json!({"k": 1})));
    assert_eq!(s, copy);
    assert_eq!(fresh(&svc, &s).await, s);
}

/// Calls on several sessions of one user at once, each merging keys into the user's and
/// the app's shared rows: every call goes through (none aborts on the shared rows or
/// deadlocks on them), and no key is lost.
async fn concurrent_calls(svc: SessionService) {
    const WRITERS: usize = 6;
    const CALLS: usize = 5;
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let svc = svc.clone();
        tasks.push(tokio::spawn(async move {
            let mut s = svc
                .create_session("app", "u", None, Some(&format!("w{w}")))
                .await
                .unwrap();
            for c in 0..CALLS {
                let key = format!("{w}-{c}");
                let asked = Event::text("user", "user", "q")
                    .with_state_delta(format!("user:{key}"), json!(c));
                let answer = Event::text("model", "model", "a")
                    .with_state_delta(format!("app:{key}"), json!(c))
                    .with_state_delta("calls", json!(c + 1));
                svc.append_events(&mut s, vec![asked, answer])
                    .await
                    .unwrap();
            }
            s
        }));
    }
    for task in tasks {
        let s = task.await.unwrap();
        let stored = fresh(&svc, &s).await;
        assert_eq!(stored.events.len(), 2 * CALLS);
        assert_eq!(stored.state["calls"], CALLS);
    }
    let user = svc.get_user_state("app", "u").await.unwrap();
    assert_eq!(user.len(), WRITERS * CALLS, "{user:?}");
    let s = svc
        .create_session("app", "reader", None, None)
        .await
        .unwrap();
    let app_keys = s.state.keys().filter(|k| k.starts_with("app:")).count();
    assert_eq!(app_keys, WRITERS * CALLS);
}

/// More events in one call than PostgreSQL's store writes in one statement (64): all of
/// them, in order, with every delta.
async fn many_events(svc: SessionService) {
    const N: usize = 70;
    let mut s = svc.create_session("app", "u", None, None).await.unwrap();
    let events: Vec<_> = (0..N)
        .map(|i| {
            let mut event = Event::text("model", "model", &format!("part {i}"))
                .with_state_delta("n", json!(i))
                .with_state_delta(format!("user:k{}", i % 7), json!(i));
            event.id = format!("ev-{i:03}");
            event
        })
        .collect();
    let back = svc.append_events(&mut s, events).await.unwrap();
    assert_eq!(back.len(), N);
    let stored = fresh(&svc, &s).await;
    assert_eq!(stored, s);
    let ids: Vec<_> = stored.events.iter().map(|e| e.id.clone()).collect();
    let expected: Vec<_> = (0..N).map(|i| format!("ev-{i:03}")).collect();
    assert_eq!(ids, expected);
    assert_eq!(stored.state["n"], N - 1);
    let user = svc.get_user_state("app", "u").await.unwrap();
    assert_eq!(user.len(), 7);
    assert_eq!(user["k6"], 69);
}

/// On google-adk's tables on PostgreSQL the events of one call take one statement, whose
/// parameters the protocol counts in 16 bits: a call past that is refused up front, with
/// nothing stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_past_one_statement_is_refused() {
    let Some((db, _, _)) = common::postgres_in_schema("adkbatch").await else {
        return;
    };
    let svc = tables(&db).await;
    let mut s = svc.create_session("app", "u", None, None).await.unwrap();
    let events: Vec<_> = (0..20_000).map(|_| Event::new("model")).collect();
    let copy = s.clone();
    let err = svc.append_events(&mut s, events).await.unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    assert!(err.to_string().contains("smaller batches"), "{err}");
    assert_eq!(s, copy);
    assert!(fresh(&svc, &s).await.events.is_empty());
}

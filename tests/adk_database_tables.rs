//! `SessionService::on_tables`: ADK's semantics on google-adk's own `DatabaseSessionService`
//! tables (schema version 1), on a SQLite file and on PostgreSQL (each test in a schema of
//! its own, since the table names are fixed), and most of them again on a SQLite file of
//! google-adk's `SqliteSessionService`. What Python reads of them is
//! `tests/adk_database_interop.rs`.
mod common;

use common::adk_tables;

use std::time::Duration;

use serde_json::json;
use session_pool::adk::{DatabaseSessionTables, Event, GetSessionConfig, JsonMap, SessionService};
use session_pool::prelude::*;
use session_pool::{Database, Error};

/// Runs `async fn name(db: Database)` on a SQLite file and on PostgreSQL in a fresh schema;
/// with `+ sqlite_service`, also on a SQLite file holding google-adk's
/// `SqliteSessionService` tables (`REAL` times, no metadata table), which the test's
/// service then finds and keeps to.
macro_rules! on_both_schemas {
    ($($name:ident $(+ $service:ident)?),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let (db, _dir) = crate::common::sqlite().await;
                super::$name(db).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some((db, _, _)) = crate::common::postgres_in_schema("adkdb").await {
                    super::$name(db).await
                }
            }
            $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $service() {
                let (db, _dir) = crate::common::sqlite().await;
                crate::common::adk_tables::sqlite_service_tables(&db).await;
                super::$name(db.clone()).await;
                super::all_times_real(&db).await;
            }
            )?
        }
    )*};
}

on_both_schemas!(
    scopes_round_trip + sqlite_service,
    stale_copies_and_unknown_sessions + sqlite_service,
    recent_and_after + sqlite_service,
    concurrent_appends + sqlite_service,
    legacy_schema_used,
    tables_made_again_at_the_other_version,
    other_version_refused,
    missing_tables_named,
    bad_input_refused + sqlite_service,
    padded_ids + sqlite_service,
    cut_off_calls_leave_no_lock_and_no_checkout + sqlite_service,
);

/// Session ids with whitespace around them: `DatabaseSessionService` keeps them as given;
/// google-adk 2.x's `SqliteSessionService` takes them trimmed, unless a session is stored
/// under the padded id (one migrated from the other service).
async fn padded_ids(db: Database) {
    let svc = service(&db).await;
    let sqlite_service = adk_tables::table_count(&db, "adk_internal_metadata").await == 0;
    let created = svc
        .create_session("app", "u", None, Some(" a "))
        .await
        .unwrap();
    let get = async |id: &str| {
        svc.get_session("app", "u", id, &all())
            .await
            .unwrap()
            .map(|s| s.id)
    };
    if sqlite_service {
        assert_eq!(created.id, "a");
        assert_eq!(get(" a ").await.as_deref(), Some("a"));
        assert_eq!(get("a").await.as_deref(), Some("a"));
        // A padded id stored as such (migrated) is that session.
        let mut admin = db.session();
        admin.create().await.unwrap();
        admin
            .execute_update(
                "INSERT INTO sessions VALUES ('app', 'u', ' b ', '{}', 1.5e9, 1.5e9)",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(get(" b ").await.as_deref(), Some(" b "));
        assert_eq!(get("b").await, None);
        // Blank once trimmed: a fresh id.
        let blank = svc
            .create_session("app", "u", None, Some("  "))
            .await
            .unwrap();
        assert_eq!(blank.id.len(), 36, "{}", blank.id);
        assert!(svc.delete_session("app", "u", " a ").await.unwrap());
        assert_eq!(get("a").await, None);
    } else {
        assert_eq!(created.id, " a ");
        assert_eq!(get(" a ").await.as_deref(), Some(" a "));
        assert_eq!(get("a").await, None);
        assert!(!svc.delete_session("app", "u", "a").await.unwrap());
        assert!(svc.delete_session("app", "u", " a ").await.unwrap());
    }
}

/// Every time the test left on a `SqliteSessionService` file is a `REAL`, as Python
/// compares them.
async fn all_times_real(db: &Database) {
    let mut admin = db.session();
    admin.create().await.unwrap();
    let rows = admin
        .execute_sql(
            "SELECT (SELECT count(*) FROM sessions WHERE typeof(update_time) <> 'real' \
             OR typeof(create_time) <> 'real') \
             + (SELECT count(*) FROM events WHERE typeof(timestamp) <> 'real') \
             + (SELECT count(*) FROM app_states WHERE typeof(update_time) <> 'real') \
             + (SELECT count(*) FROM user_states WHERE typeof(update_time) <> 'real')",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.rows[0].get::<i64>(0).unwrap(), 0);
}

async fn service(db: &Database) -> SessionService {
    let pool = common::fixed_pool(db, 4).await;
    let tables = DatabaseSessionTables::new(pool);
    tables.create_tables().await.unwrap();
    // Again, as each app instance does at start-up: nothing changes.
    tables.create_tables().await.unwrap();
    SessionService::on_tables(tables)
}

fn map(v: serde_json::Value) -> JsonMap {
    v.as_object().unwrap().clone()
}

fn all() -> GetSessionConfig {
    GetSessionConfig::default()
}

async fn scopes_round_trip(db: Database) {
    let svc = service(&db).await;
    let state = map(json!({"a": 1, "app:theme": "dark", "user:lang": "fr", "temp:x": 1}));
    let mut s = svc
        .create_session("app", "u1", Some(state), Some("s1"))
        .await
        .unwrap();
    assert_eq!(
        s.state,
        map(json!({"a": 1, "app:theme": "dark", "user:lang": "fr"}))
    );
    let mut event = Event::text("agent", "model", "hello")
        .with_invocation_id("inv-1")
        .with_state_delta("b", json!(2))
        .with_state_delta("user:lang", json!("de"))
        .with_state_delta("temp:y", json!(3));
    event.branch = Some("root.child".into());
    event.long_running_tool_ids = Some(vec!["call-1".into()]);
    event.turn_complete = Some(true);
    event
        .extra
        .insert("usage_metadata".into(), json!({"total_token_count": 12}));
    let stored = svc.append_event(&mut s, event).await.unwrap();
    assert_eq!(s.state["temp:y"], 3, "temp keys apply in memory");
    assert!(!stored.actions.state_delta.contains_key("temp:y"));
    assert_eq!(s.last_update_time, stored.timestamp);

    let read = svc
        .get_session("app", "u1", "s1", &all())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        read.state,
        map(json!({"a": 1, "b": 2, "app:theme": "dark", "user:lang": "de"}))
    );
    assert_eq!(read.events, vec![stored]);
    assert_eq!(read.last_update_time, s.last_update_time);

    assert_eq!(
        svc.get_user_state("app", "u1").await.unwrap(),
        map(json!({"lang": "de"}))
    );
    assert!(svc.get_user_state("app", "u9").await.unwrap().is_empty());

    // The app's keys reach its other users' sessions, the user's do not.
    let other = svc
        .create_session("app", "u2", None, Some("s2"))
        .await
        .unwrap();
    assert_eq!(other.state, map(json!({"app:theme": "dark"})));
    // The same id for another user is another session (the key is app, user and id).
    svc.create_session("app", "u2", None, Some("s1"))
        .await
        .unwrap();
    // Not another app's or user's.
    assert!(
        svc.get_session("app", "u3", "s1", &all())
            .await
            .unwrap()
            .is_none()
    );

    let listed = svc.list_sessions("app", None).await.unwrap();
    let ids: Vec<_> = listed
        .iter()
        .map(|s| (s.user_id.as_str(), s.id.as_str()))
        .collect();
    // ADK's order: oldest update first (u1's s1 was last updated by its append, before
    // the other two were created).
    assert_eq!(ids, [("u1", "s1"), ("u2", "s2"), ("u2", "s1")]);
    assert_eq!(listed[0].state["user:lang"], "de");
    assert_eq!(listed[1].state, map(json!({"app:theme": "dark"})));
    assert_eq!(svc.list_sessions("app", Some("u2")).await.unwrap().len(), 2);

    assert!(svc.delete_session("app", "u1", "s1").await.unwrap());
    assert!(!svc.delete_session("app", "u1", "s1").await.unwrap());
    assert!(
        svc.get_session("app", "u1", "s1", &all())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        svc.get_session("app", "u2", "s1", &all())
            .await
            .unwrap()
            .is_some()
    );
}

async fn stale_copies_and_unknown_sessions(db: Database) {
    let svc = service(&db).await;
    let mut a = svc
        .create_session("app", "u", None, Some("s"))
        .await
        .unwrap();
    let mut b = a.clone();
    svc.append_event(&mut a, Event::text("user", "user", "one"))
        .await
        .unwrap();
    let err = svc
        .append_event(
            &mut b,
            Event::text("user", "user", "two").with_state_delta("k", json!(1)),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::StaleSession { .. }), "{err}");
    assert!(
        b.events.is_empty() && b.state.is_empty(),
        "unchanged on error"
    );
    let read = svc
        .get_session("app", "u", "s", &all())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.events.len(), 1);
    assert!(!read.state.contains_key("k"));

    let err = svc
        .create_session("app", "u", None, Some("s"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AlreadyExists(_)), "{err}");

    svc.delete_session("app", "u", "s").await.unwrap();
    let err = svc
        .append_event(&mut a, Event::text("user", "user", "three"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err}");
}

async fn recent_and_after(db: Database) {
    let svc = service(&db).await;
    let mut s = svc.create_session("app", "u", None, None).await.unwrap();
    let base = chrono::Utc::now();
    let mut times = Vec::new();
    for i in 0..5 {
        let mut e = Event::text("user", "user", &format!("m{i}"));
        e.timestamp = base + chrono::Duration::milliseconds(10 * i);
        times.push(svc.append_event(&mut s, e).await.unwrap().timestamp);
    }
    let texts = |c: GetSessionConfig| {
        let svc = svc.clone();
        let id = s.id.clone();
        async move {
            svc.get_session("app", "u", &id, &c)
                .await
                .unwrap()
                .unwrap()
                .events
                .iter()
                .map(|e| e.first_text().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(texts(all().num_recent_events(2)).await, ["m3", "m4"]);
    assert_eq!(
        texts(all().num_recent_events(2).keep_oldest()).await,
        ["m0", "m1"]
    );
    assert_eq!(
        texts(all().after_timestamp(times[2])).await,
        ["m2", "m3", "m4"]
    );
    assert!(texts(all().num_recent_events(0)).await.is_empty());
    assert_eq!(texts(all()).await.len(), 5);
}

async fn concurrent_appends(db: Database) {
    let svc = service(&db).await;
    // One session's copies: one append wins, the others are stale.
    let s = svc
        .create_session("app", "u", None, Some("hot"))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..6 {
        let (svc, mut copy) = (svc.clone(), s.clone());
        tasks.push(tokio::spawn(async move {
            svc.append_event(&mut copy, Event::text("user", "user", &format!("{i}")))
                .await
        }));
    }
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => won += 1,
            Err(Error::StaleSession { .. }) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(won, 1);
    // Sessions of one user append `user:` keys at once: every key is kept.
    let mut tasks = Vec::new();
    for i in 0..6 {
        let svc = svc.clone();
        tasks.push(tokio::spawn(async move {
            let mut s = svc.create_session("app", "u", None, None).await.unwrap();
            let e = Event::new("agent").with_state_delta(format!("user:k{i}"), json!(i));
            svc.append_event(&mut s, e).await.unwrap();
        }));
    }
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(30), t)
            .await
            .unwrap()
            .unwrap();
    }
    let s = svc.create_session("app", "u", None, None).await.unwrap();
    for i in 0..6 {
        assert_eq!(s.state[&format!("user:k{i}")], i, "{:?}", s.state);
    }
    // Sessions created at once with `app:` and `user:` keys: every create succeeds and
    // every key is kept.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let svc = svc.clone();
        tasks.push(tokio::spawn(async move {
            let state = map(json!({format!("app:c{i}"): i, format!("user:c{i}"): i}));
            svc.create_session("app", "u", Some(state), None).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let s = svc.create_session("app", "u", None, None).await.unwrap();
    for i in 0..8 {
        assert_eq!(s.state[&format!("app:c{i}")], i, "{:?}", s.state);
        assert_eq!(s.state[&format!("user:c{i}")], i, "{:?}", s.state);
    }
}

async fn legacy_schema_used(db: Database) {
    adk_tables::make_legacy_tables(&db).await;
    let svc = service(&db).await;
    // The state tables were added around it; no metadata table (that would be version 1).
    assert_eq!(adk_tables::table_count(&db, "app_states").await, 1);
    assert_eq!(
        adk_tables::table_count(&db, "adk_internal_metadata").await,
        0
    );

    let mut s = svc
        .create_session("app", "u", Some(map(json!({"user:lang": "fr"}))), Some("s"))
        .await
        .unwrap();
    let mut event = Event::text("agent", "model", "legacy")
        .with_invocation_id("inv-0")
        .with_state_delta("k", json!([1, 2]))
        .with_state_delta("app:flag", json!(true));
    event.actions.transfer_to_agent = Some("billing".into());
    event.actions.artifact_delta.insert("a.txt".into(), 3);
    event.branch = Some("root".into());
    event.long_running_tool_ids = Some(vec!["call-1".into()]);
    event.turn_complete = Some(true);
    event.interrupted = Some(false);
    event.error_code = Some("E1".into());
    // No column for these in this table: not stored, as in Python.
    event.custom_metadata = Some(json!({"x": 1}));
    event
        .extra
        .insert("usage_metadata".into(), json!({"total_token_count": 3}));
    let stored = svc.append_event(&mut s, event).await.unwrap();
    let read = svc
        .get_session("app", "u", "s", &all())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        read.state,
        map(json!({"k": [1, 2], "app:flag": true, "user:lang": "fr"}))
    );
    let e = &read.events[0];
    assert_eq!(e.id, stored.id);
    assert_eq!(e.timestamp, stored.timestamp);
    assert_eq!(e.first_text(), Some("legacy"));
    assert_eq!(e.invocation_id.as_deref(), Some("inv-0"));
    assert_eq!(e.actions.state_delta, stored.actions.state_delta);
    assert_eq!(e.actions.transfer_to_agent.as_deref(), Some("billing"));
    assert_eq!(e.actions.artifact_delta["a.txt"], 3);
    assert_eq!(e.branch.as_deref(), Some("root"));
    assert_eq!(
        e.long_running_tool_ids.as_deref(),
        Some(&["call-1".to_owned()][..])
    );
    assert_eq!((e.turn_complete, e.interrupted), (Some(true), Some(false)));
    assert_eq!(e.error_code.as_deref(), Some("E1"));
    assert_eq!(e.custom_metadata, None);
    assert!(e.extra.is_empty(), "{:?}", e.extra);

    // Its `VARCHAR(256)` columns refuse longer values before anything is written.
    let mut long = Event::new("a".repeat(257));
    long.branch = Some("b".into());
    let err = svc.append_event(&mut s, long).await.unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    assert_eq!(
        svc.get_session("app", "u", "s", &all())
            .await
            .unwrap()
            .unwrap()
            .events
            .len(),
        1
    );
}

/// The tables dropped and made again at the other schema version under a running
/// service (another deployment's migration, a test harness starting over): its next append
/// and read find a column missing, ask the catalog again and go on at the new version.
async fn tables_made_again_at_the_other_version(db: Database) {
    let svc = service(&db).await;
    let drop_all = async || {
        let mut admin = db.session();
        admin.create().await.unwrap();
        for t in ["events", "sessions", "app_states", "user_states"] {
            admin
                .execute_update(&format!("DROP TABLE {t}"), &[])
                .await
                .unwrap();
        }
        admin
            .execute_update("DROP TABLE IF EXISTS adk_internal_metadata", &[])
            .await
            .unwrap();
    };
    let turn = async |svc: &SessionService, id: &str, text: &str| {
        let mut s = svc.create_session("app", "u", None, Some(id)).await?;
        let event = Event::text("agent", "model", text).with_state_delta("k", json!(text));
        svc.append_event(&mut s, event).await?;
        let read = svc.get_session("app", "u", id, &all()).await?.unwrap();
        assert_eq!(read.events.len(), 1);
        assert_eq!(read.events[0].first_text(), Some(text));
        assert_eq!(read.state["k"], json!(text));
        Ok::<_, Error>(())
    };
    turn(&svc, "s1", "at version 1").await.unwrap();

    // Version 0, its state tables added by another instance's start-up.
    drop_all().await;
    adk_tables::make_legacy_tables(&db).await;
    let other = DatabaseSessionTables::new(common::fixed_pool(&db, 1).await);
    other.create_tables().await.unwrap();
    assert_eq!(
        adk_tables::table_count(&db, "adk_internal_metadata").await,
        0
    );
    turn(&svc, "s2", "at version 0").await.unwrap();

    // And back to version 1.
    drop_all().await;
    other.create_tables().await.unwrap();
    turn(&svc, "s3", "at version 1 again").await.unwrap();
}

/// How many tables of this name the connection's schema has (0 or 1).
async fn other_version_refused(db: Database) {
    let svc = service(&db).await;
    let mut admin = db.session();
    admin.create().await.unwrap();
    admin
        .execute_update(
            "UPDATE adk_internal_metadata SET value = '2' WHERE \"key\" = 'schema_version'",
            &[],
        )
        .await
        .unwrap();
    // A fresh service asks again.
    let fresh =
        SessionService::on_tables(DatabaseSessionTables::new(common::fixed_pool(&db, 1).await));
    let err = fresh
        .get_session("app", "u", "s", &all())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Unsupported(m) if m.contains("schema version 2")),
        "{err}"
    );
    // One that checked before keeps working (the version is asked once).
    svc.create_session("app", "u", None, None).await.unwrap();
}

async fn missing_tables_named(db: Database) {
    let svc =
        SessionService::on_tables(DatabaseSessionTables::new(common::fixed_pool(&db, 1).await));
    let err = svc.get_session("app", "u", "s", &all()).await.unwrap_err();
    assert!(
        matches!(&err, Error::NotFound(m) if m.contains("create_tables")),
        "{err}"
    );
}

async fn bad_input_refused(db: Database) {
    let svc = service(&db).await;
    let long = "x".repeat(129);
    for err in [
        svc.create_session(&long, "u", None, None)
            .await
            .unwrap_err(),
        svc.create_session("app", "u", None, Some(&long))
            .await
            .unwrap_err(),
        svc.create_session("app", "", None, None).await.unwrap_err(),
    ] {
        assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    }
    let mut s = svc.create_session("app", "u", None, None).await.unwrap();
    let bad = Event::new("agent").with_invocation_id("i".repeat(257));
    let err = svc.append_event(&mut s, bad).await.unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    // Nothing was stored; the copy still appends.
    svc.append_event(&mut s, Event::new("agent")).await.unwrap();
    let read = svc
        .get_session("app", "u", &s.id, &all())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.events.len(), 1);
}

/// ADK-Rust's trait on these tables: an append by session id alone finds the session's
/// app and user, and an id two users share is refused rather than guessed.
#[cfg(feature = "adk-rust")]
mod adk_rust {
    use adk_session::{CreateRequest, GetRequest};
    use serde_json::json;
    use session_pool::Database;

    on_both_schemas!(append_by_id);

    fn create(user: &str, id: &str) -> CreateRequest {
        CreateRequest {
            app_name: "app".into(),
            user_id: user.into(),
            session_id: Some(id.into()),
            state: serde_json::from_value(json!({"user:name": user})).unwrap(),
        }
    }

    async fn append_by_id(db: Database) {
        let svc: std::sync::Arc<dyn adk_session::SessionService> =
            std::sync::Arc::new(super::service(&db).await);
        svc.create(create("ann", "s1")).await.unwrap();
        let mut e = adk_core::Event::new("inv-1");
        e.author = "agent".into();
        e.actions.state_delta = serde_json::from_value(json!({"k": 1, "user:seen": true})).unwrap();
        svc.append_event("s1", e.clone()).await.unwrap();
        let got = svc
            .get(GetRequest {
                app_name: "app".into(),
                user_id: "ann".into(),
                session_id: "s1".into(),
                num_recent_events: None,
                after: None,
            })
            .await
            .unwrap();
        assert_eq!(got.events().len(), 1);
        assert_eq!(got.state().get("k"), Some(json!(1)));
        assert_eq!(got.state().get("user:seen"), Some(json!(true)));
        svc.create(create("bob", "s1")).await.unwrap();
        let err = svc.append_event("s1", e).await.unwrap_err();
        assert!(
            err.to_string().contains("append_event_for_identity"),
            "{err}"
        );
    }
}

/// Calls cut off at random points (a timeout mid-transaction on SQLite, mid-statement on
/// PostgreSQL) leave no session checked out and no lock held: the next append, on the
/// same session row, goes through.
async fn cut_off_calls_leave_no_lock_and_no_checkout(db: Database) {
    let pool = common::fixed_pool(&db, 4).await;
    let tables = DatabaseSessionTables::new(pool.clone());
    tables.create_tables().await.unwrap();
    let svc = SessionService::on_tables(tables);
    let s = svc
        .create_session("app", "u", None, Some("hot"))
        .await
        .unwrap();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..300 {
        let (svc, mut copy) = (svc.clone(), s.clone());
        let cut = Duration::from_micros(fastrand::u64(0..3000));
        set.spawn(async move {
            let e = Event::new("agent").with_state_delta(format!("user:k{i}"), json!(i));
            let _ = tokio::time::timeout(cut, svc.append_event(&mut copy, e)).await;
        });
        while set.len() > 16 {
            let _ = set.join_next().await;
        }
    }
    while set.join_next().await.is_some() {}
    // Sessions that came back mid-transaction are rolled back by the pool's janitor, off
    // the caller's path; then every session is idle again.
    let mut stats = pool.stats();
    for _ in 0..1000 {
        if stats.in_use == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        stats = pool.stats();
    }
    assert_eq!(stats.in_use, 0, "{stats:?}");
    assert_eq!(stats.acquired, stats.released, "{stats:?}");
    // Whatever won, a fresh copy appends, and takes the row's and the user's locks.
    let mut now = svc
        .get_session("app", "u", "hot", &all())
        .await
        .unwrap()
        .unwrap();
    let e = Event::new("agent").with_state_delta("user:last", json!(true));
    tokio::time::timeout(Duration::from_secs(20), svc.append_event(&mut now, e))
        .await
        .expect("a lock was left held")
        .unwrap();
}

/// The text of one state column on PostgreSQL (`sql` selects it).
async fn state_text(db: &Database, sql: &str) -> String {
    let mut s = db.session();
    s.create().await.unwrap();
    common::scalar(&mut s, sql, &[]).await
}

/// google-adk 2.15 and later make the JSON columns `JSON` on PostgreSQL, where earlier
/// releases made `JSONB`, so that values keep the text Python wrote: key order, `1e23`,
/// `-0.0`. `create_tables` makes them so, and appends merge into them as Python's
/// `dict.update` does (the stored keys where they were, new ones after them) without
/// rewriting any stored value; the same tables made `JSONB` are read and written too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_columns_keep_what_python_wrote() {
    let Some((db, _, _)) = common::postgres_in_schema("adkjson").await else {
        return;
    };
    let svc = service(&db).await;
    let types: String = state_text(
        &db,
        "SELECT string_agg(table_name || '.' || column_name || ' ' || data_type, ', ' \
         ORDER BY table_name) FROM information_schema.columns \
         WHERE table_schema = current_schema() AND column_name IN ('state', 'event_data')",
    )
    .await;
    assert_eq!(
        types,
        "app_states.state json, events.event_data json, sessions.state json, \
         user_states.state json"
    );

    // A session as Python writes it: its own key order, numbers as Python prints them.
    svc.create_session("app", "u", None, Some("s"))
        .await
        .unwrap();
    let mut admin = db.session();
    admin.create().await.unwrap();
    for sql in [
        r#"UPDATE sessions SET state = '{"z": 1e+23, "a": -0.0, "k": "old"}'"#,
        r#"UPDATE user_states SET state = '{"y": 1.5e-300, "b": 1}'"#,
    ] {
        admin.execute_update(sql, &[]).await.unwrap();
    }
    let mut s = svc
        .get_session("app", "u", "s", &all())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.state["z"], json!(1e23));
    let event = Event::text("agent", "model", "hi")
        .with_state_delta("k", json!("new"))
        .with_state_delta("c", json!(2))
        .with_state_delta("user:b", json!(2))
        .with_state_delta("user:x", json!(-0.0));
    svc.append_event(&mut s, event).await.unwrap();
    let session = state_text(&db, "SELECT state::text FROM sessions").await;
    let compact: String = session.chars().filter(|c| !c.is_whitespace()).collect();
    assert_eq!(
        compact, r#"{"z":1e+23,"a":-0.0,"k":"new","c":2}"#,
        "{session}"
    );
    let user = state_text(&db, "SELECT state::text FROM user_states").await;
    let compact: String = user.chars().filter(|c| !c.is_whitespace()).collect();
    assert_eq!(compact, r#"{"y":1.5e-300,"b":2,"x":-0.0}"#, "{user}");
    let read = svc
        .get_session("app", "u", "s", &all())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.state["c"], 2);
    assert_eq!(read.state["user:b"], 2);
    assert_eq!(read.events.len(), 1);
    assert_eq!(read.events[0].first_text(), Some("hi"));

    // The same tables made JSONB under the running service (google-adk before 2.15): its
    // next calls find the types changed, ask the catalog again and go on.
    for t in ["app_states", "user_states", "sessions"] {
        admin
            .execute_update(
                &format!("ALTER TABLE {t} ALTER COLUMN state TYPE jsonb USING state::jsonb"),
                &[],
            )
            .await
            .unwrap();
    }
    admin
        .execute_update(
            "ALTER TABLE events ALTER COLUMN event_data TYPE jsonb USING event_data::jsonb",
            &[],
        )
        .await
        .unwrap();
    let mut s = read;
    let event = Event::text("agent", "model", "on jsonb").with_state_delta("user:b", json!(3));
    svc.append_event(&mut s, event).await.unwrap();
    let mut t = svc
        .create_session("app", "u", Some(map(json!({"user:n": 1}))), Some("t"))
        .await
        .unwrap();
    svc.append_event(&mut t, Event::text("user", "user", "t's"))
        .await
        .unwrap();
    let read = svc
        .get_session("app", "u", "s", &all())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.events.len(), 2);
    assert_eq!(read.events[1].first_text(), Some("on jsonb"));
    assert_eq!(read.state["user:b"], 3);
    assert_eq!(read.state["user:n"], 1);
    assert_eq!(read.state["k"], "new");
}

//! Tables SQLSpec 0.41.1 created (its DDL, copied from `sqlspec/adapters/{asyncpg,
//! aiosqlite}/adk/store.py`), and rows in the form its Python stores write them: this
//! crate reads and writes them in that form, and `create_tables` leaves them as they are.
mod common;

use serde_json::json;
use session_pool::adk::{AdkConfig, AdkStore, Event, GetSessionConfig, SessionService};
use session_pool::prelude::*;
use session_pool::{Database, Dialect, params};

fn sqlspec_ddl(postgres: bool, s: &str, e: &str) -> Vec<String> {
    if postgres {
        vec![
            format!(
                "CREATE TABLE IF NOT EXISTS {s} (
            id VARCHAR(128) PRIMARY KEY,
            app_name VARCHAR(128) NOT NULL,
            user_id VARCHAR(128) NOT NULL,
            state JSONB NOT NULL DEFAULT '{{}}'::jsonb,
            create_time TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
            update_time TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP
        ) WITH (fillfactor = 80)"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {e} (
            id VARCHAR(128) PRIMARY KEY,
            session_id VARCHAR(128) NOT NULL,
            app_name VARCHAR(128) NOT NULL,
            user_id VARCHAR(128) NOT NULL,
            invocation_id VARCHAR(256),
            author VARCHAR(256),
            actions BYTEA,
            long_running_tool_ids_json JSONB,
            branch VARCHAR(256),
            timestamp TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
            content JSONB,
            grounding_metadata JSONB,
            custom_metadata JSONB,
            partial BOOLEAN,
            turn_complete BOOLEAN,
            interrupted BOOLEAN,
            error_code VARCHAR(256),
            error_message VARCHAR(1024),
            FOREIGN KEY (session_id) REFERENCES {s}(id) ON DELETE CASCADE
        )"
            ),
        ]
    } else {
        vec![
            format!(
                "CREATE TABLE IF NOT EXISTS {s} (
            id TEXT PRIMARY KEY,
            app_name TEXT NOT NULL,
            user_id TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT '{{}}',
            create_time REAL NOT NULL,
            update_time REAL NOT NULL
        )"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {e} (
            id TEXT PRIMARY KEY,
            session_id TEXT NOT NULL,
            app_name TEXT NOT NULL,
            user_id TEXT NOT NULL,
            invocation_id TEXT NOT NULL,
            author TEXT NOT NULL,
            actions BLOB NOT NULL,
            long_running_tool_ids_json TEXT,
            branch TEXT,
            timestamp REAL NOT NULL,
            content TEXT,
            grounding_metadata TEXT,
            custom_metadata TEXT,
            partial INTEGER,
            turn_complete INTEGER,
            interrupted INTEGER,
            error_code TEXT,
            error_message TEXT,
            FOREIGN KEY (session_id) REFERENCES {s}(id) ON DELETE CASCADE
        )"
            ),
        ]
    }
}

/// SQLSpec 0.41.1's tables under fresh names starting with `prefix`: the events table's
/// name, an admin session on the database, and a store on them with app and user tables
/// of its own (not created yet).
async fn on_sqlspec_041_tables(
    db: &Database,
    prefix: &str,
) -> (String, session_pool::Session, AdkStore) {
    let postgres = db.dialect() == Dialect::Postgres;
    let [s, e, a, u] = ["s", "e", "a", "u"].map(|t| common::unique(&format!("{prefix}_{t}")));
    let mut admin = db.session();
    admin.create().await.unwrap();
    for ddl in sqlspec_ddl(postgres, &s, &e) {
        admin.execute_update(&ddl, &[]).await.unwrap();
    }
    let config = AdkConfig::default()
        .session_table(&s)
        .events_table(&e)
        .app_state_table(a)
        .user_state_table(u);
    let store = AdkStore::new(common::fixed_pool(db, 2).await, config).unwrap();
    (e, admin, store)
}

async fn shares_sqlspecs_tables(db: Database) {
    let postgres = db.dialect() == Dialect::Postgres;
    let (e, mut admin, store) = on_sqlspec_041_tables(&db, "sqlspec").await;
    // Never fails on, nor alters, the tables SQLSpec made.
    store.create_tables().await.unwrap();
    if postgres {
        let rs = admin
            .execute_sql(
                "SELECT data_type::text AS t FROM information_schema.columns \
                 WHERE table_name = $1 AND column_name = 'long_running_tool_ids_json'",
                &params![e.as_str()],
            )
            .await
            .unwrap();
        assert_eq!(rs.one().unwrap().get::<String>("t").unwrap(), "jsonb");
    }
    let svc = SessionService::new(store);
    let mut session = svc
        .create_session("app", "u", None, Some("s1"))
        .await
        .unwrap();

    // A row as SQLSpec's Python stores write it: on PostgreSQL, asyncpg puts a JSON
    // *string* holding the list's text into the JSONB column; on SQLite, the NOT NULL
    // columns are filled.
    let python_row = if postgres {
        format!(
            "INSERT INTO {e} (id, session_id, app_name, user_id, invocation_id, author, \
             long_running_tool_ids_json, timestamp) VALUES ('py1', 's1', 'app', 'u', 'inv', \
             'agent', to_jsonb('[\"call_1\", \"call_2\"]'::text), now() - interval '1 second')"
        )
    } else {
        format!(
            "INSERT INTO {e} (id, session_id, app_name, user_id, invocation_id, author, \
             actions, long_running_tool_ids_json, timestamp) VALUES ('py1', 's1', 'app', 'u', \
             'inv', 'agent', X'', '[\"call_1\", \"call_2\"]', julianday('now') - 0.00002)"
        )
    };
    admin.execute_update(&python_row, &[]).await.unwrap();

    // This crate writes into them too: an event without an invocation id (NOT NULL on
    // SQLite) and with long-running tool ids (JSONB on PostgreSQL).
    let mut event = Event::text("agent", "model", "working on it");
    event.long_running_tool_ids = Some(vec!["call_9".into()]);
    svc.append_event(&mut session, event).await.unwrap();

    let got = svc
        .get_session("app", "u", "s1", &GetSessionConfig::default())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.events.len(), 2);
    assert_eq!(
        got.events[0].long_running_tool_ids,
        Some(vec!["call_1".to_owned(), "call_2".to_owned()])
    );
    assert_eq!(got.events[0].invocation_id.as_deref(), Some("inv"));
    assert_eq!(
        got.events[1].long_running_tool_ids,
        Some(vec!["call_9".to_owned()])
    );
    assert_eq!(got.events[1].invocation_id, None);
    assert_eq!(got.events[1].first_text(), Some("working on it"));

    // Written in the form Python reads back.
    if postgres {
        let rs = admin
            .execute_sql(
                &format!(
                    "SELECT jsonb_typeof(long_running_tool_ids_json) AS kind, \
                     long_running_tool_ids_json #>> '{{}}' AS text FROM {e} WHERE id <> 'py1'"
                ),
                &[],
            )
            .await
            .unwrap();
        let row = rs.one().unwrap();
        assert_eq!(row.get::<String>("kind").unwrap(), "string");
        let text = row.get::<String>("text").unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&text).unwrap(),
            json!(["call_9"])
        );
    } else {
        let rs = admin
            .execute_sql(
                &format!("SELECT invocation_id, length(actions) AS n FROM {e} WHERE id <> 'py1'"),
                &[],
            )
            .await
            .unwrap();
        let row = rs.one().unwrap();
        assert_eq!(row.get::<String>("invocation_id").unwrap(), "");
        assert!(row.get::<i64>("n").unwrap() > 0, "actions written");
    }
    // The store reads them too.
    let events = svc
        .store()
        .unwrap()
        .get_events("s1", None, None)
        .await
        .unwrap();
    assert_eq!(
        events[0].long_running_tool_ids_json.as_deref(),
        Some("[\"call_1\", \"call_2\"]")
    );
}

/// Which of SQLSpec's whole-event layouts [`whole_event_ddl`] makes.
#[derive(Clone, Copy, PartialEq)]
enum Generation {
    /// 0.42–0.50: `event_json`, no event id, `author`; no app or user tables.
    V050,
    /// 0.61 on: `event_data` with the event's id, app and user; app and user tables.
    V061,
}

/// SQLSpec's tables of `generation` (its PostgreSQL store's column types; REAL Julian
/// days and TEXT JSON on SQLite), named `s`, `e`, `a`, `u`.
fn whole_event_ddl(
    db: &Database,
    generation: Generation,
    s: &str,
    e: &str,
    a: &str,
    u: &str,
) -> Vec<String> {
    let postgres = db.dialect() == Dialect::Postgres;
    let (json, text, ts) = if postgres {
        (
            "JSONB",
            "VARCHAR(128)",
            "TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP",
        )
    } else {
        ("TEXT", "TEXT", "REAL NOT NULL")
    };
    let mut ddl = vec![format!(
        "CREATE TABLE {s} (id {text} PRIMARY KEY, app_name {text} NOT NULL, \
         user_id {text} NOT NULL, state {json} NOT NULL DEFAULT '{{}}', \
         create_time {ts}, update_time {ts})"
    )];
    match generation {
        Generation::V050 => ddl.push(format!(
            "CREATE TABLE {e} (session_id {text} NOT NULL, invocation_id {text} NOT NULL, \
             author {text} NOT NULL, timestamp {ts}, event_json {json} NOT NULL, \
             FOREIGN KEY (session_id) REFERENCES {s}(id) ON DELETE CASCADE)"
        )),
        Generation::V061 => ddl.extend([
            format!(
                "CREATE TABLE {e} (id {text} PRIMARY KEY, app_name {text} NOT NULL, \
                 user_id {text} NOT NULL, session_id {text} NOT NULL, invocation_id {text}, \
                 timestamp {ts}, event_data {json} NOT NULL, \
                 FOREIGN KEY (session_id) REFERENCES {s}(id) ON DELETE CASCADE)"
            ),
            format!(
                "CREATE TABLE {a} (app_name {text} PRIMARY KEY, \
                 state {json} NOT NULL DEFAULT '{{}}', update_time {ts})"
            ),
            format!(
                "CREATE TABLE {u} (app_name {text} NOT NULL, user_id {text} NOT NULL, \
                 state {json} NOT NULL DEFAULT '{{}}', update_time {ts}, \
                 PRIMARY KEY (app_name, user_id))"
            ),
        ]),
    }
    ddl
}

/// SQLSpec's tables of `generation` under fresh names starting with `prefix` (sessions,
/// events, app and user state), an admin session on the database, and a store on them
/// whose `create_tables` has run, as a service's does at start-up: it adds only the app
/// and user tables this crate's scopes need.
async fn on_sqlspec_tables(
    db: &Database,
    prefix: &str,
    generation: Generation,
) -> ([String; 4], session_pool::Session, AdkStore) {
    let [s, e, a, u] = ["s", "e", "a", "u"].map(|t| common::unique(&format!("{prefix}_{t}")));
    let mut admin = db.session();
    admin.create().await.unwrap();
    for statement in whole_event_ddl(db, generation, &s, &e, &a, &u) {
        admin.execute_update(&statement, &[]).await.unwrap();
    }
    let config = AdkConfig::default()
        .session_table(&s)
        .events_table(&e)
        .app_state_table(&a)
        .user_state_table(&u);
    let store = AdkStore::new(common::fixed_pool(db, 2).await, config).unwrap();
    store.create_tables().await.unwrap();
    ([s, e, a, u], admin, store)
}

/// SQLSpec 0.42–0.50 kept each event whole in an `event_json` column with no event id
/// column, and each session's whole state in its row (DDL as SQLSpec 0.50's PostgreSQL
/// store makes it; Python's own service runs on it in `tests/adk_sqlspec_releases.rs`):
/// this crate reads and writes it, ids from the JSON, the same event appended again
/// refused without an index, `app:` and `user:` keys in the row too.
async fn sqlspec_event_json_layout(db: Database) {
    let ([s, e, _, _], mut admin, store) = on_sqlspec_tables(&db, "sq50", Generation::V050).await;
    let service = SessionService::new(store.clone());
    let state = json!({"lang": "rs", "user:since": 2024})
        .as_object()
        .unwrap()
        .clone();
    let mut one = service
        .create_session("app", "u", Some(state), Some("s1"))
        .await
        .unwrap();
    let first = Event::text("user", "user", "hi")
        .with_invocation_id("inv-1")
        .with_state_delta("app:plan", json!("pro"))
        .with_state_delta("temp:scratch", json!(1));
    let first = service.append_event(&mut one, first).await.unwrap();
    let second = Event::text("agent", "model", "hello").with_state_delta("n", json!(2));
    let second = service.append_event(&mut one, second).await.unwrap();

    // Read back in order, ids from the JSON, the state merged.
    let back = service
        .get_session("app", "u", "s1", &GetSessionConfig::default())
        .await
        .unwrap()
        .unwrap();
    let ids: Vec<&str> = back.events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, [first.id.as_str(), second.id.as_str()]);
    assert_eq!(back.events[0].invocation_id.as_deref(), Some("inv-1"));
    assert_eq!(back.events[1].author, "agent");
    assert_eq!(back.state["app:plan"], "pro");
    assert_eq!(back.state["user:since"], 2024);
    assert_eq!(back.state["n"], 2);
    let newest = service
        .get_session(
            "app",
            "u",
            "s1",
            &GetSessionConfig::default().num_recent_events(1),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(newest.events.len(), 1);
    assert_eq!(newest.events[0].id, second.id);

    // The row holds the whole state, as SQLSpec 0.50's service reads it; not `temp:`.
    let row: serde_json::Value = common::scalar(
        &mut admin,
        &format!("SELECT state FROM {s} WHERE id = 's1'"),
        &[],
    )
    .await;
    assert_eq!(
        row,
        json!({"lang": "rs", "user:since": 2024, "app:plan": "pro", "n": 2})
    );
    let author: String = common::scalar(
        &mut admin,
        &format!("SELECT author FROM {e} ORDER BY timestamp LIMIT 1"),
        &[],
    )
    .await;
    assert_eq!(author, "user");

    // The store's records: id, app and user, though the table has no such columns.
    let records = store.get_events("s1", None, None).await.unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[1].id, second.id);
    assert_eq!(
        (records[1].app_name.as_str(), records[1].user_id.as_str()),
        ("app", "u")
    );

    // The same event again is refused with nothing written, with and without the state.
    let err = store.append_event(&records[0]).await.unwrap_err();
    assert_eq!(err.kind(), session_pool::ErrorKind::AlreadyExists, "{err}");
    let err = store
        .append_event_and_update_state(&records[0], &json!({"lost": true}), None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), session_pool::ErrorKind::AlreadyExists, "{err}");
    assert_eq!(store.get_events("s1", None, None).await.unwrap().len(), 2);
    let session = store.get_session("s1").await.unwrap().unwrap();
    assert!(session.state.get("lost").is_none(), "{:?}", session.state);

    // A stale copy is refused; an unknown session is not found.
    let mut stale = back.clone();
    stale.last_update_time -= chrono::Duration::milliseconds(1);
    let err = service
        .append_event(&mut stale, Event::text("user", "user", "late"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), session_pool::ErrorKind::Conflict, "{err}");
    let mut other = records[0].clone();
    other.session_id = "nope".into();
    let err = store.append_event(&other).await.unwrap_err();
    assert_eq!(err.kind(), session_pool::ErrorKind::NotFound, "{err}");
}

/// SQLSpec's migration to 0.51 drops its ADK tables and makes them again in the new
/// layout. A service running across it (its store had learned the old layout) goes on
/// without a restart: the first statement that finds a column gone makes the store ask
/// the catalog again, and the call runs once more, in the new layout.
async fn tables_replaced_under_a_running_service(db: Database) {
    let ([s, e, a, u], mut admin, store) = on_sqlspec_tables(&db, "sqm", Generation::V050).await;
    let service = SessionService::new(store.clone());
    let mut old = service
        .create_session("app", "u", None, Some("old"))
        .await
        .unwrap();
    service
        .append_event(&mut old, Event::text("user", "user", "before"))
        .await
        .unwrap();

    // The migration, from another connection: everything dropped, made again.
    for table in [&e, &s, &a, &u] {
        admin
            .execute_update(&format!("DROP TABLE {table}"), &[])
            .await
            .unwrap();
    }
    for statement in whole_event_ddl(&db, Generation::V061, &s, &e, &a, &u) {
        admin.execute_update(&statement, &[]).await.unwrap();
    }

    // The same service, no restart: a read of the old session finds nothing...
    let cfg = GetSessionConfig::default();
    assert!(
        service
            .get_session("app", "u", "old", &cfg)
            .await
            .unwrap()
            .is_none()
    );
    // ...and a new one is written and read in the new layout.
    let state = json!({"user:lang": "fr"}).as_object().unwrap().clone();
    let mut new = service
        .create_session("app", "u", Some(state), Some("new"))
        .await
        .unwrap();
    let hi = Event::text("agent", "model", "after").with_state_delta("app:plan", json!("pro"));
    let hi = service.append_event(&mut new, hi).await.unwrap();
    let back = service
        .get_session("app", "u", "new", &cfg)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back.events.len(), 1);
    assert_eq!(back.events[0].id, hi.id);
    assert_eq!(back.state["app:plan"], "pro");
    assert_eq!(back.state["user:lang"], "fr");
    // Stored as 0.61 stores them: the event's own id, app and user; prefixed app keys.
    let row: String = common::scalar(
        &mut admin,
        &format!("SELECT id || ' ' || app_name || ' ' || user_id FROM {e}"),
        &[],
    )
    .await;
    assert_eq!(row, format!("{} app u", hi.id));
    let app_state: serde_json::Value =
        common::scalar(&mut admin, &format!("SELECT state FROM {a}"), &[]).await;
    assert_eq!(app_state, json!({"app:plan": "pro"}));
}

on_both!(
    shares_sqlspecs_tables,
    sqlspec_event_json_layout,
    tables_replaced_under_a_running_service,
    batches_on_every_layout
);

/// `append_events` on each of SQLSpec's layouts (0.41's columns, 0.42–0.50's `event_json`
/// with ids in the JSON, 0.61's `event_data`), where PostgreSQL writes every event in one
/// statement from its own binds: the events read back in order with the state and the
/// scopes, and a call holding an id stored already is refused with nothing of it stored
/// (on `event_json`, by the statement's guard, since no index refuses it).
async fn batches_on_every_layout(db: Database) {
    let mut stores = vec![on_sqlspec_041_tables(&db, "sqb").await.2];
    stores[0].create_tables().await.unwrap();
    for generation in [Generation::V050, Generation::V061] {
        stores.push(on_sqlspec_tables(&db, "sqb", generation).await.2);
    }
    for store in stores {
        let svc = SessionService::new(store);
        let mut session = svc.create_session("app", "u", None, None).await.unwrap();
        let texts = ["one", "two", "three"];
        // Each event a key of its own scope besides the session's.
        let scoped = [("user:u", 1), ("app:a", 2), ("k", 2)];
        let events: Vec<_> = (texts.iter().zip(scoped).enumerate())
            .map(|(i, (text, (key, value)))| {
                let mut event = Event::text("agent", "model", text)
                    .with_invocation_id("inv")
                    .with_state_delta("k", json!(i))
                    .with_state_delta(key, json!(value));
                event.id = format!("b-{i}");
                event
            })
            .collect();
        svc.append_events(&mut session, events).await.unwrap();
        let read = |svc: SessionService, id: String| async move {
            svc.get_session("app", "u", &id, &GetSessionConfig::default())
                .await
                .unwrap()
                .unwrap()
        };
        let stored = read(svc.clone(), session.id.clone()).await;
        let got: Vec<_> = stored
            .events
            .iter()
            .map(|e| e.first_text().unwrap())
            .collect();
        assert_eq!(got, texts);
        let ids: Vec<_> = stored.events.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["b-0", "b-1", "b-2"]);
        assert_eq!(stored.state, session.state);
        assert_eq!(stored.state["k"], 2);
        assert_eq!(stored.state["user:u"], 1);
        assert_eq!(stored.state["app:a"], 2);

        let mut fresh = Event::text("user", "user", "four").with_state_delta("k", json!(9));
        fresh.id = "b-3".into();
        // The same event again, as a retry sends it (on `event_json` a duplicate is an id
        // at its timestamp: SQLSpec 0.50 kept no id of its own).
        let mut again = stored.events[1].clone();
        again.actions.state_delta.clear();
        let copy = session.clone();
        let err = svc
            .append_events(&mut session, vec![fresh, again])
            .await
            .unwrap_err();
        assert!(
            matches!(err, session_pool::Error::AlreadyExists(_)),
            "{err:?}"
        );
        assert_eq!(session, copy);
        let after = read(svc.clone(), session.id.clone()).await;
        assert_eq!(after.events.len(), 3);
        assert_eq!(after.state["k"], 2);
    }
}

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

async fn shares_sqlspecs_tables(db: Database) {
    let postgres = db.dialect() == Dialect::Postgres;
    let (s, e) = (common::unique("sqlspec_s"), common::unique("sqlspec_e"));
    let mut admin = db.session();
    admin.create().await.unwrap();
    for ddl in sqlspec_ddl(postgres, &s, &e) {
        admin.execute_update(&ddl, &[]).await.unwrap();
    }
    let config = AdkConfig::default()
        .session_table(&s)
        .events_table(&e)
        .app_state_table(common::unique("sqlspec_a"))
        .user_state_table(common::unique("sqlspec_u"));
    let store = AdkStore::new(common::fixed_pool(&db, 2).await, config).unwrap();
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

/// SQLSpec 0.42–0.50 kept each event whole in an `event_json` column with no event id
/// (DDL copied from SQLSpec 0.50.0's stores): this crate refuses that layout with a typed
/// error naming it, at `create_tables` before adding anything, and at the first read or
/// write, rather than failing on a missing column. (SQLSpec 0.51's `event_data` layout is
/// read and written: `tests/adk_sqlspec_latest.rs`.)
async fn sqlspec_event_json_layout_is_refused(db: Database) {
    let postgres = db.dialect() == Dialect::Postgres;
    let (json, text, ts) = if postgres {
        ("JSONB", "VARCHAR(128)", "TIMESTAMPTZ")
    } else {
        ("TEXT", "TEXT", "REAL")
    };
    let (column, release) = ("event_json", "SQLSpec 0.42");
    let (s, e) = (common::unique("sq69_s"), common::unique("sq69_e"));
    let (a, u) = (common::unique("sq69_a"), common::unique("sq69_u"));
    let ddl = [
        format!(
            "CREATE TABLE {s} (id {text} PRIMARY KEY, app_name {text} NOT NULL, \
             user_id {text} NOT NULL, state {json} NOT NULL DEFAULT '{{}}', \
             create_time {ts} NOT NULL, update_time {ts} NOT NULL)"
        ),
        format!(
            "CREATE TABLE {e} (session_id {text} NOT NULL, invocation_id {text} NOT NULL, \
             author {text} NOT NULL, timestamp {ts} NOT NULL, event_json {json} NOT NULL, \
             FOREIGN KEY (session_id) REFERENCES {s}(id) ON DELETE CASCADE)"
        ),
    ];
    let mut admin = db.session();
    admin.create().await.unwrap();
    for statement in &ddl {
        admin.execute_update(statement, &[]).await.unwrap();
    }
    let config = AdkConfig::default()
        .session_table(&s)
        .events_table(&e)
        .app_state_table(&a)
        .user_state_table(&u);
    let store = AdkStore::new(common::fixed_pool(&db, 2).await, config).unwrap();
    let refused = |err: session_pool::Error, what: &str| {
        assert_eq!(
            err.kind(),
            session_pool::ErrorKind::Unsupported,
            "{what}: {err}"
        );
        let text = err.to_string();
        assert!(
            text.contains(column) && text.contains(release),
            "{what}: {text}"
        );
    };
    refused(store.create_tables().await.unwrap_err(), "create_tables");
    // Nothing was added beside SQLSpec's tables.
    let exists = if postgres {
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = $1"
    } else {
        "SELECT COUNT(*) FROM sqlite_master WHERE name = $1"
    };
    let n: i64 = common::scalar(&mut admin, exists, &[a.as_str().into()]).await;
    assert_eq!(n, 0, "the app state table was not created");
    // Reads and writes are refused the same way.
    let service = SessionService::new(store.clone());
    let got = service
        .get_session("app", "u", "s1", &GetSessionConfig::default())
        .await;
    refused(got.unwrap_err(), "get_session");
    let events = store.get_events("s1", None, None).await;
    refused(events.unwrap_err(), "get_events");
}

on_both!(shares_sqlspecs_tables, sqlspec_event_json_layout_is_refused);

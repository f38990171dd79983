//! The ADK tables' DDL: the seed's PostgreSQL schema column for column, and the SQLite
//! companion layout (TEXT ids and JSON, BLOB actions, INTEGER booleans, REAL Julian days).

use super::config::Tables;

/// The statements `create_tables` runs, in order; each is idempotent.
/// The `CREATE` statements; `portable` leaves out what distributed PostgreSQL-compatible
/// engines refuse (see [`AdkConfig::portable_ddl`](super::AdkConfig::portable_ddl)).
pub(crate) fn ddl(tables: &Tables, postgres: bool, portable: bool) -> Vec<String> {
    if postgres && portable {
        postgres_ddl(tables)
            .into_iter()
            .filter(|s| !s.contains("USING GIN"))
            .map(|s| s.replace(" WITH (fillfactor = 80)", ""))
            .collect()
    } else if postgres {
        postgres_ddl(tables)
    } else {
        sqlite_ddl(tables)
    }
}

fn owner_line(tables: &Tables) -> String {
    tables
        .owner
        .as_ref()
        .map(|o| format!("\n    {} {},", o.name, o.definition))
        .unwrap_or_default()
}

fn postgres_ddl(t: &Tables) -> Vec<String> {
    let (s, e) = (&t.sessions, &t.events);
    let (a, u) = (&t.app_states, &t.user_states);
    vec![
        format!(
            "CREATE TABLE IF NOT EXISTS {s} (
    id VARCHAR(128) PRIMARY KEY,
    app_name VARCHAR(128) NOT NULL,
    user_id VARCHAR(128) NOT NULL,{owner}
    state JSONB NOT NULL DEFAULT '{{}}'::jsonb,
    create_time TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    update_time TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP
) WITH (fillfactor = 80)",
            owner = owner_line(t)
        ),
        format!(
            "CREATE INDEX IF NOT EXISTS {} ON {s}(app_name, user_id)",
            t.idx_app_user
        ),
        format!(
            "CREATE INDEX IF NOT EXISTS {} ON {s}(update_time DESC)",
            t.idx_update_time
        ),
        format!(
            "CREATE INDEX IF NOT EXISTS {} ON {s} USING GIN (state) WHERE state != '{{}}'::jsonb",
            t.idx_state
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
    long_running_tool_ids_json TEXT,
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
        format!(
            "CREATE INDEX IF NOT EXISTS {} ON {e}(session_id, timestamp ASC)",
            t.idx_events_session
        ),
        // ADK's `app_states` and `user_states`: state without the `app:` / `user:` prefix.
        format!(
            "CREATE TABLE IF NOT EXISTS {a} (
    app_name VARCHAR(128) PRIMARY KEY,
    state JSONB NOT NULL DEFAULT '{{}}'::jsonb,
    update_time TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP
)"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {u} (
    app_name VARCHAR(128) NOT NULL,
    user_id VARCHAR(128) NOT NULL,
    state JSONB NOT NULL DEFAULT '{{}}'::jsonb,
    update_time TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (app_name, user_id)
)"
        ),
    ]
}

fn sqlite_ddl(t: &Tables) -> Vec<String> {
    let (s, e) = (&t.sessions, &t.events);
    let (a, u) = (&t.app_states, &t.user_states);
    vec![
        format!(
            "CREATE TABLE IF NOT EXISTS {s} (
    id TEXT PRIMARY KEY,
    app_name TEXT NOT NULL,
    user_id TEXT NOT NULL,{owner}
    state TEXT NOT NULL DEFAULT '{{}}',
    create_time REAL NOT NULL DEFAULT (julianday('now')),
    update_time REAL NOT NULL DEFAULT (julianday('now'))
)",
            owner = owner_line(t)
        ),
        format!(
            "CREATE INDEX IF NOT EXISTS {} ON {s}(app_name, user_id)",
            t.idx_app_user
        ),
        format!(
            "CREATE INDEX IF NOT EXISTS {} ON {s}(update_time DESC)",
            t.idx_update_time
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {e} (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    app_name TEXT NOT NULL,
    user_id TEXT NOT NULL,
    invocation_id TEXT,
    author TEXT,
    actions BLOB,
    long_running_tool_ids_json TEXT,
    branch TEXT,
    timestamp REAL NOT NULL DEFAULT (julianday('now')),
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
        format!(
            "CREATE INDEX IF NOT EXISTS {} ON {e}(session_id, timestamp ASC)",
            t.idx_events_session
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {a} (
    app_name TEXT PRIMARY KEY,
    state TEXT NOT NULL DEFAULT '{{}}',
    update_time REAL NOT NULL DEFAULT (julianday('now'))
)"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {u} (
    app_name TEXT NOT NULL,
    user_id TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT '{{}}',
    update_time REAL NOT NULL DEFAULT (julianday('now')),
    PRIMARY KEY (app_name, user_id)
)"
        ),
    ]
}

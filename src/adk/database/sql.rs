//! The statements over google-adk's `DatabaseSessionService` tables (schema version 1), as
//! SQLAlchemy creates them from `google.adk.sessions.schemas.v1`.
//!
//! Times there are naive UTC: `TIMESTAMP WITHOUT TIME ZONE` on PostgreSQL, converted here
//! with `AT TIME ZONE 'UTC'` both ways so the connection's `TimeZone` never matters, and
//! SQLAlchemy's `YYYY-MM-DD HH:MM:SS.ffffff` text on SQLite, which sorts like the times.

use std::fmt::Write as _;

use super::json_type::{JsonType, JsonTypes};

/// The metadata table that marks schema version 1 (version 0 has none).
pub(super) const METADATA_DDL: &str = "CREATE TABLE IF NOT EXISTS adk_internal_metadata \
    (\"key\" VARCHAR(128) NOT NULL, value VARCHAR(256) NOT NULL, PRIMARY KEY (\"key\"))";

/// The other tables and the index, as SQLAlchemy's `create_all` writes them, made
/// idempotent; the backends differ only in the JSON and time types.
macro_rules! ddl {
    ($json:literal, $time:literal) => {
        [
            concat!(
                "CREATE TABLE IF NOT EXISTS app_states (app_name VARCHAR(128) NOT NULL, \
                 state ",
                $json,
                " NOT NULL, update_time ",
                $time,
                " NOT NULL, \
                 PRIMARY KEY (app_name))"
            ),
            concat!(
                "CREATE TABLE IF NOT EXISTS sessions (app_name VARCHAR(128) NOT NULL, \
                 user_id VARCHAR(128) NOT NULL, id VARCHAR(128) NOT NULL, state ",
                $json,
                " NOT NULL, create_time ",
                $time,
                " NOT NULL, update_time ",
                $time,
                " NOT NULL, PRIMARY KEY (app_name, user_id, id))"
            ),
            concat!(
                "CREATE TABLE IF NOT EXISTS user_states (app_name VARCHAR(128) NOT NULL, \
                 user_id VARCHAR(128) NOT NULL, state ",
                $json,
                " NOT NULL, \
                 update_time ",
                $time,
                " NOT NULL, PRIMARY KEY (app_name, user_id))"
            ),
            concat!(
                "CREATE TABLE IF NOT EXISTS events (id VARCHAR(128) NOT NULL, \
                 app_name VARCHAR(128) NOT NULL, user_id VARCHAR(128) NOT NULL, \
                 session_id VARCHAR(128) NOT NULL, invocation_id VARCHAR(256) NOT NULL, \
                 timestamp ",
                $time,
                " NOT NULL, event_data ",
                $json,
                ", \
                 PRIMARY KEY (id, app_name, user_id, session_id), \
                 FOREIGN KEY (app_name, user_id, session_id) \
                 REFERENCES sessions (app_name, user_id, id) ON DELETE CASCADE)"
            ),
            "CREATE INDEX IF NOT EXISTS idx_events_app_user_session_ts_id \
             ON events (app_name, user_id, session_id, timestamp DESC, id DESC)",
        ]
    };
}

// JSON, as google-adk 2.15 and later make them (earlier releases made JSONB, which
// rewrites values: both are read and written, see `JsonType`).
const DDL_PG: [&str; 5] = ddl!("JSON", "TIMESTAMP WITHOUT TIME ZONE");
const DDL_SQLITE: [&str; 5] = ddl!("TEXT", "DATETIME");

/// SQLite: the tables of google-adk's `SqliteSessionService`, as it makes them (its
/// `CREATE_SCHEMA_SQL`): times as `REAL` Unix seconds, no metadata table, no index.
pub(super) const DDL_SQLITE_SERVICE: [&str; 4] = [
    "CREATE TABLE IF NOT EXISTS app_states (app_name TEXT PRIMARY KEY, \
     state TEXT NOT NULL, update_time REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS user_states (app_name TEXT NOT NULL, user_id TEXT NOT NULL, \
     state TEXT NOT NULL, update_time REAL NOT NULL, PRIMARY KEY (app_name, user_id))",
    "CREATE TABLE IF NOT EXISTS sessions (app_name TEXT NOT NULL, user_id TEXT NOT NULL, \
     id TEXT NOT NULL, state TEXT NOT NULL, create_time REAL NOT NULL, \
     update_time REAL NOT NULL, PRIMARY KEY (app_name, user_id, id))",
    "CREATE TABLE IF NOT EXISTS events (id TEXT NOT NULL, app_name TEXT NOT NULL, \
     user_id TEXT NOT NULL, session_id TEXT NOT NULL, invocation_id TEXT NOT NULL, \
     timestamp REAL NOT NULL, event_data TEXT NOT NULL, \
     PRIMARY KEY (app_name, user_id, session_id, id), \
     FOREIGN KEY (app_name, user_id, session_id) \
     REFERENCES sessions(app_name, user_id, id) ON DELETE CASCADE)",
];

/// The tables besides the metadata one, and the events index.
pub(super) fn ddl(postgres: bool) -> &'static [&'static str; 5] {
    if postgres { &DDL_PG } else { &DDL_SQLITE }
}

/// Marks the tables as schema version 1, as ADK's `prepare_tables` does.
pub(super) fn mark_version(postgres: bool) -> &'static str {
    if postgres {
        "INSERT INTO adk_internal_metadata (\"key\", value) VALUES ('schema_version', '1') \
         ON CONFLICT (\"key\") DO NOTHING"
    } else {
        "INSERT OR IGNORE INTO adk_internal_metadata (\"key\", value) \
         VALUES ('schema_version', '1')"
    }
}

/// The columns of the tables, which tell ADK's schema versions apart and, on PostgreSQL,
/// JSON from JSONB: `(table, column, type)`.
pub(super) fn columns(postgres: bool) -> &'static str {
    if postgres {
        "SELECT table_name::text, column_name::text, data_type::text \
         FROM information_schema.columns WHERE table_schema = current_schema() \
         AND table_name IN ('adk_internal_metadata', 'sessions', 'events', 'app_states', \
         'user_states')"
    } else {
        "SELECT 'adk_internal_metadata', name, type \
         FROM pragma_table_info('adk_internal_metadata') \
         UNION ALL SELECT 'sessions', name, type FROM pragma_table_info('sessions') \
         UNION ALL SELECT 'events', name, type FROM pragma_table_info('events')"
    }
}

/// SQLite: the declared type of the sessions' `update_time` (`REAL` in google-adk's
/// `SqliteSessionService`, `DATETIME` in its `DatabaseSessionService`).
pub(super) const SESSION_TIME_TYPE: &str =
    "SELECT type FROM pragma_table_info('sessions') WHERE name = 'update_time'";

/// The stored schema version.
pub(super) const VERSION: &str =
    "SELECT value FROM adk_internal_metadata WHERE \"key\" = 'schema_version'";

/// Creates a session and its app's and user's rows when missing, merging the initial
/// state's app and user keys into them, in one statement; returns whether the session was
/// new and the app's and user's state after it. Binds: `$1` app, `$2` user, `$3` id,
/// `$4` app keys, `$5` user keys, `$6` session keys (each as its column's type takes it:
/// see `Bound`), `$7` the time.
pub(super) fn create_pg(t: JsonTypes) -> String {
    format!(
        "WITH s AS (\
         INSERT INTO sessions (app_name, user_id, id, state, create_time, update_time) \
         VALUES ($1, $2, $3, {state}, $7::timestamptz AT TIME ZONE 'UTC', \
         $7::timestamptz AT TIME ZONE 'UTC') ON CONFLICT DO NOTHING RETURNING 1), \
         a AS (INSERT INTO app_states AS t (app_name, state, update_time) \
         SELECT $1, {app}, $7::timestamptz AT TIME ZONE 'UTC' FROM s \
         ON CONFLICT (app_name) DO UPDATE SET state = {app_merge}, \
         update_time = EXCLUDED.update_time \
         WHERE EXCLUDED.state::jsonb <> '{{}}'::jsonb RETURNING t.state), \
         u AS (INSERT INTO user_states AS t (app_name, user_id, state, update_time) \
         SELECT $1, $2, {user}, $7::timestamptz AT TIME ZONE 'UTC' FROM s \
         ON CONFLICT (app_name, user_id) DO UPDATE SET state = {user_merge}, \
         update_time = EXCLUDED.update_time \
         WHERE EXCLUDED.state::jsonb <> '{{}}'::jsonb RETURNING t.state) \
         SELECT EXISTS (SELECT 1 FROM s), \
         COALESCE((SELECT state FROM a), (SELECT state FROM app_states WHERE app_name = $1)), \
         COALESCE((SELECT state FROM u), \
         (SELECT state FROM user_states WHERE app_name = $1 AND user_id = $2))",
        state = t.sessions.bind(6),
        app = t.app.bind(4),
        user = t.user.bind(5),
        app_merge = t.app.merge("t.state", "EXCLUDED.state"),
        user_merge = t.user.merge("t.state", "EXCLUDED.state"),
    )
}

/// Whether a session is stored under this key (`$1` app, `$2` user, `$3` id): a row, or
/// none.
pub(super) const SESSION_EXISTS: &str =
    "SELECT 1 FROM sessions WHERE app_name = $1 AND user_id = $2 AND id = $3";

/// SQLite: the session's insert (`$1` app, `$2` user, `$3` id, `$4` state, `$5` time);
/// nothing when the key is in use.
pub(super) const CREATE_SQLITE: &str = "INSERT INTO sessions \
    (app_name, user_id, id, state, create_time, update_time) \
    VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT DO NOTHING";

/// SQLite: the app's state (`$1` app).
pub(super) const APP_STATE: &str = "SELECT state FROM app_states WHERE app_name = $1";

/// The user's state (`$1` app, `$2` user).
pub(super) const USER_STATE: &str =
    "SELECT state FROM user_states WHERE app_name = $1 AND user_id = $2";

/// SQLite: writes the app's state (`$1` app, `$2` state, `$3` time).
pub(super) const PUT_APP_STATE: &str = "INSERT INTO app_states (app_name, state, update_time) \
    VALUES ($1, $2, $3) ON CONFLICT (app_name) \
    DO UPDATE SET state = excluded.state, update_time = excluded.update_time";

/// SQLite: writes the user's state (`$1` app, `$2` user, `$3` state, `$4` time).
pub(super) const PUT_USER_STATE: &str = "INSERT INTO user_states \
    (app_name, user_id, state, update_time) VALUES ($1, $2, $3, $4) \
    ON CONFLICT (app_name, user_id) \
    DO UPDATE SET state = excluded.state, update_time = excluded.update_time";

/// One event in a read of schema version 1: `[id, invocation_id, time, event_data]`, built
/// in the events column's type (a JSON column's text is then sent as stored).
pub(super) fn v1_element(postgres: bool, events: JsonType) -> String {
    if postgres {
        format!(
            "{}(e.id, e.invocation_id, extract(epoch FROM e.timestamp), e.event_data)",
            events.function("build_array")
        )
    } else {
        "json_array(e.id, e.invocation_id, e.timestamp, \
         CASE WHEN json_valid(e.event_data) THEN json(e.event_data) END)"
            .to_owned()
    }
}

/// A session with its app's and user's state and its events, in one statement: the newest
/// (or, with `oldest`, the oldest) `$5` events at or after `$4`, as an array of `element`s
/// (the columns of event `e`, gathered in `events`' type). Binds: `$1` app, `$2` user,
/// `$3` id, `$4` time or NULL, `$5` limit or NULL (SQLite: -1).
pub(super) fn get(postgres: bool, oldest: bool, element: &str, events: JsonType) -> String {
    let order = if oldest { "ASC" } else { "DESC" };
    if postgres {
        format!(
            "SELECT s.state, s.update_time AT TIME ZONE 'UTC', \
             (SELECT state FROM app_states WHERE app_name = $1), \
             (SELECT state FROM user_states WHERE app_name = $1 AND user_id = $2), \
             (SELECT {agg}({element}) FROM (SELECT * FROM events \
             WHERE app_name = $1 AND user_id = $2 AND session_id = $3 \
             AND ($4::timestamptz IS NULL OR timestamp >= ($4::timestamptz AT TIME ZONE 'UTC')) \
             ORDER BY timestamp {order}, id {order} LIMIT $5::bigint) e) \
             FROM sessions s WHERE s.app_name = $1 AND s.user_id = $2 AND s.id = $3",
            agg = events.function("agg")
        )
    } else {
        format!(
            "SELECT s.state, s.update_time, \
             (SELECT state FROM app_states WHERE app_name = $1), \
             (SELECT state FROM user_states WHERE app_name = $1 AND user_id = $2), \
             (SELECT json_group_array({element}) FROM (SELECT * FROM events \
             WHERE app_name = $1 AND user_id = $2 AND session_id = $3 \
             AND ($4 IS NULL OR timestamp >= $4) \
             ORDER BY timestamp {order}, id {order} LIMIT $5) e) \
             FROM sessions s WHERE s.app_name = $1 AND s.user_id = $2 AND s.id = $3"
        )
    }
}

/// The app's sessions (`$1`), of one user when `$2` is not NULL, with the app's and each
/// user's state, oldest update first, as ADK's `DatabaseSessionService.list_sessions`.
pub(super) fn list(postgres: bool) -> &'static str {
    if postgres {
        "SELECT s.id, s.user_id, s.state, s.update_time AT TIME ZONE 'UTC', \
         (SELECT state FROM app_states WHERE app_name = $1), u.state \
         FROM sessions s LEFT JOIN user_states u \
         ON u.app_name = s.app_name AND u.user_id = s.user_id \
         WHERE s.app_name = $1 AND ($2::varchar IS NULL OR s.user_id = $2::varchar) \
         ORDER BY s.update_time, s.user_id, s.id"
    } else {
        "SELECT s.id, s.user_id, s.state, s.update_time, \
         (SELECT state FROM app_states WHERE app_name = $1), u.state \
         FROM sessions s LEFT JOIN user_states u \
         ON u.app_name = s.app_name AND u.user_id = s.user_id \
         WHERE s.app_name = $1 AND ($2 IS NULL OR s.user_id = $2) \
         ORDER BY s.update_time, s.user_id, s.id"
    }
}

/// Deletes a session's events and the session (`$1` app, `$2` user, `$3` id), as ADK does
/// (explicitly, whatever the foreign key says); one statement on PostgreSQL.
pub(super) const DELETE_PG: &str = "WITH e AS (DELETE FROM events \
    WHERE app_name = $1 AND user_id = $2 AND session_id = $3) \
    DELETE FROM sessions WHERE app_name = $1 AND user_id = $2 AND id = $3";

/// SQLite: a session's events (`$1` app, `$2` user, `$3` id).
pub(super) const DELETE_EVENTS_SQLITE: &str =
    "DELETE FROM events WHERE app_name = $1 AND user_id = $2 AND session_id = $3";

/// SQLite: the session (`$1` app, `$2` user, `$3` id).
pub(super) const DELETE_SESSION_SQLITE: &str =
    "DELETE FROM sessions WHERE app_name = $1 AND user_id = $2 AND id = $3";

/// Appends `n` events in one statement, as a compare-and-swap on the session's update
/// time: the session's keys merged into its state, its update time set to the last event's,
/// the app's and user's keys merged into their rows (made when missing), the events
/// inserted; nothing when the session is not at `$5`. Returns whether it was.
///
/// Binds: `$1` app, `$2` user, `$3` session, `$4` session keys, `$5` expected time, `$6`
/// the new update time, `$7` app keys, `$8` user keys (the keys as their columns' types
/// take them: see `Bound`), then each event's `width` binds from `$9 + k * width`: its id,
/// invocation id and time, then the values `values(first)` numbers from `first` for
/// `columns` (the event's columns after `id, app_name, user_id, session_id,
/// invocation_id, timestamp`).
pub(super) fn append_pg(
    columns: &str,
    values: &dyn Fn(usize) -> String,
    width: usize,
    n: usize,
    t: JsonTypes,
) -> String {
    let mut sql = format!(
        "WITH s AS (\
         UPDATE sessions SET state = {state}, \
         update_time = $6::timestamptz AT TIME ZONE 'UTC' \
         WHERE app_name = $1 AND user_id = $2 AND id = $3 \
         AND update_time = ($5::timestamptz AT TIME ZONE 'UTC') RETURNING 1), \
         a AS (INSERT INTO app_states AS t (app_name, state, update_time) \
         SELECT $1, {app}, now() AT TIME ZONE 'UTC' FROM s WHERE $7::jsonb <> '{{}}'::jsonb \
         ON CONFLICT (app_name) DO UPDATE SET state = {app_merge}, \
         update_time = EXCLUDED.update_time RETURNING 1), \
         u AS (INSERT INTO user_states AS t (app_name, user_id, state, update_time) \
         SELECT $1, $2, {user}, now() AT TIME ZONE 'UTC' FROM s \
         WHERE $8::jsonb <> '{{}}'::jsonb AND {after_app} \
         ON CONFLICT (app_name, user_id) DO UPDATE SET state = {user_merge}, \
         update_time = EXCLUDED.update_time)",
        after_app = crate::adk::scopes::AFTER_APP,
        state = t.sessions.merge("state", &t.sessions.bind(4)),
        app = t.app.bind(7),
        user = t.user.bind(8),
        app_merge = t.app.merge("t.state", "EXCLUDED.state"),
        user_merge = t.user.merge("t.state", "EXCLUDED.state"),
    );
    // One insert per event: data-modifying CTEs may write one table more than once.
    for k in 0..n {
        let first = 9 + k * width;
        let _ = write!(
            sql,
            ", e{k} AS (INSERT INTO events \
             (id, app_name, user_id, session_id, invocation_id, timestamp, {columns}) \
             SELECT ${first}, $1, $2, $3, ${inv}, ${at}::timestamptz AT TIME ZONE 'UTC', \
             {values} FROM s)",
            inv = first + 1,
            at = first + 2,
            values = values(first + 3),
        );
    }
    sql + " SELECT EXISTS (SELECT 1 FROM s)"
}

/// A session's update time (`$1` app, `$2` user, `$3` id), after a failed compare-and-swap.
pub(super) fn version(postgres: bool) -> &'static str {
    if postgres {
        "SELECT update_time AT TIME ZONE 'UTC' FROM sessions \
         WHERE app_name = $1 AND user_id = $2 AND id = $3"
    } else {
        "SELECT update_time FROM sessions WHERE app_name = $1 AND user_id = $2 AND id = $3"
    }
}

/// SQLite: a session's state and update time (`$1` app, `$2` user, `$3` id).
pub(super) const SESSION_SQLITE: &str =
    "SELECT state, update_time FROM sessions WHERE app_name = $1 AND user_id = $2 AND id = $3";

/// SQLite: the session's new state and update time (`$1` app, `$2` user, `$3` id,
/// `$4` state, `$5` time).
pub(super) const UPDATE_SESSION_SQLITE: &str = "UPDATE sessions SET state = $4, update_time = $5 \
    WHERE app_name = $1 AND user_id = $2 AND id = $3";

/// SQLite: the event (`$1` id, `$2` app, `$3` user, `$4` session, `$5` invocation id,
/// `$6` time, from `$7` the values of `columns`).
pub(super) fn insert_event_sqlite(columns: &str, values: &str) -> String {
    format!(
        "INSERT INTO events (id, app_name, user_id, session_id, invocation_id, timestamp, \
         {columns}) VALUES ($1, $2, $3, $4, $5, $6, {values})"
    )
}

/// The sessions with this id (`$1`), of any app and user, without their scopes:
/// `app_name, user_id, state, update_time`. ADK-Rust's `append_event` names a session by id
/// alone.
#[cfg(feature = "adk-rust")]
pub(super) fn by_id(postgres: bool) -> &'static str {
    if postgres {
        "SELECT app_name, user_id, state, update_time AT TIME ZONE 'UTC' FROM sessions \
         WHERE id = $1"
    } else {
        "SELECT app_name, user_id, state, update_time FROM sessions WHERE id = $1"
    }
}

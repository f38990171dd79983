//! The ADK DDL: the seed's PostgreSQL schema column for column, the SQLite companion
//! layout, idempotent re-runs, concurrent creation, and table names that are never SQL.
mod common;

use serde_json::json;
use session_pool::adk::{AdkConfig, AdkStore};
use session_pool::prelude::*;
use session_pool::{Database, Error, Session, Value};

/// The seed's DDL (001, "Schema"), verbatim but for the table names.
const SEED_DDL: &str = r#"
CREATE TABLE IF NOT EXISTS adk_sessions (
id VARCHAR(128) PRIMARY KEY,
app_name VARCHAR(128) NOT NULL,
user_id VARCHAR(128) NOT NULL,
state JSONB NOT NULL DEFAULT '{}'::jsonb,
create_time TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
update_time TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP
) WITH (fillfactor = 80);
CREATE INDEX IF NOT EXISTS idx_adk_sessions_app_user
ON adk_sessions(app_name, user_id);
CREATE INDEX IF NOT EXISTS idx_adk_sessions_update_time
ON adk_sessions(update_time DESC);
CREATE INDEX IF NOT EXISTS idx_adk_sessions_state
ON adk_sessions USING GIN (state)
WHERE state != '{}'::jsonb;
CREATE TABLE IF NOT EXISTS adk_events (
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
FOREIGN KEY (session_id) REFERENCES adk_sessions(id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS idx_adk_events_session
ON adk_events(session_id, timestamp ASC);
"#;

async fn rows(s: &mut Session, sql: &str, params: &[Value]) -> Vec<Vec<Value>> {
    s.execute_sql(sql, params)
        .await
        .unwrap()
        .rows
        .into_iter()
        .map(|r| r.into_values())
        .collect()
}

/// Everything about a PostgreSQL table that the seed's DDL fixes, with the table's own
/// name replaced by `T` (and the sessions table's by `S`) so two tables compare.
async fn pg_shape(s: &mut Session, table: &str, sessions: &str) -> String {
    let anon = |text: String| text.replace(table, "T").replace(sessions, "S");
    let columns = rows(
        s,
        "SELECT column_name, data_type, character_maximum_length, is_nullable, column_default \
         FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position",
        &[table.into()],
    )
    .await;
    // Sorted after renaming: the names sort differently per table.
    let mut indexes: Vec<String> = rows(
        s,
        "SELECT indexdef FROM pg_indexes WHERE tablename = $1",
        &[table.into()],
    )
    .await
    .into_iter()
    .map(|r| anon(format!("{r:?}")))
    .collect();
    indexes.sort();
    let options = rows(
        s,
        "SELECT COALESCE(array_to_string(reloptions, ','), '') FROM pg_class WHERE relname = $1",
        &[table.into()],
    )
    .await;
    let fks = rows(
        s,
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint \
         WHERE conrelid = $1::regclass AND contype = 'f'",
        &[table.into()],
    )
    .await;
    anon(format!("{columns:?}\n{indexes:?}\n{options:?}\n{fks:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_schema_is_the_seed_column_for_column() {
    let Some(db) = common::postgres().await else {
        return;
    };
    let store = common::adk_store(&db, AdkConfig::default()).await;
    let (ours_s, ours_e) = (
        store.session_table().to_owned(),
        store.events_table().to_owned(),
    );
    let (seed_s, seed_e) = (common::unique("seed_s"), common::unique("seed_e"));
    let mut s = db.session();
    s.create().await.unwrap();
    // Replace the events table first: its name contains the sessions table's prefix.
    let seed = SEED_DDL
        .replace("adk_events", &seed_e)
        .replace("adk_sessions", &seed_s);
    for statement in seed.split(';').filter(|st| !st.trim().is_empty()) {
        s.execute_update(statement, &[]).await.unwrap();
    }
    let ours = pg_shape(&mut s, &ours_s, &ours_s).await;
    assert_eq!(ours, pg_shape(&mut s, &seed_s, &seed_s).await);
    assert!(ours.contains("fillfactor=80"), "{ours}");
    assert!(
        ours.contains("USING gin (state) WHERE (state <> '{}'::jsonb)"),
        "{ours}"
    );
    let ours = pg_shape(&mut s, &ours_e, &ours_s).await;
    assert_eq!(ours, pg_shape(&mut s, &seed_e, &seed_s).await);
    assert!(ours.contains("ON DELETE CASCADE"), "{ours}");
    assert!(ours.contains("character varying"), "{ours}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_owner_column_follows_user_id() {
    let Some(db) = common::postgres().await else {
        return;
    };
    let store = common::adk_store(
        &db,
        AdkConfig::default().owner_id_column("tenant_id BIGINT NOT NULL"),
    )
    .await;
    let mut s = db.session();
    s.create().await.unwrap();
    let columns = rows(
        &mut s,
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns \
         WHERE table_name = $1 ORDER BY ordinal_position",
        &[store.session_table().into()],
    )
    .await;
    assert_eq!(
        columns[3],
        vec!["tenant_id".into(), "bigint".into(), "NO".into()]
    );
    assert_eq!(columns.len(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_companion_layout() {
    let (db, _dir) = common::sqlite().await;
    let store = common::adk_store(&db, AdkConfig::default()).await;
    let mut s = db.session();
    s.create().await.unwrap();
    let info =
        |t: &str| format!("SELECT name, type, \"notnull\", pk FROM pragma_table_info('{t}')");
    let sessions = rows(&mut s, &info(store.session_table()), &[]).await;
    let shape: Vec<String> = sessions
        .iter()
        .map(|r| format!("{:?} {:?} {:?} {:?}", r[0], r[1], r[2], r[3]))
        .collect();
    assert_eq!(
        shape,
        [
            r#"Text("id") Text("TEXT") Int(0) Int(1)"#,
            r#"Text("app_name") Text("TEXT") Int(1) Int(0)"#,
            r#"Text("user_id") Text("TEXT") Int(1) Int(0)"#,
            r#"Text("state") Text("TEXT") Int(1) Int(0)"#,
            r#"Text("create_time") Text("REAL") Int(1) Int(0)"#,
            r#"Text("update_time") Text("REAL") Int(1) Int(0)"#,
        ]
    );
    let events = rows(&mut s, &info(store.events_table()), &[]).await;
    let types: Vec<(String, String)> = events
        .iter()
        .map(|r| (format!("{:?}", r[0]), format!("{:?}", r[1])))
        .collect();
    assert_eq!(types.len(), 18);
    for (col, ty) in [
        ("actions", "BLOB"),
        ("timestamp", "REAL"),
        ("partial", "INTEGER"),
        ("content", "TEXT"),
    ] {
        assert!(
            types.contains(&(format!("Text({col:?})"), format!("Text({ty:?})"))),
            "{col}: {types:?}"
        );
    }
    let fk = rows(
        &mut s,
        &format!(
            "SELECT \"table\", on_delete FROM pragma_foreign_key_list('{}')",
            store.events_table()
        ),
        &[],
    )
    .await;
    assert_eq!(
        fk,
        vec![vec![store.session_table().into(), "CASCADE".into()]]
    );
    let indexes = rows(
        &mut s,
        "SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'idx_%' \
         AND tbl_name IN ($1, $2) ORDER BY name",
        &[store.session_table().into(), store.events_table().into()],
    )
    .await;
    assert_eq!(indexes.len(), 3, "{indexes:?}");
}

async fn snapshot(db: &Database, store: &AdkStore) -> String {
    let mut s = db.session();
    s.create().await.unwrap();
    let sql = common::by_dialect(
        db,
        "SELECT type, name, sql FROM sqlite_master WHERE tbl_name IN ($1, $2) ORDER BY name",
        "SELECT table_name::text, column_name::text, data_type::text FROM information_schema.columns \
         WHERE table_name IN ($1, $2) UNION ALL SELECT tablename::text, indexname::text, indexdef \
         FROM pg_indexes WHERE tablename IN ($1, $2) ORDER BY 1, 2",
    );
    let r = rows(
        &mut s,
        sql,
        &[store.session_table().into(), store.events_table().into()],
    )
    .await;
    format!("{r:?}")
}

async fn rerun_is_a_no_op(db: Database) {
    let store = common::adk_store(&db, AdkConfig::default()).await;
    store
        .create_session("s", "app", "u", &json!({"k": 1}), None)
        .await
        .unwrap();
    let before = snapshot(&db, &store).await;
    for _ in 0..2 {
        store.create_tables().await.unwrap();
    }
    assert_eq!(snapshot(&db, &store).await, before);
    assert_eq!(
        store.get_session("s").await.unwrap().unwrap().state,
        json!({"k": 1})
    );
}

async fn concurrent_create_tables(db: Database) {
    let pool = common::fixed_pool(&db, 4).await;
    let config = AdkConfig::default()
        .session_table(common::unique("cc_s"))
        .events_table(common::unique("cc_e"));
    let store = AdkStore::new(pool, config).unwrap();
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.create_tables().await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    store
        .create_session("s", "app", "u", &json!({}), None)
        .await
        .unwrap();
}

/// `portable_ddl`: the seed's columns, keys, indexes and foreign key, without FILLFACTOR
/// and the partial GIN index; created concurrently without a transaction or lock; and the
/// store works on it. SQLite's layout is the same either way.
async fn portable_ddl(db: Database) {
    let pool = common::fixed_pool(&db, 4).await;
    let (s_name, e_name) = (common::unique("pd_s"), common::unique("pd_e"));
    let config = AdkConfig::default()
        .session_table(&s_name)
        .events_table(&e_name)
        .app_state_table(common::unique("pd_a"))
        .user_state_table(common::unique("pd_u"))
        .portable_ddl(true);
    let store = AdkStore::new(pool.clone(), config).unwrap();
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.create_tables().await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    if db.dialect() == session_pool::Dialect::Postgres {
        let seed = common::adk_store(&db, AdkConfig::default()).await;
        let mut c = pool.session().await.unwrap();
        let portable = pg_shape(&mut c, &s_name, &s_name).await;
        let full = pg_shape(&mut c, seed.session_table(), seed.session_table()).await;
        assert!(
            full.contains("fillfactor=80") && full.contains("USING gin"),
            "{full}"
        );
        assert!(
            !portable.contains("fillfactor") && !portable.contains("gin"),
            "{portable}"
        );
        // Otherwise the same: columns, the other indexes, and the events table whole.
        let without = |shape: &str| {
            shape
                .lines()
                .map(|l| {
                    l.split("\", \"")
                        .filter(|part| !part.contains("gin") && !part.contains("fillfactor"))
                        .collect::<Vec<_>>()
                        .join("|")
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(without(&portable)[0], without(&full)[0], "columns");
        assert_eq!(
            pg_shape(&mut c, &e_name, &s_name).await,
            pg_shape(&mut c, seed.events_table(), seed.session_table()).await
        );
    }
    let service = session_pool::adk::SessionService::new(store);
    let mut session = service
        .create_session("app", "u", None, None)
        .await
        .unwrap();
    let e = session_pool::adk::Event::text("user", "user", "hi")
        .with_state_delta("k", json!(1))
        .with_state_delta("user:n", json!(2));
    service.append_event(&mut session, e).await.unwrap();
    let read = service
        .get_session("app", "u", &session.id, &Default::default())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.events.len(), 1);
    assert_eq!(read.state["user:n"], json!(2));
}

async fn bad_table_names_never_reach_sql(db: Database) {
    let pool = common::fixed_pool(&db, 1).await;
    for config in [
        AdkConfig::default().session_table("adk_sessions; DROP TABLE x"),
        AdkConfig::default().events_table("events\"--"),
        AdkConfig::default().session_table("a".repeat(64)),
        AdkConfig::default().owner_id_column("tenant_id INT); DROP TABLE x; --"),
    ] {
        let err = AdkStore::new(pool.clone(), config).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    }
    assert_eq!(pool.stats().acquired, 0, "nothing was sent");
}

on_both!(
    portable_ddl,
    rerun_is_a_no_op,
    concurrent_create_tables,
    bad_table_names_never_reach_sql
);

//! google-adk's session tables in the forms tests need besides the current one: schema
//! version 0, and `SqliteSessionService`'s SQLite file.

use session_pool::Database;
use session_pool::adk::DatabaseSessionTables;
use session_pool::prelude::*;

/// ADK's schema version 0 as an early google-adk 1.x made it: fewer event columns, no
/// metadata table.
pub async fn make_legacy_tables(db: &Database) {
    let mut admin = db.session();
    admin.create().await.unwrap();
    let (blob, json, time) = match db.dialect() {
        session_pool::Dialect::Postgres => ("BYTEA", "JSONB", "TIMESTAMP"),
        _ => ("BLOB", "TEXT", "DATETIME"),
    };
    for ddl in [
        format!(
            "CREATE TABLE sessions (app_name VARCHAR(128) NOT NULL, user_id VARCHAR(128) NOT NULL, \
             id VARCHAR(128) NOT NULL, state {json} NOT NULL, create_time {time} NOT NULL, \
             update_time {time} NOT NULL, PRIMARY KEY (app_name, user_id, id))"
        ),
        format!(
            "CREATE TABLE events (id VARCHAR(128) NOT NULL, app_name VARCHAR(128) NOT NULL, \
             user_id VARCHAR(128) NOT NULL, session_id VARCHAR(128) NOT NULL, \
             invocation_id VARCHAR(256) NOT NULL, author VARCHAR(256) NOT NULL, \
             actions {blob} NOT NULL, long_running_tool_ids_json TEXT, branch VARCHAR(256), \
             timestamp {time} NOT NULL, content {json}, grounding_metadata {json}, \
             partial BOOLEAN, turn_complete BOOLEAN, error_code VARCHAR(256), \
             error_message TEXT, interrupted BOOLEAN, \
             PRIMARY KEY (id, app_name, user_id, session_id), \
             FOREIGN KEY (app_name, user_id, session_id) \
             REFERENCES sessions (app_name, user_id, id) ON DELETE CASCADE)"
        ),
    ] {
        admin.execute_update(&ddl, &[]).await.unwrap();
    }
}

/// google-adk's `SqliteSessionService` tables on the file, made by `create_tables` with
/// [`DatabaseSessionTables::sqlite_session_service`]; checked to be that form.
pub async fn sqlite_service_tables(db: &Database) {
    let tables = DatabaseSessionTables::new(super::fixed_pool(db, 1).await);
    tables
        .sqlite_session_service()
        .create_tables()
        .await
        .unwrap();
    assert_eq!(table_count(db, "adk_internal_metadata").await, 0);
    let mut admin = db.session();
    admin.create().await.unwrap();
    let rows = admin
        .execute_sql(
            "SELECT type FROM pragma_table_info('sessions') WHERE name = 'update_time'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.rows[0].get::<String>(0).unwrap(), "REAL");
}

pub async fn table_count(db: &Database, name: &str) -> i64 {
    let sql = super::by_dialect(
        db,
        "SELECT count(*) FROM sqlite_master WHERE name = $1",
        "SELECT count(*) FROM information_schema.tables \
         WHERE table_schema = current_schema() AND table_name = $1",
    );
    let mut admin = db.session();
    admin.create().await.unwrap();
    let rows = admin
        .execute_sql(sql, &[session_pool::Value::from(name)])
        .await
        .unwrap();
    rows.rows[0].get::<i64>(0).unwrap()
}

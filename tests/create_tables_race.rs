//! `create_tables` racing a creator that takes no lock of ours, as the Python stores'
//! `create_all` / `create_tables` do at an app's start-up: a table the other creates
//! while ours runs fails our `CREATE TABLE IF NOT EXISTS` on PostgreSQL's catalog (the
//! name is checked before the other transaction commits: 23505 on `pg_type`). Each store
//! then creates the rest again and succeeds. Here the other creator is held open in a
//! transaction, so the race is certain; PostgreSQL only (SQLite serialises DDL).
mod common;

use std::future::Future;
use std::time::Duration;

use session_pool::adk::{AdkConfig, AdkStore, DatabaseSessionTables, SessionService};
use session_pool::items::{ItemsConfig, ItemsStore};
use session_pool::prelude::*;
use session_pool::{Database, Result};

/// Runs `create` while another transaction holds `ddl` uncommitted, commits it once
/// `create` has had time to block on the name, and returns `create`'s outcome.
async fn racing(
    db: &Database,
    ddl: &str,
    create: impl Future<Output = Result<()>> + Send + 'static,
) {
    let mut other = db.session();
    other.create().await.unwrap();
    let mut tx = other.transaction().await.unwrap();
    tx.execute_update(ddl, &[]).await.unwrap();
    let creating = tokio::spawn(create);
    // Until the other creator commits, ours waits on the name it holds.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !creating.is_finished(),
        "create_tables did not meet the other creator"
    );
    tx.commit().await.unwrap();
    creating
        .await
        .unwrap()
        .expect("create_tables creates the rest again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adk_database_tables() {
    let Some((db, _, _)) = common::postgres_in_schema("race").await else {
        return;
    };
    let tables = DatabaseSessionTables::new(common::fixed_pool(&db, 2).await);
    let t = tables.clone();
    racing(
        &db,
        "CREATE TABLE app_states (app_name VARCHAR(128) NOT NULL PRIMARY KEY, \
         state JSONB NOT NULL, update_time TIMESTAMP WITHOUT TIME ZONE NOT NULL)",
        async move { t.create_tables().await },
    )
    .await;
    let svc = SessionService::on_tables(tables);
    svc.create_session("app", "u", None, None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adk_store() {
    let Some(db) = common::postgres().await else {
        return;
    };
    let sessions = common::unique("race_s");
    let config = AdkConfig::default()
        .session_table(&sessions)
        .events_table(common::unique("race_e"))
        .app_state_table(common::unique("race_a"))
        .user_state_table(common::unique("race_u"));
    let store = AdkStore::new(common::fixed_pool(&db, 2).await, config).unwrap();
    let s = store.clone();
    racing(
        &db,
        &format!(
            "CREATE TABLE {sessions} (id VARCHAR(128) PRIMARY KEY, \
             app_name VARCHAR(128) NOT NULL, user_id VARCHAR(128) NOT NULL, \
             state JSONB NOT NULL DEFAULT '{{}}'::jsonb, \
             create_time TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP, \
             update_time TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP)"
        ),
        async move { s.create_tables().await },
    )
    .await;
    let svc = SessionService::new(store);
    svc.create_session("app", "u", None, None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_store() {
    let Some(db) = common::postgres().await else {
        return;
    };
    let sessions = common::unique("race_is");
    let config = ItemsConfig::default()
        .sessions_table(&sessions)
        .messages_table(common::unique("race_im"));
    let store = ItemsStore::new(common::fixed_pool(&db, 2).await, config).unwrap();
    let s = store.clone();
    racing(
        &db,
        &format!(
            "CREATE TABLE {sessions} (session_id VARCHAR NOT NULL PRIMARY KEY, \
             created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL, \
             updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL)"
        ),
        async move { s.create_tables().await },
    )
    .await;
    let items = store.session("c1").unwrap();
    items
        .add_items(&[serde_json::json!({"role": "user"})])
        .await
        .unwrap();
    assert_eq!(items.get_items(None).await.unwrap().len(), 1);
}

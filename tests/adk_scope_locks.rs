//! The order in which an append locks the rows of ADK's shared scopes on PostgreSQL: the
//! app's row before the user's, as every create does (and as google-adk's own service
//! takes its locks). Two writers taking them in opposite orders deadlock; this one was
//! seen between an append and a create of the same user.
mod common;

use std::time::Duration;

use serde_json::json;
use session_pool::Database;
use session_pool::adk::{AdkConfig, AdkStore, DatabaseSessionTables, Event, SessionService};
use session_pool::prelude::*;

/// On the store's tables.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_appends_lock_the_app_row_first() {
    let Some(db) = common::postgres().await else {
        return;
    };
    let (app, user) = (common::unique("lk_a"), common::unique("lk_u"));
    let config = AdkConfig::default()
        .session_table(common::unique("lk_s"))
        .events_table(common::unique("lk_e"))
        .app_state_table(&app)
        .user_state_table(&user);
    let store = AdkStore::new(common::fixed_pool(&db, 2).await, config).unwrap();
    store.create_tables().await.unwrap();
    app_row_first(&db, SessionService::new(store), &app, &user).await;
}

/// On google-adk's tables.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_appends_lock_the_app_row_first() {
    let Some((db, _, _)) = common::postgres_in_schema("adklocks").await else {
        return;
    };
    let tables = DatabaseSessionTables::new(common::fixed_pool(&db, 2).await);
    tables.create_tables().await.unwrap();
    app_row_first(
        &db,
        SessionService::on_tables(tables),
        "app_states",
        "user_states",
    )
    .await;
}

/// While another transaction holds the app's row, an append with `app:` and `user:` keys
/// waits for it without holding the user's row; once it is let go, the append goes
/// through. Each of the calls `append_event` and `append_events` is checked.
async fn app_row_first(db: &Database, svc: SessionService, app_table: &str, user_table: &str) {
    let mut s = svc.create_session("app", "u", None, None).await.unwrap();
    // The scope rows exist (the store makes them at the first key).
    let first = Event::new("user")
        .with_state_delta("app:n", json!(0))
        .with_state_delta("user:n", json!(0));
    svc.append_event(&mut s, first).await.unwrap();
    for batch in [false, true] {
        let mut holder = db.session();
        holder.create().await.unwrap();
        let mut tx = holder.transaction().await.unwrap();
        tx.execute_sql(
            &format!("SELECT 1 FROM {app_table} WHERE app_name = 'app' FOR UPDATE"),
            &[],
        )
        .await
        .unwrap();
        let writer = {
            let (svc, mut s) = (svc.clone(), s.clone());
            tokio::spawn(async move {
                let event = Event::new("model")
                    .with_state_delta("app:n", json!(1))
                    .with_state_delta("user:n", json!(1));
                if batch {
                    svc.append_events(&mut s, vec![Event::new("user"), event])
                        .await
                        .map(|_| s)
                } else {
                    svc.append_event(&mut s, event).await.map(|_| s)
                }
            })
        };
        wait_for_a_lock_wait(db).await;
        // The waiting append holds no lock on the user's row.
        let mut probe = db.session();
        probe.create().await.unwrap();
        let taken = probe
            .execute_sql(
                &format!(
                    "SELECT 1 FROM {user_table} WHERE app_name = 'app' AND user_id = 'u' \
                     FOR UPDATE NOWAIT"
                ),
                &[],
            )
            .await;
        assert!(
            taken.is_ok(),
            "batch {batch}: the user's row is held by an append waiting for the app's: \
             {taken:?}"
        );
        tx.rollback().await.unwrap();
        s = writer.await.unwrap().unwrap();
    }
    let user = svc.get_user_state("app", "u").await.unwrap();
    assert_eq!(user["n"], 1);
}

/// Waits until some backend of this database waits for a lock.
async fn wait_for_a_lock_wait(db: &Database) {
    let mut watcher = db.session();
    watcher.create().await.unwrap();
    for _ in 0..500 {
        let waiting: i64 = common::scalar(
            &mut watcher,
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
            &[],
        )
        .await;
        if waiting > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no append came to wait for the app's row");
}

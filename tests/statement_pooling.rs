//! Through a real PgBouncer whose database runs in statement pooling mode
//! (`pool_mode = statement`, `scripts/test` starts both PgBouncers with such an entry):
//! single statements work, and a transaction, which the pooler refuses by closing the
//! connection, is a typed [`Error::Unsupported`] that names the setting to change, not a
//! lost session to retry on another (which the pooler would refuse again). The stores
//! make their tables one statement at a time instead, and the ADK service, whose calls
//! are one statement each on PostgreSQL, runs through it.
mod common;

use serde_json::json;
use session_pool::adk::{AdkConfig, AdkStore, Event, GetSessionConfig, SessionService};
use session_pool::items::{ItemsConfig, ItemsStore};
use session_pool::prelude::*;
use session_pool::{Database, Error, ErrorKind};

async fn statement_mode(var: &str) {
    let Some(url) = common::pgbouncer(var) else {
        return;
    };
    let db = Database::open(&format!("{url}?pgbouncer=true"))
        .await
        .unwrap_or_else(|e| panic!("PgBouncer at {url}: {e}"));
    let pool = common::fixed_pool(&db, 2).await;
    let one = async |s: &mut session_pool::Session| {
        let rs = s.execute_sql("SELECT 1::int8 AS n", &[]).await?;
        rs.one()?.get::<i64>("n")
    };
    let mut s = pool.session().await.unwrap();
    assert_eq!(one(&mut s).await.unwrap(), 1);

    let refused = |err: Error| {
        assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
        let text = err.to_string();
        assert!(text.contains("statement pooling mode"), "{text}");
        assert!(text.contains("pool_mode = transaction"), "{text}");
    };
    refused(s.transaction().await.map(drop).unwrap_err());
    drop(s);
    // Not retried as an abort or a lost session: the same refusal.
    let mut s = pool.session().await.unwrap();
    let res = s
        .run_in_transaction(async |tx| tx.execute_sql("SELECT 1", &[]).await.map(drop))
        .await;
    refused(res.unwrap_err());
    drop(s);
    // The stores make their tables one statement at a time when the pooler refuses the
    // transaction (as SQLSpec's store does), twice over: they were made the first time.
    let adk_tables = ["stmt_s", "stmt_e", "stmt_a", "stmt_u"].map(common::unique);
    let [sessions, events, apps, users] = adk_tables.clone();
    let config = AdkConfig::default()
        .session_table(sessions)
        .events_table(events)
        .app_state_table(apps)
        .user_state_table(users);
    let store = AdkStore::new(pool.clone(), config.clone()).unwrap();
    store.create_tables().await.unwrap();
    store.create_tables().await.unwrap();
    let messages = common::unique("stmt_m");
    let items_config = ItemsConfig::default()
        .sessions_table(common::unique("stmt_is"))
        .messages_table(&messages);
    let items = ItemsStore::new(pool.clone(), items_config).unwrap();
    items.create_tables().await.unwrap();
    items.create_tables().await.unwrap();
    // Every object there, as the transaction would have made it: read on the server.
    let direct = common::postgres()
        .await
        .expect("the server behind the pooler");
    let mut s = direct.session();
    s.create().await.unwrap();
    // Indexes per table: the sessions' key, (app, user), update time and state (GIN);
    // the events' key and session index; the state tables' keys; the messages' key and
    // index.
    for (name, expected) in adk_tables.iter().chain([&messages]).zip([4, 2, 1, 1, 2]) {
        let rs = s
            .execute_sql(
                "SELECT count(*)::int8 AS n FROM pg_indexes WHERE tablename = $1",
                &session_pool::params![name],
            )
            .await
            .unwrap();
        let indexes = rs.one().unwrap().get::<i64>("n").unwrap();
        assert_eq!(indexes, expected, "{name}");
    }
    drop(s);
    // google-adk's tables need their transaction (as Python's service does).
    let tables = session_pool::adk::DatabaseSessionTables::new(pool.clone());
    refused(tables.create_tables().await.unwrap_err());
    // The ADK service runs through the pooler: each of its calls on PostgreSQL is one
    // statement, the create with `app:` and `user:` keys included.
    let svc = SessionService::new(store);
    let state = json!({"app:theme": "dark", "user:lang": "fr", "step": 1});
    let mut session = svc
        .create_session("app", "u1", Some(state.as_object().unwrap().clone()), None)
        .await
        .unwrap();
    let event = Event::text("agent", "agent", "hi").with_state_delta("user:seen", json!(true));
    svc.append_event(&mut session, event).await.unwrap();
    let read = svc
        .get_session("app", "u1", &session.id, &GetSessionConfig::default())
        .await
        .unwrap()
        .expect("the session");
    assert_eq!(read.events.len(), 1);
    assert_eq!(read.state["app:theme"], "dark");
    assert_eq!(read.state["user:lang"], "fr");
    assert_eq!(read.state["user:seen"], true);
    assert_eq!(read.state["step"], 1);
    // The pool replaced the closed sessions and serves single statements still.
    let mut s = pool.session().await.unwrap();
    assert_eq!(one(&mut s).await.unwrap(), 1);
    drop(s);
    assert!(pool.stats().replaced >= 3, "{:?}", pool.stats());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbouncer_1_18() {
    statement_mode("PGBOUNCER_STATEMENT_URL").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbouncer_current() {
    statement_mode("PGBOUNCER_CURRENT_STATEMENT_URL").await;
}

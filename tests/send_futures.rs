//! Every public future can move into `tokio::spawn`: checkouts (and the guard itself),
//! sessions' queries, transactions, snapshots, batches, `run_in_transaction`, and every
//! store and service operation. Each one is spawned and run here, on SQLite.
mod common;

use std::future::Future;

use serde_json::json;
use session_pool::adk::{AdkConfig, Event, GetSessionConfig, SessionService};
use session_pool::prelude::*;
use session_pool::{Error, FixedSizePool, KeySet, Result, params};

/// Runs `f` on another task: it only compiles if the future is `Send + 'static`.
async fn spawned<T: Send + 'static>(f: impl Future<Output = T> + Send + 'static) -> T {
    tokio::spawn(f).await.expect("the task ran")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_session_and_transaction_futures_are_send() {
    let (db, _dir) = common::sqlite().await;
    let pool = FixedSizePool::builder().size(2).build(&db).await.unwrap();

    // Checkouts, and the guard itself, cross tasks.
    let p = pool.clone();
    let checkout = spawned(async move { p.session().await }).await.unwrap();
    let mut checkout = spawned(async move {
        let mut c = checkout;
        c.execute_update("CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER)", &[])
            .await
            .unwrap();
        c
    })
    .await;
    let p = pool.clone();
    let pooled = spawned(async move { p.get(None).await }).await.unwrap();
    pool.put(pooled).unwrap();

    // Session queries.
    let rows = spawned(async move {
        let r = checkout.execute_sql("SELECT 1 AS one", &[]).await;
        let read = checkout.read("t", &["id"], &KeySet::all(), None, 0).await;
        (r, read, checkout)
    })
    .await;
    assert_eq!(rows.0.unwrap().len(), 1);
    assert!(rows.1.unwrap().is_empty());
    let mut checkout = rows.2;

    // A batch commits from a task.
    let mut checkout = spawned(async move {
        let mut batch = checkout.batch().unwrap();
        batch
            .insert("t", &["id", "n"], vec![params![1, 0]])
            .unwrap();
        batch.commit().await.unwrap();
        checkout
    })
    .await;

    // A transaction, its queries and its commit.
    let mut checkout = spawned(async move {
        let mut tx = checkout.transaction().await.unwrap();
        tx.execute_update("UPDATE t SET n = n + 1 WHERE id = $1", &params![1])
            .await
            .unwrap();
        tx.update("t", &["id", "n"], vec![params![1, 5]]).unwrap();
        tx.commit().await.unwrap();
        let mut snapshot = checkout.snapshot().await.unwrap();
        let n = snapshot
            .execute_sql("SELECT n FROM t WHERE id = 1", &[])
            .await
            .unwrap()
            .deserialize_one::<i64>()
            .unwrap();
        snapshot.close().await.unwrap();
        assert_eq!(n, 5);
        checkout
    })
    .await;

    // run_in_transaction, with an owning `async move` closure and the crate's error type,
    // and with an application error type.
    #[derive(Debug)]
    #[allow(dead_code)]
    enum AppError {
        Db(Error),
    }
    impl From<Error> for AppError {
        fn from(e: Error) -> Self {
            AppError::Db(e)
        }
    }
    let n = spawned(async move {
        let first = checkout
            .run_in_transaction(async move |tx| {
                tx.execute_update("UPDATE t SET n = n + 1 WHERE id = 1", &[])
                    .await?;
                Ok::<_, Error>(())
            })
            .await;
        first.unwrap();
        checkout
            .run_in_transaction(async move |tx| {
                let n: i64 = tx
                    .execute_sql("SELECT n FROM t WHERE id = 1", &[])
                    .await?
                    .deserialize_one()?;
                Ok::<_, AppError>(n)
            })
            .await
    })
    .await;
    assert_eq!(n.unwrap(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_and_service_futures_are_send() {
    let (db, _dir) = common::sqlite().await;
    let store = common::adk_store(&db, AdkConfig::default()).await;
    let service = SessionService::new(store.clone());

    let s = store.clone();
    spawned(async move { s.create_tables().await })
        .await
        .unwrap();
    let s = store.clone();
    let record = spawned(async move { s.create_session("s1", "app", "u", &json!({}), None).await })
        .await
        .unwrap();
    let s = store.clone();
    let event = Event::text("user", "user", "hi")
        .to_record("app", "u", &record.id)
        .unwrap();
    let e = event.clone();
    spawned(async move { s.append_event(&e).await })
        .await
        .unwrap();
    let s = store.clone();
    let mut event2 = Event::text("user", "user", "again")
        .to_record("app", "u", &record.id)
        .unwrap();
    event2.id = "e2".into();
    spawned(async move {
        s.append_event_and_update_state(&event2, &json!({"k": 1}), None)
            .await
    })
    .await
    .unwrap();
    let s = store.clone();
    let results = spawned(async move {
        let a = s.get_session("s1").await.map(|r| r.is_some());
        let b = s
            .update_session_state("s1", &json!({"k": 2}))
            .await
            .map(|_| true);
        let c = s
            .list_sessions("app", Some("u"))
            .await
            .map(|l| !l.is_empty());
        let d = s
            .list_sessions_page("app", None, 1, None)
            .await
            .map(|p| !p.sessions.is_empty());
        let e = s
            .get_events("s1", None, Some(10))
            .await
            .map(|e| e.len() == 2);
        let f = s
            .delete_idle_sessions(chrono::Utc::now() - chrono::Duration::days(1))
            .await
            .map(|n| n == 0);
        [a, b, c, d, e, f]
    })
    .await;
    for r in results {
        assert!(r.unwrap());
    }

    let svc = service.clone();
    let got = spawned(async move {
        let mut session = svc.create_session("app", "u2", None, None).await?;
        let event = Event::text("user", "user", "hello").with_state_delta("topic", json!("x"));
        svc.append_event(&mut session, event).await?;
        let again = svc
            .get_session("app", "u2", &session.id, &GetSessionConfig::default())
            .await?;
        let listed = svc.list_sessions("app", Some("u2")).await?;
        let deleted = svc.delete_session("app", "u2", &session.id).await?;
        Ok::<_, Error>((
            again.map(|s| s.state["topic"].clone()),
            listed.len(),
            deleted,
        ))
    })
    .await
    .unwrap();
    assert_eq!(got, (Some(json!("x")), 1, true));
    let s = store.clone();
    assert!(
        spawned(async move { s.delete_session("s1").await })
            .await
            .unwrap()
    );

    let items = common::items_store(&db).await;
    let i = items.clone();
    spawned(async move { i.create_tables().await })
        .await
        .unwrap();
    let conversation = items.session("c1").unwrap();
    let popped: Result<_> = spawned(async move {
        conversation.add_items(&[json!({"role": "user"})]).await?;
        let all = conversation.get_items(None).await?;
        let last = conversation.pop_item().await?;
        conversation.clear_session().await?;
        Ok((all.len(), last))
    })
    .await;
    assert_eq!(popped.unwrap(), (1, Some(json!({"role": "user"}))));
}

//! The server's `idle_session_timeout` (1 s): the ping task keeps sessions alive; without it
//! they are replaced on use.
mod common;

use std::time::Duration;

use session_pool::prelude::*;
use session_pool::{Database, PingingOptions, PingingPool};

const SIZE: usize = 3;

async fn database_with_idle_timeout(tag: &str) -> Option<(Database, String)> {
    let url = common::pg_url()?;
    let app = common::unique(tag);
    let sep = if url.contains('?') { '&' } else { '?' };
    let url = format!("{url}{sep}options[idle_session_timeout]=1000");
    let db = session_pool::DatabaseOptions::new(url)
        .application_name(&app)
        .open()
        .await
        .unwrap();
    Some((db, app))
}

fn pool() -> PingingPool {
    PingingPool::new(
        PingingOptions::default()
            .size(SIZE)
            .ping_interval(Duration::from_millis(250)),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_task_keeps_sessions_alive_past_the_server_timeout() {
    let Some((db, app)) = database_with_idle_timeout("idle_kept").await else {
        return;
    };
    let mut admin = common::pg_admin().await.unwrap();
    let pool = pool();
    pool.bind(&db).await.unwrap();
    let pids = common::backends(&mut admin, &app).await;
    assert_eq!(pids.len(), SIZE);
    let task = pool.spawn_ping_task(Duration::from_millis(300));

    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        common::backends(&mut admin, &app).await,
        pids,
        "the same backends, all alive"
    );
    let s = pool.stats();
    assert_eq!((s.replaced, s.created), (0, SIZE as u64), "{s:?}");
    assert!(s.pinged >= (SIZE * 5) as u64, "pinged {} times", s.pinged);
    drop(task);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_pings_sessions_time_out_and_are_replaced_on_use() {
    let Some((db, app)) = database_with_idle_timeout("idle_lost").await else {
        return;
    };
    let mut admin = common::pg_admin().await.unwrap();
    let pool = pool();
    pool.bind(&db).await.unwrap();
    let pids = common::backends(&mut admin, &app).await;

    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert!(
        common::backends(&mut admin, &app).await.is_empty(),
        "the server closed them"
    );
    let mut held = Vec::new();
    for _ in 0..SIZE {
        let mut s = pool.get(None).await.unwrap();
        s.execute_sql("SELECT 1", &[]).await.unwrap();
        held.push(s);
    }
    assert_eq!(pool.stats().replaced, SIZE as u64);
    let now = common::backends(&mut admin, &app).await;
    assert_eq!(now.len(), SIZE);
    assert!(now.iter().all(|p| !pids.contains(p)));
    for s in held {
        pool.put(s).unwrap();
    }
}

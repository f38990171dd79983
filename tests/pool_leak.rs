//! The leak warning: a checkout held past the threshold is logged, with its backtrace.
mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use session_pool::{FixedSizeOptions, FixedSizePool, PoolOptions};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_checkouts_are_logged_while_held_and_when_returned() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_env_filter("session_pool::leak=warn")
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let (db, _dir) = common::sqlite().await;
    let pool = FixedSizePool::new(
        FixedSizeOptions::default()
            .size(2)
            .pool(PoolOptions::default().leak_threshold(Duration::from_millis(100), true)),
    )
    .unwrap();
    session_pool::AbstractSessionPool::bind(&pool, &db)
        .await
        .unwrap();
    let task = pool.spawn_ping_task(Duration::from_millis(20));

    // A short checkout: nothing logged.
    drop(pool.session().await.unwrap());
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(captured.text().is_empty(), "{}", captured.text());

    // A long one: logged while still held (by the ping task), once, with the backtrace.
    let held = pool.session().await.unwrap();
    let id = held.session_id().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let text = captured.text();
    assert_eq!(text.matches("still checked out").count(), 1, "{text}");
    assert!(text.contains(&id), "{text}");
    assert!(
        text.contains("pool_leak"),
        "the backtrace names the test: {text}"
    );
    drop(held);
    drop(task);
}

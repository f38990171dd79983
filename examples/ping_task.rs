//! A PingingPool kept alive by the background ping task, next to the Python client's usage.
//!
//! ```sh
//! cargo run --example ping_task                      # SQLite file in the temp directory
//! DATABASE_URL=postgres://… cargo run --example ping_task
//! ```
//!
//! The Python client leaves pinging to the application:
//!
//! ```python
//! pool = PingingPool(size=4, default_timeout=5, ping_interval=1)
//! database = instance.database("db", pool=pool)
//!
//! def background_loop():
//!     while True:
//!         pool.ping()
//!
//! threading.Thread(target=background_loop, daemon=True).start()
//!
//! with pool.session() as session:
//!     session.execute_sql("SELECT 1")
//! ```

use std::time::Duration;

use session_pool::prelude::*;
use session_pool::{Database, PingingPool, Result, params};

#[tokio::main]
async fn main() -> Result<()> {
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| {
        let path = std::env::temp_dir().join("session-pool-ping-task.db");
        format!("sqlite://{}", path.display())
    });
    let database = Database::open(&url).await?;

    // pool = PingingPool(size=4, default_timeout=5, ping_interval=1)
    let pool = PingingPool::builder()
        .size(4)
        .default_timeout(Duration::from_secs(5))
        .ping_interval(Duration::from_millis(200))
        .build(&database)
        .await?;
    println!("pool      {} sessions on {}", pool.size(), database.name());

    // The background loop: one task, stopped when `task` is dropped or the pool closes.
    let task = pool.spawn_ping_task(Duration::from_millis(100));

    // with pool.session() as session: ...
    for i in 0..3 {
        let mut session = pool.session().await?;
        let row = session
            .execute_sql("SELECT $1 + 1 AS n", &params![i])
            .await?
            .one()?;
        println!("query     {} -> {}", i, row.get::<i64>("n")?);
    }

    // Idle sessions fall due and the task pings them.
    tokio::time::sleep(Duration::from_millis(700)).await;
    task.shutdown().await; // finishes the round under way, then stops
    let stats = pool.stats();
    println!(
        "stats     open={} idle={} acquired={} released={} pinged={} replaced={}",
        stats.open, stats.idle, stats.acquired, stats.released, stats.pinged, stats.replaced
    );
    assert!(stats.pinged > 0, "the task pinged idle sessions");

    pool.close().await;
    println!(
        "closed    {:?}",
        pool.get(None).await.err().map(|e| e.to_string())
    );
    Ok(())
}

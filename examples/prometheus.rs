//! Pool metrics in Prometheus' text format: install a `metrics` recorder (here
//! `metrics-exporter-prometheus`), build a pool, do some work, and render what a scrape of
//! `/metrics` would return. In a service, serve `handle.render()` from your HTTP server,
//! or enable the exporter's `http-listener` feature.
//!
//! ```sh
//! cargo run --example prometheus --features metrics
//! DATABASE_URL=postgres://… cargo run --example prometheus --features metrics
//! ```

use std::time::Duration;

use metrics_exporter_prometheus::PrometheusBuilder;
use session_pool::prelude::*;
use session_pool::{Database, FixedSizePool, PoolOptions, Result};

#[tokio::main]
async fn main() -> Result<()> {
    // Install the recorder first: a pool takes its metric handles when it is built.
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .expect("a recorder can be installed once");

    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| {
        let path = std::env::temp_dir().join("session-pool-prometheus.db");
        format!("sqlite://{}", path.display())
    });
    let db = Database::open(&url).await?;
    let pool = FixedSizePool::builder()
        .size(4)
        .default_timeout(Duration::from_millis(50))
        .pool(PoolOptions::default().name("orders"))
        .build(&db)
        .await?;

    // Some work: concurrent checkouts, and one that times out while all four are held.
    let mut tasks = Vec::new();
    for i in 0..16 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let mut s = pool.session().await?;
            s.execute_sql("SELECT $1 + 1 AS n", &session_pool::params![i])
                .await?;
            Ok::<_, session_pool::Error>(())
        }));
    }
    for t in tasks {
        t.await.expect("task")?;
    }
    let held: Vec<_> = futures_util::future::try_join_all((0..4).map(|_| pool.session())).await?;
    let timed_out = pool.session().await;
    assert!(timed_out.is_err(), "all four sessions are held");
    drop(held);

    // The gauges are sampled by the pool's maintenance task about once a second.
    tokio::time::sleep(Duration::from_millis(1200)).await;

    let text = handle.render();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        println!("{line}");
    }
    for expected in [
        "db_client_connection_count",
        "db_client_connection_wait_time",
        "db_client_connection_use_time",
        "db_client_connection_create_time",
        "db_client_connection_timeouts",
        "session_pool_sessions_created",
    ] {
        assert!(text.contains(expected), "{expected} is exported:\n{text}");
    }
    pool.close().await;
    Ok(())
}

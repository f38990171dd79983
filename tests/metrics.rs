//! The `metrics` feature: OpenTelemetry's connection-pool instruments and Spanner's
//! counters, read back through metrics-util's debugging recorder.
#![cfg(feature = "metrics")]
mod common;

use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use session_pool::prelude::*;
use session_pool::{Error, FixedSizePool, PoolOptions};

const POOL_LABEL: &str = "db.client.connection.pool.name";

/// The value of `name` for pool `pool` (and `state`, when given).
fn value<'s>(
    snapshot: &'s [(metrics_util::CompositeKey, DebugValue)],
    name: &str,
    pool: &str,
    state: Option<&str>,
) -> &'s DebugValue {
    snapshot
        .iter()
        .find(|(key, _)| {
            let key = key.key();
            key.name() == name
                && key
                    .labels()
                    .any(|l| l.key() == POOL_LABEL && l.value() == pool)
                && state.is_none_or(|s| key.labels().any(|l| l.key() == "state" && l.value() == s))
        })
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no {name} for {pool} ({state:?})"))
}

fn counter(v: &DebugValue) -> u64 {
    match v {
        DebugValue::Counter(n) => *n,
        other => panic!("not a counter: {other:?}"),
    }
}

fn gauge(v: &DebugValue) -> f64 {
    match v {
        DebugValue::Gauge(g) => g.into_inner(),
        other => panic!("not a gauge: {other:?}"),
    }
}

fn samples(v: &DebugValue) -> Vec<f64> {
    match v {
        DebugValue::Histogram(h) => h.iter().map(|x| x.into_inner()).collect(),
        other => panic!("not a histogram: {other:?}"),
    }
}

fn take(snapshotter: &Snapshotter) -> Vec<(metrics_util::CompositeKey, DebugValue)> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(k, _, _, v)| (k, v))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pools_export_the_connection_pool_instruments() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("the only recorder of this test binary");

    let (db, _dir) = common::sqlite().await;
    let name = common::unique("metrics_pool");
    let pool = FixedSizePool::builder()
        .size(2)
        .default_timeout(Duration::from_millis(50))
        .pool(
            PoolOptions::default()
                .name(&name)
                .check_idle_after(Duration::ZERO),
        )
        .build(&db)
        .await
        .unwrap();

    for _ in 0..3 {
        let mut s = pool.session().await.unwrap();
        s.execute_sql("SELECT 1", &[]).await.unwrap();
    }
    let held = (pool.session().await.unwrap(), pool.get(None).await.unwrap());
    assert!(matches!(
        pool.session().await,
        Err(Error::PoolTimeout { .. })
    ));
    let (a, b) = held;
    drop(a);
    pool.put(b).unwrap();
    let report = pool.ping().await.unwrap();
    assert_eq!(report.pinged, 2);
    // The gauges are sampled by the pool's maintenance task about once a second.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let snap = take(&snapshotter);
    assert_eq!(
        counter(value(&snap, "session_pool.sessions.created", &name, None)),
        2
    );
    assert_eq!(
        counter(value(&snap, "db.client.connection.timeouts", &name, None)),
        1
    );
    assert_eq!(
        counter(value(&snap, "session_pool.sessions.pinged", &name, None)),
        2
    );
    assert_eq!(
        gauge(value(&snap, "db.client.connection.max", &name, None)),
        2.0
    );
    assert_eq!(
        gauge(value(
            &snap,
            "db.client.connection.count",
            &name,
            Some("idle")
        )),
        2.0
    );
    assert_eq!(
        gauge(value(
            &snap,
            "db.client.connection.count",
            &name,
            Some("used")
        )),
        0.0
    );
    assert_eq!(
        gauge(value(
            &snap,
            "db.client.connection.pending_requests",
            &name,
            None
        )),
        0.0
    );
    let create = samples(value(
        &snap,
        "db.client.connection.create_time",
        &name,
        None,
    ));
    assert_eq!(create.len(), 2, "{create:?}");
    assert!(create.iter().all(|s| *s > 0.0));
    // Five checkouts succeeded (three, then the two held); the timed-out one is not a wait
    // that obtained a session.
    let wait = samples(value(&snap, "db.client.connection.wait_time", &name, None));
    assert_eq!(wait.len(), 5, "{wait:?}");
    let used = samples(value(&snap, "db.client.connection.use_time", &name, None));
    assert_eq!(used.len(), 5, "{used:?}");
}

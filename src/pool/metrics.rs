//! What a pool counts, and what it exports through the `metrics` facade (feature
//! `metrics`): OpenTelemetry's connection-pool instruments and Spanner's session counters.
//! Without the feature the exporting half is a set of no-ops the compiler removes.
//!
//! Instruments, each labelled `db.client.connection.pool.name`:
//!
//! | name | kind | what |
//! |---|---|---|
//! | `db.client.connection.count` | gauge, `state` = `idle` / `used` | sessions by state |
//! | `db.client.connection.max` | gauge | the most sessions allowed open |
//! | `db.client.connection.pending_requests` | gauge | checkouts waiting |
//! | `db.client.connection.timeouts` | counter | checkouts that timed out |
//! | `db.client.connection.create_time` | histogram, seconds | creating a session |
//! | `db.client.connection.wait_time` | histogram, seconds | checking a session out |
//! | `db.client.connection.use_time` | histogram, seconds | from checkout to return |
//! | `session_pool.sessions.created` | counter | sessions created |
//! | `session_pool.sessions.deleted` | counter | sessions closed by the pool |
//! | `session_pool.sessions.replaced` | counter | sessions found lost and replaced |
//! | `session_pool.sessions.pinged` | counter | successful pings |
//!
//! The gauges are sampled by the pool's maintenance task about once a second, and after
//! each ping round; counters and histograms are recorded as things happen. Install the
//! recorder before building pools: a pool takes its handles when it is built.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use super::stats::PoolStats;
pub(crate) use crate::stopwatch::Stopwatch;

/// Event counters, as Spanner's Go and Java clients export them.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) get_timeouts: AtomicU64,
    pub(crate) created: AtomicU64,
    pub(crate) deleted: AtomicU64,
    pub(crate) replaced: AtomicU64,
    pub(crate) pinged: AtomicU64,
    pub(crate) export: Export,
}

impl Counters {
    pub(crate) fn new(export: Export) -> Self {
        Counters {
            export,
            ..Counters::default()
        }
    }

    pub(crate) fn add_get_timeouts(&self, n: u64) {
        self.get_timeouts.fetch_add(n, Relaxed);
        self.export.timeouts(n);
    }

    pub(crate) fn add_created(&self, n: u64) {
        self.created.fetch_add(n, Relaxed);
        self.export.created(n);
    }

    pub(crate) fn add_deleted(&self, n: u64) {
        self.deleted.fetch_add(n, Relaxed);
        self.export.deleted(n);
    }

    pub(crate) fn add_replaced(&self, n: u64) {
        self.replaced.fetch_add(n, Relaxed);
        self.export.replaced(n);
    }

    pub(crate) fn add_pinged(&self, n: u64) {
        self.pinged.fetch_add(n, Relaxed);
        self.export.pinged(n);
    }
}

/// The pool's handles on the installed `metrics` recorder.
#[cfg(feature = "metrics")]
#[derive(Debug)]
pub(crate) struct Export {
    idle: metrics::Gauge,
    used: metrics::Gauge,
    max: metrics::Gauge,
    pending: metrics::Gauge,
    timeouts: metrics::Counter,
    create_time: metrics::Histogram,
    wait_time: metrics::Histogram,
    use_time: metrics::Histogram,
    created: metrics::Counter,
    deleted: metrics::Counter,
    replaced: metrics::Counter,
    pinged: metrics::Counter,
}

#[cfg(feature = "metrics")]
impl Export {
    pub(crate) fn new(pool: &str) -> Self {
        const POOL: &str = "db.client.connection.pool.name";
        let pool = pool.to_owned();
        let count = "db.client.connection.count";
        Export {
            idle: metrics::gauge!(count, POOL => pool.clone(), "state" => "idle"),
            used: metrics::gauge!(count, POOL => pool.clone(), "state" => "used"),
            max: metrics::gauge!("db.client.connection.max", POOL => pool.clone()),
            pending: metrics::gauge!(
                "db.client.connection.pending_requests",
                POOL => pool.clone()
            ),
            timeouts: metrics::counter!("db.client.connection.timeouts", POOL => pool.clone()),
            create_time: metrics::histogram!(
                "db.client.connection.create_time",
                POOL => pool.clone()
            ),
            wait_time: metrics::histogram!("db.client.connection.wait_time", POOL => pool.clone()),
            use_time: metrics::histogram!("db.client.connection.use_time", POOL => pool.clone()),
            created: metrics::counter!("session_pool.sessions.created", POOL => pool.clone()),
            deleted: metrics::counter!("session_pool.sessions.deleted", POOL => pool.clone()),
            replaced: metrics::counter!("session_pool.sessions.replaced", POOL => pool.clone()),
            pinged: metrics::counter!("session_pool.sessions.pinged", POOL => pool),
        }
    }

    /// Samples the gauges.
    pub(crate) fn publish(&self, stats: &PoolStats) {
        self.idle.set(stats.idle as f64);
        self.used.set(stats.in_use as f64);
        self.max.set(stats.max_open as f64);
        self.pending.set(stats.waiters as f64);
    }

    fn timeouts(&self, n: u64) {
        self.timeouts.increment(n);
    }
    fn created(&self, n: u64) {
        self.created.increment(n);
    }
    fn deleted(&self, n: u64) {
        self.deleted.increment(n);
    }
    fn replaced(&self, n: u64) {
        self.replaced.increment(n);
    }
    fn pinged(&self, n: u64) {
        self.pinged.increment(n);
    }
    pub(crate) fn create_time(&self, watch: Stopwatch) {
        self.create_time.record(watch.elapsed().as_secs_f64());
    }
    pub(crate) fn wait_time(&self, watch: Stopwatch) {
        self.wait_time.record(watch.elapsed().as_secs_f64());
    }
    pub(crate) fn use_time(&self, watch: Stopwatch) {
        self.use_time.record(watch.elapsed().as_secs_f64());
    }
}

#[cfg(feature = "metrics")]
impl Default for Export {
    fn default() -> Self {
        Export::new("session-pool")
    }
}

/// No-ops: the `metrics` feature is off.
#[cfg(not(feature = "metrics"))]
#[derive(Debug, Default)]
pub(crate) struct Export;

#[cfg(not(feature = "metrics"))]
impl Export {
    pub(crate) fn new(_pool: &str) -> Self {
        Export
    }
    #[inline]
    pub(crate) fn publish(&self, _stats: &PoolStats) {}
    #[inline]
    fn timeouts(&self, _n: u64) {}
    #[inline]
    fn created(&self, _n: u64) {}
    #[inline]
    fn deleted(&self, _n: u64) {}
    #[inline]
    fn replaced(&self, _n: u64) {}
    #[inline]
    fn pinged(&self, _n: u64) {}
    #[inline]
    pub(crate) fn create_time(&self, _watch: Stopwatch) {}
    #[inline]
    pub(crate) fn wait_time(&self, _watch: Stopwatch) {}
    #[inline]
    pub(crate) fn use_time(&self, _watch: Stopwatch) {}
}

/// Whether the pool's maintenance task must sample the gauges.
pub(crate) const SAMPLE_EVERY: Option<Duration> = if cfg!(feature = "metrics") {
    Some(Duration::from_secs(1))
} else {
    None
};

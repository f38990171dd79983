//! `PingingPool`: fixed size, least-recently-used first, kept alive by pings.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::core::{Core, Probe};
use super::{AbstractSessionPool, PingReport, PoolOptions, check_size};
use crate::database::Database;
use crate::error::Result;
use crate::session::Session;

/// Options of a [`PingingPool`], with the Python client's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PingingOptions {
    /// Number of sessions (default 10).
    pub size: usize,
    /// How long `get` waits for a session (default 10 s).
    pub default_timeout: Duration,
    /// A session idle this long is due a ping (default 3000 s).
    pub ping_interval: Duration,
    /// Labels, role and leak warning.
    pub pool: PoolOptions,
}

impl Default for PingingOptions {
    fn default() -> Self {
        PingingOptions {
            size: 10,
            default_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(3000),
            pool: PoolOptions::default(),
        }
    }
}

impl PingingOptions {
    /// Sets the size.
    #[must_use]
    pub fn size(mut self, size: usize) -> Self {
        self.size = size;
        self
    }

    /// Sets how long `get` waits.
    #[must_use]
    pub fn default_timeout(mut self, timeout: Duration) -> Self {
        self.default_timeout = timeout;
        self
    }

    /// Sets the idle time after which a session is due a ping.
    #[must_use]
    pub fn ping_interval(mut self, interval: Duration) -> Self {
        self.ping_interval = interval;
        self
    }

    /// Sets labels, role and leak warning.
    #[must_use]
    pub fn pool(mut self, pool: PoolOptions) -> Self {
        self.pool = pool;
        self
    }
}

/// A fixed-size pool whose idle sessions are kept alive by pings (Spanner's `PingingPool`).
///
/// Sessions are handed out least recently used first, which is also the order in which
/// their pings fall due. `get` checks a session whose ping is overdue with `exists()`;
/// [`ping`](Self::ping) sends `SELECT 1` on every session whose ping is due, replaces those
/// that fail, and returns what it did. Run it with [`spawn_ping_task`](Self::spawn_ping_task)
/// rather than from application code.
#[derive(Debug, Clone)]
pub struct PingingPool {
    core: Arc<Core>,
    default_timeout: Duration,
    ping_interval: Duration,
}

impl PingingPool {
    /// A pool with these options; [`Error::InvalidArgument`](crate::Error::InvalidArgument) for
    /// a size of 0.
    pub fn new(options: PingingOptions) -> Result<Self> {
        check_size("PingingPool size", options.size)?;
        Ok(PingingPool {
            core: options.pool.into_core(options.size, options.size),
            default_timeout: options.default_timeout,
            ping_interval: options.ping_interval,
        })
    }

    /// The pool's size.
    pub fn size(&self) -> usize {
        self.core.max_open
    }

    /// The idle time after which a session is due a ping.
    pub fn ping_interval(&self) -> Duration {
        self.ping_interval
    }

    fn due(&self) -> impl Fn(&Session) -> bool + use<> {
        let interval = self.ping_interval;
        let now = coarsetime::Instant::now();
        move |s| s.idle_for(now).is_some_and(|idle| idle >= interval)
    }

    /// `get` without boxing its future (the trait's `get` delegates here).
    pub async fn get(&self, timeout: Option<Duration>) -> Result<Session> {
        let timeout = Some(timeout.unwrap_or(self.default_timeout));
        self.core.get_checked(timeout, self.due()).await
    }

    super::checkout_and_ping_task!();

    /// Pings every idle session whose ping is due (`SELECT 1`), replaces those that fail,
    /// recreates missing sessions, and reports what it did. It returns once all of that is
    /// done.
    pub async fn ping(&self) -> Result<PingReport> {
        Ok(self.core.ping_round(self.due(), Probe::Ping, true).await)
    }
}

#[async_trait]
impl AbstractSessionPool for PingingPool {
    super::forward_to_core!();

    async fn bind(&self, database: &Database) -> Result<()> {
        self.core.bind_and_fill(database).await
    }

    async fn get(&self, timeout: Option<Duration>) -> Result<Session> {
        PingingPool::get(self, timeout).await
    }

    async fn clear(&self) -> Result<()> {
        self.core.clear().await;
        Ok(())
    }

    async fn ping(&self) -> Result<PingReport> {
        PingingPool::ping(self).await
    }

    async fn close(&self) {
        self.core.close_and_retire().await
    }
}

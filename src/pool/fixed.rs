//! `FixedSizePool`: a fixed number of sessions, made up front.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::core::{Core, Probe};
use super::{AbstractSessionPool, PingReport, PoolOptions, check_size};
use crate::database::Database;
use crate::error::Result;
use crate::session::Session;

/// Options of a [`FixedSizePool`], with the Python client's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FixedSizeOptions {
    /// Number of sessions (default 10).
    pub size: usize,
    /// How long `get` waits for a session (default 10 s).
    pub default_timeout: Duration,
    /// A session idle this long is checked with `exists()` before it is handed out, and by
    /// `ping()` (default 55 min, as the Python client).
    pub max_age: Duration,
    /// Labels, role and leak warning.
    pub pool: PoolOptions,
}

impl Default for FixedSizeOptions {
    fn default() -> Self {
        FixedSizeOptions {
            size: 10,
            default_timeout: Duration::from_secs(10),
            max_age: Duration::from_secs(55 * 60),
            pool: PoolOptions::default(),
        }
    }
}

impl FixedSizeOptions {
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

    /// Sets the idle time after which a session is checked before use.
    #[must_use]
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// Sets labels, role and leak warning.
    #[must_use]
    pub fn pool(mut self, pool: PoolOptions) -> Self {
        self.pool = pool;
        self
    }
}

/// A pool of a fixed number of sessions (Spanner's `FixedSizePool`).
///
/// - `bind` creates the sessions, concurrently, exactly as many as are missing.
/// - `get` hands out the least recently returned session, waiting up to the timeout when all
///   are out, in arrival order; then [`Error::PoolTimeout`](crate::Error::PoolTimeout).
/// - A session idle for `max_age` or longer is checked with `exists()` first, and replaced
///   (the dead one dropped) if it is gone.
/// - `put` into a full pool fails with [`Error::PoolFull`](crate::Error::PoolFull).
///
/// Cloning is cheap and shares the pool.
#[derive(Debug, Clone)]
pub struct FixedSizePool {
    core: Arc<Core>,
    default_timeout: Duration,
    max_age: Duration,
}

impl FixedSizePool {
    /// A pool with these options; [`Error::InvalidArgument`](crate::Error::InvalidArgument) for
    /// a size of 0.
    pub fn new(options: FixedSizeOptions) -> Result<Self> {
        check_size("FixedSizePool size", options.size)?;
        Ok(FixedSizePool {
            core: options.pool.into_core(options.size, options.size),
            default_timeout: options.default_timeout,
            max_age: options.max_age,
        })
    }

    /// The pool's size.
    pub fn size(&self) -> usize {
        self.core.max_open
    }

    /// `get` without boxing its future (the trait's `get` delegates here).
    pub async fn get(&self, timeout: Option<Duration>) -> Result<Session> {
        let max_age = self.max_age;
        let now = coarsetime::Instant::now();
        self.core
            .get_checked(Some(timeout.unwrap_or(self.default_timeout)), |s| {
                s.idle_for(now).is_some_and(|idle| idle >= max_age)
            })
            .await
    }

    super::checkout_and_ping_task!();

    /// Checks sessions idle for `max_age` or longer, replaces dead ones, and recreates
    /// missing ones.
    pub async fn ping(&self) -> Result<PingReport> {
        let max_age = self.max_age;
        let now = coarsetime::Instant::now();
        let due = |s: &Session| s.idle_for(now).is_some_and(|idle| idle >= max_age);
        Ok(self.core.ping_round(due, Probe::Exists, true).await)
    }
}

#[async_trait]
impl AbstractSessionPool for FixedSizePool {
    super::forward_to_core!();

    async fn bind(&self, database: &Database) -> Result<()> {
        self.core.bind_and_fill(database).await
    }

    async fn get(&self, timeout: Option<Duration>) -> Result<Session> {
        FixedSizePool::get(self, timeout).await
    }

    async fn clear(&self) -> Result<()> {
        self.core.clear().await;
        Ok(())
    }

    async fn ping(&self) -> Result<PingReport> {
        FixedSizePool::ping(self).await
    }

    async fn close(&self) {
        self.core.close_and_retire().await
    }
}

//! `PingingPool`: fixed size, least-recently-used first, kept alive by pings.

use std::time::Duration;

use super::core::{Lifecycle, Probe, Rules};
use super::handle::{Pool, Sealed, Strategy};
use super::options::{PoolOptions, check_size};
use crate::database::Database;
use crate::error::Result;

/// The pinging strategy (Spanner's `PingingPool`); see [`PingingPool`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pinging {}

impl Sealed for Pinging {}
impl Strategy for Pinging {
    const NAME: &'static str = "PingingPool";
}

/// A fixed-size pool whose idle sessions are kept alive by pings (Spanner's `PingingPool`).
///
/// Sessions are handed out least recently used first, which is also the order in which
/// their pings fall due. `get` checks a session whose ping is overdue with `exists()`;
/// [`ping`](Pool::ping) sends `SELECT 1` on every session whose ping is due, replaces those
/// that fail, and returns what it did. Run it with [`spawn_ping_task`](Pool::spawn_ping_task)
/// rather than from application code.
pub type PingingPool = Pool<Pinging>;

/// Options and builder of a [`PingingPool`], with the Python client's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[must_use = "options do nothing until a pool is built with them"]
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
    pub fn size(mut self, size: usize) -> Self {
        self.size = size;
        self
    }

    /// Sets how long `get` waits.
    pub fn default_timeout(mut self, timeout: Duration) -> Self {
        self.default_timeout = timeout;
        self
    }

    /// Sets the idle time after which a session is due a ping.
    pub fn ping_interval(mut self, interval: Duration) -> Self {
        self.ping_interval = interval;
        self
    }

    /// Sets labels, role and leak warning.
    pub fn pool(mut self, pool: PoolOptions) -> Self {
        self.pool = pool;
        self
    }

    /// Builds the pool and binds it to `database`, creating its sessions.
    pub async fn build(self, database: &Database) -> Result<PingingPool> {
        let pool = PingingPool::new(self)?;
        pool.bind(database).await?;
        Ok(pool)
    }

    pub(crate) fn rules(&self) -> Result<Rules> {
        check_size("PingingPool size", self.size)?;
        Ok(Rules {
            max_open: self.size,
            max_idle: self.size,
            default_timeout: Some(self.default_timeout),
            check_after: self.ping_interval,
            probe: Probe::Ping,
            fill: true,
            life: Lifecycle::default(),
        })
    }
}

impl Pool<Pinging> {
    /// Options to build a pool with, starting from the defaults.
    pub fn builder() -> PingingOptions {
        PingingOptions::default()
    }

    /// A pool with these options, not yet bound (Python: `PingingPool(size=…)`, then
    /// `bind`); prefer [`builder`](Pool::<Pinging>::builder).
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) for a size of 0.
    pub fn new(options: PingingOptions) -> Result<Self> {
        let rules = options.rules()?;
        Ok(Pool::from_rules(rules, options.pool))
    }

    /// The pool's size.
    pub fn size(&self) -> usize {
        self.core.rules.max_open
    }

    /// The idle time after which a session is due a ping.
    pub fn ping_interval(&self) -> Duration {
        self.core.rules.check_after
    }
}

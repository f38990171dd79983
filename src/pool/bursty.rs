//! `BurstyPool`: creates sessions on demand, keeps a few idle.

use std::time::Duration;

use super::core::{Lifecycle, Probe, Rules};
use super::handle::{Pool, Sealed, Strategy};
use super::options::{PoolOptions, check_size};
use crate::database::Database;
use crate::error::Result;

/// The bursty strategy (Spanner's `BurstyPool`); see [`BurstyPool`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bursty {}

impl Sealed for Bursty {}
impl Strategy for Bursty {
    const NAME: &'static str = "BurstyPool";
}

/// A pool that never blocks (Spanner's `BurstyPool`).
///
/// `get` takes an idle session, checking with `exists()` that it is still there (one round
/// trip on every checkout) and replacing it if not; with none idle it creates one. `put`
/// keeps up to `target_size` idle sessions and drops the rest (closing them without
/// awaiting I/O). With [`BurstyOptions::max_sessions`], bursts are capped.
pub type BurstyPool = Pool<Bursty>;

/// Options and builder of a [`BurstyPool`], with the Python client's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[must_use = "options do nothing until a pool is built with them"]
pub struct BurstyOptions {
    /// Most sessions kept idle (default 10); more returned at once are deleted.
    pub target_size: usize,
    /// A hard cap on open sessions (idle and in use), which the Python pool lacks: `None`
    /// (the default) never waits; with a cap, `get` waits up to `cap_timeout` when the cap
    /// is reached.
    pub max_sessions: Option<usize>,
    /// How long `get` waits at the cap (default 10 s).
    pub cap_timeout: Duration,
    /// Idle sessions kept ready (default 0, as the Python pool): created when the pool is
    /// built, and topped up by the pool's maintenance task (about every second) and by
    /// ping rounds. At most `target_size`.
    pub min_idle: usize,
    /// Labels, role and leak warning.
    pub pool: PoolOptions,
}

impl Default for BurstyOptions {
    fn default() -> Self {
        BurstyOptions {
            target_size: 10,
            max_sessions: None,
            cap_timeout: Duration::from_secs(10),
            min_idle: 0,
            pool: PoolOptions::default(),
        }
    }
}

impl BurstyOptions {
    /// Sets the idle target.
    pub fn target_size(mut self, target_size: usize) -> Self {
        self.target_size = target_size;
        self
    }

    /// Caps open sessions; `get` waits up to `timeout` at the cap.
    pub fn max_sessions(mut self, max: usize, timeout: Duration) -> Self {
        self.max_sessions = Some(max);
        self.cap_timeout = timeout;
        self
    }

    /// Keeps at least `min_idle` idle sessions ready.
    pub fn min_idle(mut self, min_idle: usize) -> Self {
        self.min_idle = min_idle;
        self
    }

    /// Sets labels, role and leak warning.
    pub fn pool(mut self, pool: PoolOptions) -> Self {
        self.pool = pool;
        self
    }

    /// Builds the pool and binds it to `database` (a bursty pool creates nothing up front
    /// but its `min_idle` sessions).
    pub async fn build(self, database: &Database) -> Result<BurstyPool> {
        let pool = BurstyPool::new(self)?;
        pool.bind(database).await?;
        Ok(pool)
    }
}

impl Pool<Bursty> {
    /// Options to build a pool with, starting from the defaults.
    pub fn builder() -> BurstyOptions {
        BurstyOptions::default()
    }

    /// A pool with these options, not yet bound (Python: `BurstyPool(target_size=…)`, then
    /// `bind`); prefer [`builder`](Pool::<Bursty>::builder).
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) for a target size or cap
    /// of 0.
    pub fn new(options: BurstyOptions) -> Result<Self> {
        check_size("BurstyPool target_size", options.target_size)?;
        if let Some(cap) = options.max_sessions {
            check_size("BurstyPool max_sessions", cap)?;
        }
        if options.min_idle > options.target_size {
            return Err(crate::error::Error::invalid(format!(
                "BurstyPool min_idle ({}) must not exceed target_size ({})",
                options.min_idle, options.target_size
            )));
        }
        let rules = Rules {
            max_open: options.max_sessions.unwrap_or(usize::MAX),
            max_idle: options.target_size,
            default_timeout: options.max_sessions.map(|_| options.cap_timeout),
            check_after: Duration::ZERO,
            probe: Probe::Exists,
            fill: false,
            life: Lifecycle {
                min_idle: options.min_idle,
                ..Lifecycle::default()
            },
        };
        Ok(Pool::from_rules(rules, options.pool))
    }

    /// The idle target.
    pub fn target_size(&self) -> usize {
        self.core.rules.max_idle
    }
}

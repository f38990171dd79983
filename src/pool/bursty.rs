//! `BurstyPool`: creates sessions on demand, keeps a few idle.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::core::{Core, Probe};
use super::{AbstractSessionPool, PingReport, PoolOptions, check_size};
use crate::database::Database;
use crate::error::Result;
use crate::session::Session;

/// Options of a [`BurstyPool`], with the Python client's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BurstyOptions {
    /// Most sessions kept idle (default 10); more returned at once are deleted.
    pub target_size: usize,
    /// A hard cap on open sessions (idle and in use), which the Python pool lacks: `None`
    /// (the default) never waits; with a cap, `get` waits up to `cap_timeout` when the cap
    /// is reached.
    pub max_sessions: Option<usize>,
    /// How long `get` waits at the cap (default 10 s).
    pub cap_timeout: Duration,
    /// Labels, role and leak warning.
    pub pool: PoolOptions,
}

impl Default for BurstyOptions {
    fn default() -> Self {
        BurstyOptions {
            target_size: 10,
            max_sessions: None,
            cap_timeout: Duration::from_secs(10),
            pool: PoolOptions::default(),
        }
    }
}

impl BurstyOptions {
    /// Sets the idle target.
    #[must_use]
    pub fn target_size(mut self, target_size: usize) -> Self {
        self.target_size = target_size;
        self
    }

    /// Caps open sessions; `get` waits up to `timeout` at the cap.
    #[must_use]
    pub fn max_sessions(mut self, max: usize, timeout: Duration) -> Self {
        self.max_sessions = Some(max);
        self.cap_timeout = timeout;
        self
    }

    /// Sets labels, role and leak warning.
    #[must_use]
    pub fn pool(mut self, pool: PoolOptions) -> Self {
        self.pool = pool;
        self
    }
}

/// A pool that never blocks (Spanner's `BurstyPool`).
///
/// `get` takes an idle session, checking with `exists()` that it is still there (one round
/// trip on every checkout) and replacing it if not; with none idle it creates one. `put`
/// keeps up to `target_size` idle sessions and drops the rest (closing them without
/// awaiting I/O). With [`BurstyOptions::max_sessions`], bursts are capped.
#[derive(Debug, Clone)]
pub struct BurstyPool {
    core: Arc<Core>,
    cap_timeout: Option<Duration>,
}

impl BurstyPool {
    /// A pool with these options; [`Error::InvalidArgument`](crate::Error::InvalidArgument)
    /// for a target size or cap of 0.
    pub fn new(options: BurstyOptions) -> Result<Self> {
        check_size("BurstyPool target_size", options.target_size)?;
        if let Some(cap) = options.max_sessions {
            check_size("BurstyPool max_sessions", cap)?;
        }
        let max_open = options.max_sessions.unwrap_or(usize::MAX);
        Ok(BurstyPool {
            core: options.pool.into_core(max_open, options.target_size),
            cap_timeout: options.max_sessions.map(|_| options.cap_timeout),
        })
    }

    /// The idle target.
    pub fn target_size(&self) -> usize {
        self.core.max_idle
    }

    /// `get` without boxing its future (the trait's `get` delegates here). `timeout` only
    /// matters for a capped pool.
    pub async fn get(&self, timeout: Option<Duration>) -> Result<Session> {
        let timeout = timeout.or(self.cap_timeout);
        self.core.get_checked(timeout, |_| true).await
    }

    super::checkout_and_ping_task!();

    /// Checks every idle session with `exists()` and replaces those that are gone.
    pub async fn ping(&self) -> Result<PingReport> {
        Ok(self.core.ping_round(|_| true, Probe::Exists, false).await)
    }
}

#[async_trait]
impl AbstractSessionPool for BurstyPool {
    super::forward_to_core!();

    /// Binds the database; a bursty pool creates nothing up front.
    async fn bind(&self, database: &Database) -> Result<()> {
        self.core.bind(database)
    }

    async fn get(&self, timeout: Option<Duration>) -> Result<Session> {
        BurstyPool::get(self, timeout).await
    }

    async fn clear(&self) -> Result<()> {
        self.core.clear().await;
        Ok(())
    }

    async fn ping(&self) -> Result<PingReport> {
        BurstyPool::ping(self).await
    }

    async fn close(&self) {
        self.core.close_and_retire().await
    }
}

//! Session pools: the Spanner client's strategies over this crate's [`Session`]s.
//!
//! | Python | here | strategy |
//! |---|---|---|
//! | `FixedSizePool(size=10, default_timeout=10)` | [`FixedSizePool`] | `size` sessions made at `bind`; `get` waits up to the timeout; a session idle for 55 min is checked with `exists()` before use |
//! | `BurstyPool(target_size=10)` | [`BurstyPool`] | never waits (unless capped): creates a session when none is idle; checks `exists()` on every checkout; keeps at most `target_size` idle |
//! | `PingingPool(size=10, default_timeout=10, ping_interval=3000)` | [`PingingPool`] | like fixed, sessions used least-recently-used first; `ping()` (or the background task) keeps idle ones alive |
//! | `TransactionPingingPool` | [`TransactionPingingPool`] | deprecated; same as `PingingPool` |
//!
//! ```no_run
//! # async fn demo() -> session_pool::Result<()> {
//! use session_pool::{AbstractSessionPool, Database, FixedSizePool, params};
//! // Python: pool = FixedSizePool(size=10, default_timeout=10); database = instance.database(id, pool=pool)
//! let pool = FixedSizePool::new(Default::default())?;
//! pool.bind(&Database::open("sqlite://app.db").await?).await?;
//! // Python: with pool.session() as session: session.execute_sql("SELECT 1")
//! let mut session = pool.session(None).await?;
//! session.execute_sql("SELECT $1 AS one", &params![1]).await?;
//! # Ok(()) }
//! ```

mod bursty;
mod checkout;
pub(crate) mod core;
mod fixed;
mod ping_task;
mod pinging;
mod sweeper;
mod transaction_pinging;

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;

pub use bursty::{BurstyOptions, BurstyPool};
pub use checkout::{CheckoutTracker, SessionCheckout};
pub use fixed::{FixedSizeOptions, FixedSizePool};
pub use ping_task::PingTask;
pub use pinging::{PingingOptions, PingingPool};
#[allow(deprecated)]
pub use transaction_pinging::TransactionPingingPool;

use crate::database::Database;
use crate::error::{Error, Result};
use crate::session::{Session, SessionOptions};

/// The API every pool offers (Spanner's `AbstractSessionPool`). Implement it for a custom
/// pool; [`SessionCheckout`] and the stores work with any implementation.
#[async_trait]
pub trait AbstractSessionPool: Send + Sync {
    /// Labels given to every session the pool creates.
    fn labels(&self) -> &BTreeMap<String, String>;

    /// The database role of every session the pool creates.
    fn database_role(&self) -> Option<&str>;

    /// Associates the pool with a database, creating sessions as the strategy says.
    async fn bind(&self, database: &Database) -> Result<()>;

    /// Checks a session out. Strategies that block wait up to `timeout` (their default when
    /// `None`) and then fail with [`Error::PoolTimeout`]. Before `bind`: [`Error::NotBound`];
    /// after `close`: [`Error::Closed`].
    async fn get(&self, timeout: Option<Duration>) -> Result<Session>;

    /// Returns a session. Never blocks, never does I/O. A pool that cannot take it says so
    /// with [`Error::PoolFull`] and hands the session back in the [`PutError`].
    ///
    /// A session from `get` that is dropped instead of put back frees its place in the pool
    /// (the pool creates a new session when one is needed).
    fn put(&self, session: Session) -> std::result::Result<(), PutError>;

    /// Deletes every idle session.
    async fn clear(&self) -> Result<()>;

    /// Checks idle sessions as the strategy says, replaces those that are gone and tops the
    /// pool up; this is what the background ping task runs. The default does nothing.
    async fn ping(&self) -> Result<PingReport> {
        Ok(PingReport::default())
    }

    /// Closes the pool: waiters fail with [`Error::Closed`], idle sessions are deleted, and
    /// later calls to `get` fail with [`Error::Closed`]. Sessions still checked out are
    /// dropped when they come back.
    async fn close(&self);

    /// A snapshot of the pool's gauges and counters.
    fn stats(&self) -> PoolStats;

    /// Starts tracking the checkout of `session` for the leak warning; `None` when the pool
    /// does not track checkouts.
    fn track_checkout(&self, session: &Session) -> Option<CheckoutTracker> {
        let _ = session;
        None
    }

    /// Checks a session out behind a guard that puts it back when dropped (Python:
    /// `with pool.session() as session:`).
    async fn session(&self, timeout: Option<Duration>) -> Result<SessionCheckout<'_, Self>>
    where
        Self: Sized,
    {
        let session = self.get(timeout).await?;
        Ok(SessionCheckout::new(self, session))
    }
}

/// A session that a pool would not take back, with the reason.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct PutError {
    /// The session, still yours.
    pub session: Session,
    /// Why: [`Error::PoolFull`], [`Error::Closed`] or [`Error::InvalidArgument`].
    #[source]
    pub error: Error,
}

impl From<PutError> for Error {
    fn from(e: PutError) -> Self {
        e.error
    }
}

/// A snapshot of a pool: gauges now, and counters since it was built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct PoolStats {
    /// Sessions the pool holds: idle, in use, and being created.
    pub open: usize,
    /// Sessions outside the idle queue: checked out, or being checked or created.
    pub in_use: usize,
    /// Sessions ready to be checked out.
    pub idle: usize,
    /// The most sessions the pool allows open (`usize::MAX` for an uncapped bursty pool).
    pub max_open: usize,
    /// `get` calls waiting for a session.
    pub waiters: usize,
    /// Sessions handed out by `get`.
    pub acquired: u64,
    /// Sessions given back by `put`.
    pub released: u64,
    /// `get` calls that timed out.
    pub get_timeouts: u64,
    /// Sessions created.
    pub created: u64,
    /// Sessions deleted or dropped by the pool (clear, close, over the idle target).
    pub deleted: u64,
    /// Sessions found gone (a failed check, or returned broken) and replaced.
    pub replaced: u64,
    /// Successful pings.
    pub pinged: u64,
}

/// What one [`ping`](AbstractSessionPool::ping) round did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct PingReport {
    /// Sessions checked and found alive.
    pub pinged: usize,
    /// Sessions found gone and replaced by new ones.
    pub replaced: usize,
    /// Sessions created to bring the pool back to its size.
    pub topped_up: usize,
    /// Sessions that could not be created (the server is unreachable, say); the pool
    /// tries again on the next round or `get`.
    pub failed: usize,
}

/// Options every strategy shares: what its sessions look like and the leak warning.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolOptions {
    /// Labels and database role of the sessions the pool creates.
    pub session: SessionOptions,
    /// Log a warning (target `session_pool::leak`) for a checkout held longer than this.
    pub leak_threshold: Option<Duration>,
    /// Capture a backtrace at each checkout to show in the leak warning (costly; for
    /// debugging).
    pub leak_backtrace: bool,
}

impl PoolOptions {
    /// Labels and role for the pool's sessions.
    #[must_use]
    pub fn session(mut self, session: SessionOptions) -> Self {
        self.session = session;
        self
    }

    /// Turns the leak warning on.
    #[must_use]
    pub fn leak_threshold(mut self, threshold: Duration, backtrace: bool) -> Self {
        self.leak_threshold = Some(threshold);
        self.leak_backtrace = backtrace;
        self
    }

    pub(crate) fn into_core(self, max_open: usize, max_idle: usize) -> std::sync::Arc<core::Core> {
        let leaks = self
            .leak_threshold
            .map(|t| checkout::LeakRegistry::new(t, self.leak_backtrace));
        core::Core::new(max_open, max_idle, self.session, leaks)
    }
}

/// The synchronous trait methods every built-in strategy forwards to its `core`.
macro_rules! forward_to_core {
    () => {
        fn labels(&self) -> &std::collections::BTreeMap<String, String> {
            &self.core.options.labels
        }

        fn database_role(&self) -> Option<&str> {
            self.core.options.database_role.as_deref()
        }

        fn put(&self, session: Session) -> std::result::Result<(), super::PutError> {
            self.core.put(session)
        }

        fn stats(&self) -> super::PoolStats {
            self.core.stats()
        }

        fn track_checkout(&self, session: &Session) -> Option<super::CheckoutTracker> {
            self.core.track_checkout(session)
        }
    };
}
use forward_to_core;

/// The inherent `session` and `spawn_ping_task` of every built-in strategy (whose `get` and
/// `ping` are inherent too, so neither future is boxed).
macro_rules! checkout_and_ping_task {
    () => {
        /// `session` without boxing its future.
        pub async fn session(
            &self,
            timeout: Option<Duration>,
        ) -> Result<super::SessionCheckout<'_, Self>> {
            let session = self.get(timeout).await?;
            Ok(super::SessionCheckout::new(self, session))
        }

        /// Runs `ping` every `interval` on the current tokio runtime until the returned
        /// handle is dropped or the pool closes.
        pub fn spawn_ping_task(&self, interval: Duration) -> super::PingTask {
            super::PingTask::spawn(self.clone(), self.core.clone(), interval)
        }
    };
}
use checkout_and_ping_task;

pub(crate) fn check_size(what: &str, size: usize) -> Result<()> {
    if size == 0 {
        return Err(Error::invalid(format!("{what} must be at least 1")));
    }
    Ok(())
}

//! `TransactionPingingPool`: deprecated in the Python client, kept for API parity.
#![allow(deprecated)]

use std::time::Duration;

use super::handle::{Pool, Sealed, Strategy};
use super::pinging::PingingOptions;
use crate::database::Database;
use crate::error::Result;

/// The strategy of the deprecated [`TransactionPingingPool`].
#[deprecated(note = "TransactionPingingPool behaves as PingingPool; use PingingPool")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionPinging {}

impl Sealed for TransactionPinging {}
impl Strategy for TransactionPinging {
    const NAME: &'static str = "TransactionPingingPool";
}

/// Spanner's `TransactionPingingPool`, which no longer begins a transaction per session: it
/// behaves exactly as [`PingingPool`](super::PingingPool). Building one logs a deprecation
/// warning.
#[deprecated(note = "TransactionPingingPool behaves as PingingPool; use PingingPool")]
pub type TransactionPingingPool = Pool<TransactionPinging>;

/// Builder of a deprecated [`TransactionPingingPool`]: the options of a
/// [`PingingPool`](super::PingingPool).
#[deprecated(note = "TransactionPingingPool behaves as PingingPool; use PingingPool")]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use = "options do nothing until a pool is built with them"]
pub struct TransactionPingingOptions(pub PingingOptions);

impl TransactionPingingOptions {
    /// Sets the size.
    pub fn size(self, size: usize) -> Self {
        Self(self.0.size(size))
    }

    /// Sets how long `get` waits.
    pub fn default_timeout(self, timeout: Duration) -> Self {
        Self(self.0.default_timeout(timeout))
    }

    /// Sets the idle time after which a session is due a ping.
    pub fn ping_interval(self, interval: Duration) -> Self {
        Self(self.0.ping_interval(interval))
    }

    /// Sets labels, role and leak warning.
    pub fn pool(self, pool: super::PoolOptions) -> Self {
        Self(self.0.pool(pool))
    }

    /// Builds the pool and binds it to `database`; logs a deprecation warning.
    pub async fn build(self, database: &Database) -> Result<TransactionPingingPool> {
        let pool = TransactionPingingPool::new(self.0)?;
        pool.bind(database).await?;
        Ok(pool)
    }
}

impl Pool<TransactionPinging> {
    /// Options to build a pool with, starting from the defaults of a
    /// [`PingingPool`](super::PingingPool).
    pub fn builder() -> TransactionPingingOptions {
        TransactionPingingOptions::default()
    }

    /// A pool with these options, not yet bound; logs a deprecation warning.
    pub fn new(options: PingingOptions) -> Result<Self> {
        tracing::warn!(target: "session_pool::pool",
            "TransactionPingingPool is deprecated: it behaves as PingingPool; use PingingPool");
        let rules = options.rules()?;
        Ok(Pool::from_rules(rules, options.pool))
    }

    /// Kept for API parity: there are no pending transactions to begin, so this does nothing.
    pub async fn begin_pending_transactions(&self) -> Result<()> {
        Ok(())
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

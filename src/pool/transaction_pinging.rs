//! `TransactionPingingPool`: deprecated in the Python client, kept for API parity.
#![allow(deprecated)]

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;

use super::{
    AbstractSessionPool, CheckoutTracker, PingReport, PingTask, PingingOptions, PingingPool,
    PoolStats, PutError, SessionCheckout,
};
use crate::database::Database;
use crate::error::Result;
use crate::session::Session;

/// Spanner's `TransactionPingingPool`, which no longer begins a transaction per session: it
/// behaves exactly as [`PingingPool`]. Building one logs a deprecation warning.
#[deprecated(note = "TransactionPingingPool behaves as PingingPool; use PingingPool")]
#[derive(Debug, Clone)]
pub struct TransactionPingingPool {
    inner: PingingPool,
}

impl TransactionPingingPool {
    /// A pool with these options; logs a deprecation warning.
    pub fn new(options: PingingOptions) -> Result<Self> {
        tracing::warn!(target: "session_pool::pool",
            "TransactionPingingPool is deprecated: it behaves as PingingPool; use PingingPool");
        Ok(TransactionPingingPool {
            inner: PingingPool::new(options)?,
        })
    }

    /// Kept for API parity: there are no pending transactions to begin, so this does nothing.
    pub async fn begin_pending_transactions(&self) -> Result<()> {
        Ok(())
    }

    /// The pool's size.
    pub fn size(&self) -> usize {
        self.inner.size()
    }

    /// See [`PingingPool::get`].
    pub async fn get(&self, timeout: Option<Duration>) -> Result<Session> {
        self.inner.get(timeout).await
    }

    /// See [`PingingPool::session`].
    pub async fn session(&self, timeout: Option<Duration>) -> Result<SessionCheckout<'_, Self>> {
        let session = self.inner.get(timeout).await?;
        Ok(SessionCheckout::new(self, session))
    }

    /// See [`PingingPool::ping`].
    pub async fn ping(&self) -> Result<PingReport> {
        self.inner.ping().await
    }

    /// See [`PingingPool::spawn_ping_task`].
    pub fn spawn_ping_task(&self, interval: Duration) -> PingTask {
        self.inner.spawn_ping_task(interval)
    }
}

#[async_trait]
impl AbstractSessionPool for TransactionPingingPool {
    fn labels(&self) -> &BTreeMap<String, String> {
        self.inner.labels()
    }

    fn database_role(&self) -> Option<&str> {
        AbstractSessionPool::database_role(&self.inner)
    }

    async fn bind(&self, database: &Database) -> Result<()> {
        self.inner.bind(database).await
    }

    async fn get(&self, timeout: Option<Duration>) -> Result<Session> {
        self.inner.get(timeout).await
    }

    fn put(&self, session: Session) -> std::result::Result<(), PutError> {
        self.inner.put(session)
    }

    async fn clear(&self) -> Result<()> {
        self.inner.clear().await
    }

    async fn ping(&self) -> Result<PingReport> {
        self.inner.ping().await
    }

    async fn close(&self) {
        self.inner.close().await
    }

    fn stats(&self) -> PoolStats {
        self.inner.stats()
    }

    fn track_checkout(&self, session: &Session) -> Option<CheckoutTracker> {
        self.inner.track_checkout(session)
    }
}

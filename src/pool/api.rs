//! The trait every pool implements, and the records it returns.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::checkout::SessionCheckout;
use super::core::Core;
use super::leak::CheckoutTracker;
use super::lease::PooledSession;
use super::stats::{PingReport, PoolStats};
use crate::database::Database;
use crate::error::{Error, Result};
use crate::session::Session;

/// The API every pool offers (Spanner's `AbstractSessionPool`), dyn-compatible: the stores
/// hold any pool as an `Arc<dyn AbstractSessionPool>`.
///
/// The built-in pools ([`Pool`](super::Pool) and its aliases) implement it, and have the
/// same methods inherent, so no import is needed to use them. Implement it for a pool of
/// your own; [`SessionCheckout`] and the stores then work with it.
#[async_trait]
pub trait AbstractSessionPool: Send + Sync + 'static {
    /// Labels given to every session the pool creates.
    fn labels(&self) -> &BTreeMap<String, String>;

    /// The database role of every session the pool creates.
    fn database_role(&self) -> Option<&str>;

    /// Associates the pool with a database, creating sessions as the strategy says. The
    /// builders do this for you; it is here for the Python API's `pool.bind(database)`.
    async fn bind(&self, database: &Database) -> Result<()>;

    /// Checks a session out. Strategies that block wait up to `timeout` (their default when
    /// `None`) and then fail with [`Error::PoolTimeout`]. Before `bind`: [`Error::NotBound`];
    /// after `close`: [`Error::Closed`].
    ///
    /// Give the session back with [`put`](AbstractSessionPool::put); one dropped instead
    /// frees its place (the pool creates a new session when one is needed).
    async fn get(&self, timeout: Option<Duration>) -> Result<PooledSession>;

    /// Returns a session. Never blocks, never does I/O. A pool that cannot take it says so
    /// with [`Error::PoolFull`] and hands the session back in the [`PutError`].
    // A refused session is handed back whole, as std's `SendError` does.
    #[allow(clippy::result_large_err)]
    fn put(&self, session: PooledSession) -> std::result::Result<(), PutError>;

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

    /// This crate's own pools return their core, which the stores check sessions out of
    /// with no boxed future (`support::checkout`). Not for other pools: the type cannot be
    /// named outside this crate, so the default, `None`, is the only answer they can give.
    #[doc(hidden)]
    fn builtin_core(&self) -> Option<&Arc<Core>> {
        None
    }

    /// Checks a session out behind a guard that puts it back when dropped (Python:
    /// `with pool.session() as session:`), waiting up to the pool's default timeout.
    async fn session(&self) -> Result<SessionCheckout>
    where
        Self: Clone + Sized,
    {
        let session = self.get(None).await?;
        Ok(SessionCheckout::new(self, session))
    }

    /// [`session`](AbstractSessionPool::session), waiting up to `timeout`.
    async fn session_with_timeout(&self, timeout: Duration) -> Result<SessionCheckout>
    where
        Self: Clone + Sized,
    {
        let session = self.get(Some(timeout)).await?;
        Ok(SessionCheckout::new(self, session))
    }
}

/// Any pool, shared: what the stores hold. Every pool converts into one with `Arc::new`.
pub type SharedPool = Arc<dyn AbstractSessionPool>;

/// A shared pool is a pool: `Arc<dyn AbstractSessionPool>` and `Arc<MyPool>` are cheap
/// `Clone` handles that check sessions out like the pool itself.
#[async_trait]
impl<P: AbstractSessionPool + ?Sized> AbstractSessionPool for Arc<P> {
    fn labels(&self) -> &BTreeMap<String, String> {
        (**self).labels()
    }
    fn database_role(&self) -> Option<&str> {
        (**self).database_role()
    }
    async fn bind(&self, database: &Database) -> Result<()> {
        (**self).bind(database).await
    }
    async fn get(&self, timeout: Option<Duration>) -> Result<PooledSession> {
        (**self).get(timeout).await
    }
    // A refused session is handed back whole, as std's `SendError` does.
    #[allow(clippy::result_large_err)]
    fn put(&self, session: PooledSession) -> std::result::Result<(), PutError> {
        (**self).put(session)
    }
    async fn clear(&self) -> Result<()> {
        (**self).clear().await
    }
    async fn ping(&self) -> Result<PingReport> {
        (**self).ping().await
    }
    async fn close(&self) {
        (**self).close().await
    }
    fn stats(&self) -> PoolStats {
        (**self).stats()
    }
    fn track_checkout(&self, session: &Session) -> Option<CheckoutTracker> {
        (**self).track_checkout(session)
    }
    fn builtin_core(&self) -> Option<&Arc<Core>> {
        (**self).builtin_core()
    }
}

/// A session that a pool would not take back, with the reason.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
#[non_exhaustive]
pub struct PutError {
    /// The session, still yours.
    pub session: PooledSession,
    /// Why: [`Error::PoolFull`], [`Error::Closed`] or [`Error::InvalidArgument`].
    #[source]
    pub error: Error,
}

impl PutError {
    /// A refusal of `session` for `error` (for pools written outside this crate).
    pub fn new(session: PooledSession, error: Error) -> Self {
        PutError { session, error }
    }
}

impl From<PutError> for Error {
    fn from(e: PutError) -> Self {
        e.error
    }
}

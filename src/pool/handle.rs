//! `Pool<S>`: the one handle every built-in strategy shares. Its methods are inherent (no
//! import needed, futures not boxed) and it implements [`AbstractSessionPool`] once.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::api::{AbstractSessionPool, PutError};
use super::checkout::SessionCheckout;
use super::core::{Core, Rules};
use super::leak::{CheckoutTracker, LeakRegistry};
use super::lease::PooledSession;
use super::metrics::Stopwatch;
use super::options::PoolOptions;
use super::ping_task::PingTask;
use super::slot::Places;
use super::stats::{PingReport, PoolStats};
use crate::database::Database;
use crate::error::Result;
use crate::session::Session;

mod sealed {
    pub trait Sealed {}
}

/// A pool strategy: [`FixedSize`](super::FixedSize), [`Bursty`](super::Bursty),
/// [`Pinging`](super::Pinging). Sealed: write a pool of your own by implementing
/// [`AbstractSessionPool`] instead.
pub trait Strategy: sealed::Sealed + Send + Sync + 'static {
    /// The strategy's name, for logs and `Debug`.
    const NAME: &'static str;
}

pub(crate) use sealed::Sealed;

/// A session pool with strategy `S`; use it through its aliases [`FixedSizePool`],
/// [`BurstyPool`] and [`PingingPool`].
///
/// Cloning is cheap and shares the pool. Dropping every handle (and every checkout) drops
/// the pool and closes its idle sessions without awaiting I/O; [`close`](Pool::close)
/// does it explicitly and also deletes them on the server.
///
/// [`FixedSizePool`]: super::FixedSizePool
/// [`BurstyPool`]: super::BurstyPool
/// [`PingingPool`]: super::PingingPool
pub struct Pool<S: Strategy> {
    pub(crate) core: Arc<Core>,
    _strategy: PhantomData<fn() -> S>,
}

impl<S: Strategy> Clone for Pool<S> {
    fn clone(&self) -> Self {
        Pool {
            core: Arc::clone(&self.core),
            _strategy: PhantomData,
        }
    }
}

impl<S: Strategy> fmt::Debug for Pool<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(S::NAME).field("core", &self.core).finish()
    }
}

impl<S: Strategy> Pool<S> {
    /// A pool following `rules`, not yet bound.
    pub(crate) fn from_rules(mut rules: Rules, options: PoolOptions) -> Self {
        if let Some(idle) = options.check_idle_after {
            rules.check_after = rules.check_after.min(idle);
        }
        rules.life.reset_on_release = options.reset_on_release;
        rules.life.max_idle_lifetime = options.max_idle_lifetime;
        rules.life.max_uses = options.max_uses;
        rules.life.max_lifetime = options.max_lifetime;
        rules.life.create_step = options.create_step;
        let leaks = options
            .leak_threshold
            .map(|t| LeakRegistry::new(t, options.leak_backtrace, options.leak_close));
        let export = super::metrics::Export::new(options.name.as_deref().unwrap_or(S::NAME));
        Pool {
            core: Core::new(rules, options.session, leaks, export),
            _strategy: PhantomData,
        }
    }

    /// Binds the pool to `database` and creates its sessions as the strategy says; what the
    /// builders' `build` does. Binding again to the same database only tops the pool up.
    pub async fn bind(&self, database: &Database) -> Result<()> {
        self.core.bind_and_fill(database).await
    }

    /// Checks a session out (Python: `pool.get(timeout)`), waiting up to `timeout`, or the
    /// pool's default when `None`. Give it back with [`put`](Pool::put); see
    /// [`AbstractSessionPool::get`].
    pub async fn get(&self, timeout: Option<Duration>) -> Result<PooledSession> {
        let watch = Stopwatch::start();
        let (session, home) = self.core.get(timeout).await?;
        self.core.counters.export.wait_time(watch);
        let tracker = self.core.track_checkout(&session);
        Ok(PooledSession::leased(session, home, tracker))
    }

    /// Gives a session back (Python: `pool.put(session)`); see [`AbstractSessionPool::put`].
    // A refused session is handed back whole, as std's `SendError` does.
    #[allow(clippy::result_large_err)]
    pub fn put(&self, session: PooledSession) -> std::result::Result<(), PutError> {
        match session.into_parts() {
            (session, Some(home), _tracker) if Arc::ptr_eq(&home, &self.core) => {
                // The lease's handle on this core drops once the session is back.
                self.core.return_leased(session);
                Ok(())
            }
            (session, home, _tracker) => {
                // Leased from another pool: its place there is freed first, whether or not
                // this pool takes the session.
                if let Some(home) = home {
                    home.release_place(None);
                }
                self.core
                    .adopt(session)
                    .map_err(|(session, error)| PutError::new(session.into(), error))
            }
        }
    }

    /// Checks a session out behind a guard that puts it back when dropped, waiting up to
    /// the pool's default timeout (Python: `with pool.session() as session:`).
    pub async fn session(&self) -> Result<SessionCheckout> {
        let watch = Stopwatch::start();
        // The fast path returns its own value: sharing one with the slow path's `?` cost
        // the uncontended checkout extra copies of the result.
        match self.core.try_ready() {
            Ok(session) => {
                self.core.counters.export.wait_time(watch);
                Ok(self.guard(session))
            }
            Err(slow) => self.session_slow(slow, None, watch).await,
        }
    }

    /// [`session`](Pool::session), waiting up to `timeout`.
    pub async fn session_with_timeout(&self, timeout: Duration) -> Result<SessionCheckout> {
        let watch = Stopwatch::start();
        match self.core.try_ready() {
            Ok(session) => {
                self.core.counters.export.wait_time(watch);
                Ok(self.guard(session))
            }
            Err(slow) => self.session_slow(slow, Some(timeout), watch).await,
        }
    }

    /// The rest of a checkout the fast path could not serve.
    async fn session_slow(
        &self,
        slow: super::core::Slow<'_>,
        timeout: Option<Duration>,
        watch: Stopwatch,
    ) -> Result<SessionCheckout> {
        let session = slow.run(timeout).await?;
        self.core.counters.export.wait_time(watch);
        Ok(self.guard(session))
    }

    #[inline(always)]
    fn guard(&self, (session, home): (Session, Arc<Core>)) -> SessionCheckout {
        let tracker = self.core.track_checkout(&session);
        SessionCheckout::leased(session, home, tracker)
    }

    /// Checks the idle sessions that are due, replaces those that are gone and tops the
    /// pool up, as the strategy says; returns what it did once all of that is done.
    pub async fn ping(&self) -> Result<PingReport> {
        Ok(self.core.ping_round().await)
    }

    /// Runs [`ping`](Pool::ping) every `interval` on the current tokio runtime until the
    /// returned handle is dropped or the pool closes.
    pub fn spawn_ping_task(&self, interval: Duration) -> PingTask {
        PingTask::spawn(Arc::clone(&self.core), interval)
    }

    /// Deletes every idle session.
    pub async fn clear(&self) -> Result<()> {
        self.core.clear().await;
        Ok(())
    }

    /// Closes the pool; see [`AbstractSessionPool::close`].
    pub async fn close(&self) {
        self.core.close_and_retire().await
    }

    /// True once [`close`](Pool::close) was called.
    pub fn is_closed(&self) -> bool {
        self.core.is_closed()
    }

    /// A snapshot of the pool's gauges and counters.
    pub fn stats(&self) -> PoolStats {
        self.core.stats()
    }

    /// Labels given to every session the pool creates.
    pub fn labels(&self) -> &BTreeMap<String, String> {
        &self.core.options.labels
    }

    /// The database role of every session the pool creates.
    pub fn database_role(&self) -> Option<&str> {
        self.core.options.database_role.as_deref()
    }

    /// The database the pool is bound to, once bound.
    pub fn database(&self) -> Option<&Database> {
        self.core.database().ok()
    }
}

/// A checkout behind its guard, from a pool's core: what the stores, which hold any pool as
/// a `SharedPool`, run for this crate's pools ([`AbstractSessionPool::builtin_core`])
/// instead of the `dyn` `get`, whose future is boxed. `Pool::session` keeps its own fast
/// path: through this function its uncontended checkout measured 13 ns slower.
#[cfg(any(feature = "adk", feature = "items"))]
pub(crate) async fn session_of(core: &Arc<Core>) -> Result<SessionCheckout> {
    let watch = Stopwatch::start();
    let (session, home) = core.get(None).await?;
    core.counters.export.wait_time(watch);
    let tracker = core.track_checkout(&session);
    Ok(SessionCheckout::leased(session, home, tracker))
}

#[async_trait]
impl<S: Strategy> AbstractSessionPool for Pool<S> {
    fn labels(&self) -> &BTreeMap<String, String> {
        Pool::labels(self)
    }
    fn database_role(&self) -> Option<&str> {
        Pool::database_role(self)
    }
    async fn bind(&self, database: &Database) -> Result<()> {
        Pool::bind(self, database).await
    }
    async fn get(&self, timeout: Option<Duration>) -> Result<PooledSession> {
        Pool::get(self, timeout).await
    }
    // A refused session is handed back whole, as std's `SendError` does.
    #[allow(clippy::result_large_err)]
    fn put(&self, session: PooledSession) -> std::result::Result<(), PutError> {
        Pool::put(self, session)
    }
    async fn clear(&self) -> Result<()> {
        Pool::clear(self).await
    }
    async fn ping(&self) -> Result<PingReport> {
        Pool::ping(self).await
    }
    async fn close(&self) {
        Pool::close(self).await
    }
    fn stats(&self) -> PoolStats {
        Pool::stats(self)
    }
    fn track_checkout(&self, session: &Session) -> Option<CheckoutTracker> {
        self.core.track_checkout(session)
    }
    fn builtin_core(&self) -> Option<&Arc<Core>> {
        Some(&self.core)
    }
    async fn session(&self) -> Result<SessionCheckout> {
        Pool::session(self).await
    }
    async fn session_with_timeout(&self, timeout: Duration) -> Result<SessionCheckout> {
        Pool::session_with_timeout(self, timeout).await
    }
}

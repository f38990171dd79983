//! Options every strategy shares: what its sessions look like, and the leak warning.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::session::SessionOptions;

/// Options every strategy shares: what its sessions look like and the leak warning.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
#[must_use]
pub struct PoolOptions {
    /// The pool's name in metrics (`db.client.connection.pool.name`); default the
    /// strategy's name (`FixedSizePool`, …). Give each pool of a process its own.
    pub name: Option<String>,
    /// Labels and database role of the sessions the pool creates.
    pub session: SessionOptions,
    /// Log a warning (target `session_pool::leak`) for a checkout held longer than this.
    pub leak_threshold: Option<Duration>,
    /// Capture a backtrace at each checkout to show in the leak warning (costly; for
    /// debugging).
    pub leak_backtrace: bool,
    /// Close a checkout held past the leak threshold, not only warn (Spanner Java's
    /// `WarnAndClose`). On PostgreSQL its backend is terminated, so its transaction rolls
    /// back and its locks go; the holder then meets
    /// [`Error::SessionNotFound`], and the pool replaces
    /// the session when it comes back. SQLite sessions are only warned about.
    pub leak_close: bool,
    /// Check a session idle at least this long with `exists()` before handing it out (and
    /// in ping rounds), like sqlx's `test_before_acquire`; zero checks every checkout. It
    /// can only shorten the strategy's own interval (`max_age`, `ping_interval`). Whatever
    /// this says, once a pool finds one of its sessions lost, every idle session last used
    /// before then is checked before it is handed out.
    pub check_idle_after: Option<Duration>,
    /// Reset each session's state when a user gives it back (asyncpg resets connections on
    /// release), so that no checkout sees what the one before it left. The reset is sent
    /// with the session's next use, not when it comes back (no I/O in `Drop`): one more
    /// round trip per checkout.
    ///
    /// - PostgreSQL: what `DISCARD ALL` does (settings from `SET`, temporary tables,
    ///   `LISTEN`s, advisory locks, open cursors, cached plans, sequence state), except
    ///   that prepared statements stay, as sqlx keeps track of them; then the pool's
    ///   database role and the statement timeout are applied again.
    /// - SQLite: temporary tables, views and triggers are dropped.
    ///
    /// Without it (the default), all of those survive from one checkout to the next on
    /// the same session; a transaction never does (an abandoned one is rolled back). A
    /// `LISTEN` left that way costs one statement: the next `NOTIFY` arrives while the
    /// session runs one, which fails ([`Error::Unsupported`]), and the session is given up.
    pub reset_on_release: bool,
    /// Close a session idle this long (asyncpg's `max_inactive_connection_lifetime`); a
    /// pool that fills (fixed, pinging) creates a new one in its place. Checked by the
    /// pool's maintenance task at least every half of it (at most every 30 s).
    pub max_idle_lifetime: Option<Duration>,
    /// Close a session once it has been checked out this many times (asyncpg's
    /// `max_queries`, counted in checkouts); the pool creates a new one when it needs it.
    pub max_uses: Option<u64>,
    /// Close a session that comes back older than this (sqlx's and bb8's `max_lifetime`),
    /// less up to an eighth, spread per session so that sessions made together are not
    /// all replaced at once; the pool creates a new one when it needs it. What makes a busy
    /// pool move over to where new connections now go: a pooler restarted one process at a
    /// time (PgBouncer's `SHUTDOWN WAIT_FOR_CLIENTS`, what SIGTERM does since 1.23, exits
    /// only once its clients have reconnected elsewhere), a host name moved to a new
    /// primary after a failover, a load balancer's new members. Checked when a session
    /// comes back, so one that stays idle is closed by
    /// [`max_idle_lifetime`](PoolOptions::max_idle_lifetime) instead.
    pub max_lifetime: Option<Duration>,
    /// How many sessions are created at once when the pool is built and refilled
    /// (Spanner's `incStep`); 0 (the default) creates all that are missing at once.
    pub create_step: usize,
}

impl PoolOptions {
    /// Names the pool in metrics.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Labels and role for the pool's sessions.
    pub fn session(mut self, session: SessionOptions) -> Self {
        self.session = session;
        self
    }

    /// Checks sessions idle at least `idle` before handing them out.
    pub fn check_idle_after(mut self, idle: Duration) -> Self {
        self.check_idle_after = Some(idle);
        self
    }

    /// Turns the leak warning on: checkouts (from `session()` and `get()` alike) held
    /// longer than `threshold` are logged while they are held, by the pool's maintenance
    /// task, with the backtrace of where they were taken when `backtrace` is set.
    pub fn leak_threshold(mut self, threshold: Duration, backtrace: bool) -> Self {
        self.leak_threshold = Some(threshold);
        self.leak_backtrace = backtrace;
        self
    }

    /// Resets sessions given back (see [`reset_on_release`](PoolOptions::reset_on_release)).
    pub fn reset_on_release(mut self, reset: bool) -> Self {
        self.reset_on_release = reset;
        self
    }

    /// Closes sessions idle longer than `lifetime`.
    pub fn max_idle_lifetime(mut self, lifetime: Duration) -> Self {
        self.max_idle_lifetime = Some(lifetime);
        self
    }

    /// Closes sessions after `uses` checkouts.
    pub fn max_uses(mut self, uses: u64) -> Self {
        self.max_uses = Some(uses);
        self
    }

    /// Closes sessions that come back older than about `lifetime` (see
    /// [`max_lifetime`](PoolOptions::max_lifetime)).
    pub fn max_lifetime(mut self, lifetime: Duration) -> Self {
        self.max_lifetime = Some(lifetime);
        self
    }

    /// Creates sessions `step` at a time.
    pub fn create_step(mut self, step: usize) -> Self {
        self.create_step = step;
        self
    }

    /// Closes leaked checkouts too (see [`leak_close`](PoolOptions::leak_close)).
    pub fn leak_close(mut self, close: bool) -> Self {
        self.leak_close = close;
        self
    }
}

pub(crate) fn check_size(what: &str, size: usize) -> Result<()> {
    if size == 0 {
        return Err(Error::invalid(format!("{what} must be at least 1")));
    }
    Ok(())
}

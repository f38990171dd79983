//! Options every strategy shares: what its sessions look like, and the leak warning.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::session::SessionOptions;

/// Options every strategy shares: what its sessions look like and the leak warning.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
#[must_use]
pub struct PoolOptions {
    /// Labels and database role of the sessions the pool creates.
    pub session: SessionOptions,
    /// Log a warning (target `session_pool::leak`) for a checkout held longer than this.
    pub leak_threshold: Option<Duration>,
    /// Capture a backtrace at each checkout to show in the leak warning (costly; for
    /// debugging).
    pub leak_backtrace: bool,
    /// Check a session idle at least this long with `exists()` before handing it out (and
    /// in ping rounds), like sqlx's `test_before_acquire`; zero checks every checkout. It
    /// can only shorten the strategy's own interval (`max_age`, `ping_interval`). Whatever
    /// this says, once a pool finds one of its sessions lost, every idle session last used
    /// before then is checked before it is handed out.
    pub check_idle_after: Option<Duration>,
}

impl PoolOptions {
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

    /// Turns the leak warning on.
    pub fn leak_threshold(mut self, threshold: Duration, backtrace: bool) -> Self {
        self.leak_threshold = Some(threshold);
        self.leak_backtrace = backtrace;
        self
    }
}

pub(crate) fn check_size(what: &str, size: usize) -> Result<()> {
    if size == 0 {
        return Err(Error::invalid(format!("{what} must be at least 1")));
    }
    Ok(())
}

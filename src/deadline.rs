//! A statement deadline that SQLite's progress handler checks from the driver's worker
//! thread: setting it is one atomic store, so arming it for every statement costs nothing
//! worth measuring.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// How many SQLite virtual-machine steps run between two checks of the deadline.
#[cfg(feature = "sqlite")]
pub(crate) const CHECK_EVERY_OPS: i32 = 1000;

/// When the running statement must stop; zero when nothing is armed.
#[derive(Debug)]
pub(crate) struct Interrupt {
    base: Instant,
    /// Nanoseconds after `base`.
    deadline: AtomicU64,
}

impl Default for Interrupt {
    fn default() -> Self {
        Interrupt {
            base: Instant::now(),
            deadline: AtomicU64::new(0),
        }
    }
}

impl Interrupt {
    fn now(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// The running statement stops once `timeout` has passed.
    pub(crate) fn arm(&self, timeout: Duration) {
        let timeout = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
        self.deadline
            .store(self.now().saturating_add(timeout).max(1), Relaxed);
    }

    /// No deadline.
    pub(crate) fn disarm(&self) {
        self.deadline.store(0, Relaxed);
    }

    /// True once an armed deadline has passed.
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) fn expired(&self) -> bool {
        let d = self.deadline.load(Relaxed);
        d != 0 && self.now() >= d
    }
}

/// A SQLite statement's hold on its session's interrupt while it runs, armed with the
/// statement's deadline if it has one. [`finish`](Running::finish)ed, it disarms. Dropped
/// before that (the statement's future or stream dropped half-way: a cancelled request),
/// it stops the statement at its next check instead of letting it run on, holding the
/// database's write lock; the session's next use reads what is left and disarms (see
/// `session/settle.rs`). Either way one atomic store, no I/O.
#[derive(Debug)]
pub(crate) struct Running(Option<std::sync::Arc<Interrupt>>);

impl Running {
    /// The statement starts: with `timeout`, it stops once that has passed.
    pub(crate) fn start(interrupt: std::sync::Arc<Interrupt>, timeout: Option<Duration>) -> Self {
        if let Some(timeout) = timeout {
            interrupt.arm(timeout);
        }
        Running(Some(interrupt))
    }

    /// The statement answered: no deadline is left behind for the next one.
    pub(crate) fn finish(mut self) {
        if let Some(i) = self.0.take() {
            i.disarm();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(i) = self.0.take() {
            i.arm(Duration::ZERO);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_only_when_armed_and_past() {
        let i = std::sync::Arc::new(Interrupt::default());
        assert!(!i.expired());
        i.arm(Duration::ZERO);
        assert!(i.expired());
        i.arm(Duration::from_secs(60));
        assert!(!i.expired());
        i.arm(Duration::ZERO);
        Running::start(i.clone(), None).finish();
        assert!(!i.expired(), "a finished statement leaves nothing armed");
        Running::start(i.clone(), Some(Duration::from_secs(60))).finish();
        assert!(!i.expired());
    }

    #[test]
    fn a_statement_dropped_while_running_is_stopped() {
        let i = std::sync::Arc::new(Interrupt::default());
        drop(Running::start(i.clone(), None));
        assert!(i.expired());
        i.disarm();
        drop(Running::start(i.clone(), Some(Duration::from_secs(60))));
        assert!(i.expired(), "stopped at once, not at its deadline");
    }
}

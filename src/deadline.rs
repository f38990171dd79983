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

/// Disarms its interrupt when dropped: a statement whose future or stream is dropped
/// half-way leaves no deadline behind for the next one.
#[derive(Debug)]
pub(crate) struct Armed(pub(crate) std::sync::Arc<Interrupt>);

impl Drop for Armed {
    fn drop(&mut self) {
        self.0.disarm();
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
        drop(Armed(i.clone()));
        assert!(!i.expired());
    }
}

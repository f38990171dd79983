//! The sweeper: one task per pool, alive only while someone waits with a deadline, that
//! fails waiters whose deadline passed. Waiters themselves arm no timer, so a contended
//! checkout costs no timer-wheel insert and removal.

use std::sync::{Arc, Weak};

use tokio::sync::Notify;
use tokio::time::Instant;

use super::core::Core;

/// The sweeper's state, kept under the pool's lock.
#[derive(Debug, Default)]
pub(crate) struct Sweeper {
    running: bool,
    /// The deadline the running sweeper sleeps until.
    pub(super) next: Option<Instant>,
}

/// What a new deadline asks of the sweeper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arm {
    /// Nothing: it already wakes in time.
    Nothing,
    /// Wake it to sleep until an earlier deadline.
    Notify,
    /// Start it.
    Spawn,
}

impl Sweeper {
    /// Takes a new waiter's deadline into account.
    pub(super) fn arm(&mut self, deadline: Instant) -> Arm {
        if !self.running {
            self.running = true;
            self.next = Some(deadline);
            Arm::Spawn
        } else if self.next.is_none_or(|n| deadline < n) {
            self.next = Some(deadline);
            Arm::Notify
        } else {
            Arm::Nothing
        }
    }

    pub(super) fn disarm(&mut self) {
        self.running = false;
        self.next = None;
    }
}

/// Tells the pool if the sweeper's task is dropped before it stood down.
struct Lost(Option<Weak<Core>>);

impl Drop for Lost {
    fn drop(&mut self) {
        if let Some(core) = self.0.take().and_then(|c| c.upgrade()) {
            core.sweeper_lost();
        }
    }
}

/// The sweeper's task: expire, sleep until the next deadline (or an earlier one arrives),
/// repeat; stand down when no waiter has a deadline or the pool is gone.
pub(super) async fn run(core: Weak<Core>, notify: Arc<Notify>) {
    let mut lost = Lost(Some(core.clone()));
    loop {
        let next = match core.upgrade() {
            Some(core) => core.expire_waiters(),
            None => None,
        };
        let Some(next) = next else {
            lost.0 = None;
            return;
        };
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            () = notify.notified() => {}
        }
    }
}

//! The sweeper: one task per pool, alive only while someone waits with a deadline, that
//! fails waiters whose deadline passed. Waiters themselves arm no timer, so a contended
//! checkout costs no timer-wheel insert and removal.

use std::sync::Arc;

use tokio::sync::Notify;
use tokio::time::Instant;

/// The sweeper's state, kept under the pool's lock.
#[derive(Debug, Default)]
pub(crate) struct Sweeper {
    running: bool,
    /// The deadline the running sweeper sleeps until.
    pub(crate) next: Option<Instant>,
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
    pub(crate) fn arm(&mut self, deadline: Instant) -> Arm {
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

    pub(crate) fn disarm(&mut self) {
        self.running = false;
        self.next = None;
    }
}

/// Runs `on_lost` if the sweeper's task is dropped before it stood down.
struct Lost<F: FnOnce()>(Option<F>);

impl<F: FnOnce()> Drop for Lost<F> {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}

/// The sweeper's task: `expire` fails the overdue waiters and returns the next deadline
/// (`None`: stand down, as nobody waits with a deadline or the pool is gone); sleep until
/// then or until an earlier deadline arrives; repeat.
pub(crate) async fn run(
    expire: impl Fn() -> Option<Instant>,
    on_lost: impl FnOnce(),
    notify: Arc<Notify>,
) {
    let mut lost = Lost(Some(on_lost));
    loop {
        let Some(next) = expire() else {
            lost.0 = None;
            return;
        };
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            () = notify.notified() => {}
        }
    }
}

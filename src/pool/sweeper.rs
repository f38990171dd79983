//! The sweeper: one task per pool, alive only while someone waits with a deadline, that
//! fails waiters whose deadline passed. Waiters themselves arm no timer, so a contended
//! checkout costs no timer-wheel insert and removal. Off a current-thread runtime, the
//! process's timer thread does this instead (see `timer_thread.rs`).

use std::sync::Arc;

use tokio::sync::Notify;
use tokio::time::Instant;

/// The sweeper's state, kept under the pool's lock.
#[derive(Debug, Default)]
pub(crate) struct Sweeper {
    running: bool,
    /// The running sweeper is the timer thread's entry, not a task.
    on_thread: bool,
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
    /// Give the timer thread this deadline (it starts or moves the pool's entry).
    Thread(Instant),
}

impl Sweeper {
    /// Takes a new waiter's deadline into account; `on_thread` says, if no sweeper runs,
    /// whether the timer thread should be it.
    pub(crate) fn arm(&mut self, deadline: Instant, on_thread: impl FnOnce() -> bool) -> Arm {
        if !self.running {
            self.running = true;
            self.on_thread = on_thread();
            self.next = Some(deadline);
            if self.on_thread {
                Arm::Thread(deadline)
            } else {
                Arm::Spawn
            }
        } else if self.next.is_none_or(|n| deadline < n) {
            self.next = Some(deadline);
            if self.on_thread {
                Arm::Thread(deadline)
            } else {
                Arm::Notify
            }
        } else {
            Arm::Nothing
        }
    }

    pub(crate) fn disarm(&mut self) {
        self.running = false;
        self.next = None;
    }
}

/// Whether a pool's sweeper should be the timer thread: on a multi-thread runtime, or on
/// none (whose clocks cannot be paused), when the thread runs.
pub(crate) fn use_thread() -> bool {
    let paused_clock_possible = tokio::runtime::Handle::try_current()
        .is_ok_and(|rt| rt.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread);
    !paused_clock_possible && super::timer_thread::available()
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

//! The janitor: one task per pool, started the first time there is work for it, that
//!
//! - settles sessions that came home cut off (a task aborted, timed out or panicking): it
//!   stops a statement still running and rolls back an abandoned transaction (see
//!   `session/settle.rs`), so that their locks go within milliseconds rather than at the
//!   session's next use, however quiet the pool is, and no later user waits for them.
//!   Side by side, taking in those that come home meanwhile: one settle waiting out its
//!   check timeout holds up no other;
//! - with the leak warning on, looks for checkouts held too long, while they are held;
//! - closes sessions idle past the maximum idle lifetime, and tops the pool up (to its
//!   size, or to a bursty pool's `min_idle`).
//!
//! Checkin stays free of I/O: it only queues the session and wakes this task.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

/// What the janitor does after a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// There may be more work: another round at once.
    Again,
    /// Wait for work, or for the next tick.
    Wait,
    /// The pool is closed: end.
    Stop,
}

/// How often the janitor looks for leaks: often enough to warn soon after the threshold.
pub(crate) fn leak_tick(threshold: Duration) -> Duration {
    (threshold / 2).clamp(Duration::from_millis(10), Duration::from_secs(1))
}

/// The janitor's task: runs `round` (which returns `None` once its pool is gone), then
/// waits for `notify` or the `tick`. `round` should hold its pool only while it works, so
/// that a pool nobody holds any more is dropped; the pool's `Drop` wakes the task to end.
pub(crate) async fn run<F: Future<Output = Next>>(
    round: impl Fn() -> Option<F>,
    notify: Arc<Notify>,
    tick: Option<Duration>,
) {
    tracing::debug!(target: "session_pool::pool", "janitor started");
    loop {
        let Some(work) = round() else {
            break;
        };
        match work.await {
            Next::Again => continue,
            Next::Stop => break,
            Next::Wait => {}
        }
        match tick {
            Some(t) => {
                tokio::select! {
                    () = notify.notified() => {}
                    () = tokio::time::sleep(t) => {}
                }
            }
            None => notify.notified().await,
        }
    }
    tracing::debug!(target: "session_pool::pool", "janitor stopped");
}

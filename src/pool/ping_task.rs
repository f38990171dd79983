//! The background ping task: the thread the Python client asks the application to run.

use std::time::Duration;

use std::sync::Arc;

use super::core::Core;

/// Handle of a running ping task. The task runs the pool's [`ping`](super::Pool::ping) every
/// interval; it stops when this handle is dropped (or [`stop`](PingTask::stop)ped) or when
/// the pool closes. A round under way when the handle is dropped is finished first, so no
/// session is lost mid-ping.
#[derive(Debug)]
#[must_use = "the ping task stops when its handle is dropped"]
pub struct PingTask {
    handle: tokio::task::JoinHandle<()>,
    stop: Arc<tokio::sync::Notify>,
}

/// The shortest interval accepted; shorter ones are raised to it.
const MIN_INTERVAL: Duration = Duration::from_millis(1);

impl PingTask {
    pub(crate) fn spawn(core: Arc<Core>, interval: Duration) -> PingTask {
        let interval = interval.max(MIN_INTERVAL);
        let stop = Arc::new(tokio::sync::Notify::new());
        let stopped = stop.clone();
        let handle = tokio::spawn(async move {
            let closed = core.closed_notify.notified();
            tokio::pin!(closed);
            closed.as_mut().enable();
            if core.is_closed() {
                return;
            }
            let start = tokio::time::Instant::now() + interval;
            let mut tick = tokio::time::interval_at(start, interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tracing::debug!(target: "session_pool::ping", ?interval, "ping task started");
            loop {
                tokio::select! {
                    _ = &mut closed => break,
                    _ = stopped.notified() => break,
                    _ = tick.tick() => {
                        core.ping_round().await;
                    }
                }
            }
            tracing::debug!(target: "session_pool::ping", "ping task stopped");
        });
        PingTask { handle, stop }
    }

    /// Stops the task (as dropping the handle does).
    pub fn stop(self) {}

    /// True once the task has ended.
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// Stops the task and waits until it has ended (its current round finished).
    pub async fn shutdown(mut self) {
        self.stop.notify_one();
        let _ = (&mut self.handle).await;
    }
}

impl Drop for PingTask {
    fn drop(&mut self) {
        // A stored permit: the task ends at its next wait, after any round under way. No I/O.
        self.stop.notify_one();
    }
}

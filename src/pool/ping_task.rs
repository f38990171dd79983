//! The background ping task: the thread the Python client asks the application to run.

use std::sync::Arc;
use std::time::Duration;

use super::AbstractSessionPool;
use super::core::Core;

/// Handle of a running ping task. The task runs the pool's
/// [`ping`](AbstractSessionPool::ping) every interval; it stops when this handle is dropped
/// (or [`stop`](PingTask::stop)ped) or when the pool closes.
#[derive(Debug)]
#[must_use = "the ping task stops when its handle is dropped"]
pub struct PingTask {
    handle: tokio::task::JoinHandle<()>,
}

/// The shortest interval accepted; shorter ones are raised to it.
const MIN_INTERVAL: Duration = Duration::from_millis(1);

impl PingTask {
    pub(crate) fn spawn<P>(pool: P, core: Arc<Core>, interval: Duration) -> PingTask
    where
        P: AbstractSessionPool + 'static,
    {
        let interval = interval.max(MIN_INTERVAL);
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
                    _ = tick.tick() => {
                        if let Err(e) = pool.ping().await {
                            tracing::warn!(target: "session_pool::ping", error = %e, "ping round failed");
                        }
                    }
                }
            }
            tracing::debug!(target: "session_pool::ping", "ping task stopped: the pool closed");
        });
        PingTask { handle }
    }

    /// Stops the task (as dropping the handle does).
    pub fn stop(self) {}

    /// True once the task has ended (the pool closed).
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }
}

impl Drop for PingTask {
    fn drop(&mut self) {
        // Aborting only flags the task; no I/O happens here.
        self.handle.abort();
    }
}

//! The background ping task: the thread the Python client asks the application to run.

use std::time::Duration;

use std::sync::Arc;

use super::core::Core;

/// Handle of a running ping task. The task runs the pool's [`ping`](super::Pool::ping) every
/// interval; it stops when this handle is dropped (or [`stop`](PingTask::stop)ped) or when
/// the pool closes. A round under way is given 100 ms to finish (against a healthy server
/// it needs far less, and no session is lost); against a server that stopped answering it
/// is abandoned, the sessions it was checking are closed, and the pool creates new ones
/// when it needs them. Each probe of a round is bounded by the database's
/// [check timeout](crate::DatabaseOptions::check_timeout).
#[derive(Debug)]
#[must_use = "the ping task stops when its handle is dropped"]
pub struct PingTask {
    handle: tokio::task::JoinHandle<()>,
    stop: Arc<tokio::sync::Notify>,
}

/// How long a round under way may go on once the task is asked to stop.
const STOP_GRACE: Duration = Duration::from_millis(100);

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
                    _ = tick.tick() => {}
                }
                let round = core.ping_round();
                tokio::pin!(round);
                tokio::select! {
                    _ = &mut closed => {}
                    _ = stopped.notified() => {}
                    _ = &mut round => continue,
                }
                // Asked to stop mid-round: a healthy server finishes it at once, and no
                // session is lost; a hung one does not, and the round is abandoned.
                let _ = tokio::time::timeout(STOP_GRACE, round).await;
                break;
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

    /// Stops the task and waits until it has ended.
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

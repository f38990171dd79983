//! Maintenance: ping rounds (check idle sessions, replace the dead, top the pool up) and
//! filling a pool to its size.

use std::sync::Arc;

use super::core::{Core, Probe};
use super::slot::Slot;
use super::stats::PingReport;
use crate::error::Error;

/// What became of one probed session.
enum Outcome {
    Alive,
    Replaced,
    Failed,
}

impl Core {
    /// One maintenance round: probes the idle sessions at the front of the queue that are
    /// due, replaces the dead ones, and (for strategies that fill) recreates missing
    /// sessions.
    pub(crate) async fn ping_round(self: &Arc<Self>) -> PingReport {
        use futures_util::future::join_all;
        let mut report = PingReport::default();
        let due = self.due(coarsetime::Instant::now_without_cache_update());
        let probe = self.rules.probe;
        let slots = self.take_idle_while(due);
        for outcome in join_all(slots.into_iter().map(|slot| self.probe(slot, probe))).await {
            match outcome {
                Outcome::Alive => report.pinged += 1,
                Outcome::Replaced => report.replaced += 1,
                Outcome::Failed => report.failed += 1,
            }
        }
        if (self.rules.fill || self.rules.life.min_idle > 0) && !self.is_closed() {
            let (made, errors) = self.fill().await;
            report.topped_up = made;
            report.failed += errors.len();
            if let Some(e) = errors.first() {
                tracing::warn!(target: "session_pool::pool", error = %e, failed = errors.len(),
                    "could not create sessions to refill the pool");
            }
        }
        self.counters.add_pinged(report.pinged as u64);
        self.counters.export.publish(&self.stats());
        if report != PingReport::default() {
            tracing::debug!(target: "session_pool::ping", pinged = report.pinged,
                replaced = report.replaced, topped_up = report.topped_up, failed = report.failed,
                "ping round");
        }
        self.check_leaks().await;
        report
    }

    /// Creates the missing sessions (see [`reserve_missing`](Core::reserve_missing)),
    /// `create_step` at a time; returns how many were made and the errors of those that
    /// were not.
    pub(crate) async fn fill(self: &Arc<Self>) -> (usize, Vec<Error>) {
        let _filling = self.fill_lock.lock().await;
        let slots = self.reserve_missing();
        let mut results = Vec::with_capacity(slots.len());
        for chunk in super::core::chunks(slots, self.rules.life.create_step) {
            results.extend(
                futures_util::future::join_all(chunk.into_iter().map(|mut slot| async move {
                    slot.ensure_session().await?;
                    slot.checkin();
                    Ok::<_, Error>(())
                }))
                .await,
            );
        }
        let mut made = 0;
        let mut errors = Vec::new();
        for r in results {
            match r {
                Ok(()) => made += 1,
                Err(e) => errors.push(e),
            }
        }
        (made, errors)
    }

    async fn probe(&self, mut slot: Slot<'_, Core>, probe: Probe) -> Outcome {
        let alive = match slot.session_mut() {
            Some(s) => match probe {
                Probe::Exists => s.exists().await.unwrap_or(false),
                Probe::Ping => s.ping().await.is_ok(),
            },
            None => false,
        };
        if alive {
            slot.checkin();
            return Outcome::Alive;
        }
        slot.discard_dead();
        match slot.ensure_session().await {
            Ok(()) => {
                slot.checkin();
                Outcome::Replaced
            }
            Err(e) => {
                tracing::warn!(target: "session_pool::pool", error = %e,
                    "could not create a replacement session");
                Outcome::Failed
            }
        }
    }
}

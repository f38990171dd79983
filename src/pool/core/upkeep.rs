//! The janitor's side of the core: leak tracking, settling sessions that came home cut
//! off, retiring sessions idle too long and refilling.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use super::Core;
use crate::pool::janitor;
use crate::pool::leak::{CheckoutTracker, LeakRegistry};
use crate::pool::slot::{Places, Slot};
use crate::session::Session;

impl Core {
    /// Takes the idle sessions at the front of the queue for which `due` holds (up to the
    /// first that does not, which goes back), for checking.
    pub(crate) fn take_idle_while(
        self: &Arc<Self>,
        due: impl Fn(&Session) -> bool,
    ) -> Vec<Slot<'_, Core>> {
        self.pop_idle_while(|s| due(s) || self.suspect(s))
            .into_iter()
            .map(|s| Slot::new(self, Some(s)))
            .collect()
    }

    /// Takes idle sessions from the front of the queue while `take` holds; the first for
    /// which it does not goes back (the queue is in order of use, so the rest are younger).
    /// The sessions taken are still counted open.
    fn pop_idle_while(&self, take: impl Fn(&Session) -> bool) -> Vec<Session> {
        let mut out = Vec::new();
        while let Some(s) = self.idle.pop() {
            if take(&s) {
                out.push(s);
            } else {
                self.checkin(s);
                break;
            }
        }
        out
    }

    /// Closes the idle sessions idle longer than the maximum idle lifetime, then tops the
    /// pool up (to its size where it fills, to `min_idle` otherwise). For the janitor.
    pub(crate) async fn maintain(self: &Arc<Self>) {
        if self.database.get().is_none() || self.is_closed() {
            return;
        }
        if let Some(limit) = self.rules.life.max_idle_lifetime {
            let now = coarsetime::Instant::now_without_cache_update();
            let expired = self.pop_idle_while(|s| s.idle_for(now).is_some_and(|i| i >= limit));
            if !expired.is_empty() {
                let _locked = self.state.lock();
                self.open.fetch_sub(expired.len(), Relaxed);
            }
            if !expired.is_empty() {
                tracing::debug!(target: "session_pool::pool", sessions = expired.len(),
                    "closing sessions idle past the maximum idle lifetime");
                self.retire_all(expired).await;
                self.wake_waiters_for_free_places();
            }
        }
        let (made, errors) = self.fill().await;
        if let Some(e) = errors.first() {
            tracing::warn!(target: "session_pool::pool", error = %e, made,
                failed = errors.len(), "could not create sessions to refill the pool");
        }
    }

    #[inline]
    pub(crate) fn track_checkout(&self, session: &Session) -> Option<CheckoutTracker> {
        let leaks = self.leaks.as_ref()?;
        self.track_in(leaks, session)
    }

    /// [`track_checkout`](Core::track_checkout) for a pool that warns about leaks.
    fn track_in(&self, leaks: &Arc<LeakRegistry>, session: &Session) -> Option<CheckoutTracker> {
        let tracker = leaks.track(session.session_id(), session.backend());
        // The janitor warns about leaks while they are held.
        let start = !std::mem::replace(&mut self.state.lock().janitor, true);
        if start && let Ok(rt) = tokio::runtime::Handle::try_current() {
            self.wake_janitor(Some(rt));
        } else if start {
            self.state.lock().janitor = false;
        }
        Some(tracker)
    }

    /// Starts the janitor if the pool's rules need it to look at the pool periodically
    /// (leak warning, idle lifetime, idle floor).
    pub(super) fn start_ticking(&self) {
        if self.janitor_tick().is_none() {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if !std::mem::replace(&mut self.state.lock().janitor, true) {
            self.wake_janitor(Some(rt));
        }
    }

    /// How often the janitor looks at the pool, if it must.
    fn janitor_tick(&self) -> Option<Duration> {
        let leaks = self
            .leaks
            .as_ref()
            .map(|l| janitor::leak_tick(l.threshold()));
        leaks
            .into_iter()
            .chain(self.rules.life.tick())
            .chain(crate::pool::metrics::SAMPLE_EVERY)
            .min()
    }

    /// Starts the janitor on `start`'s runtime, or wakes the running one.
    pub(super) fn wake_janitor(&self, start: Option<tokio::runtime::Handle>) {
        match start {
            Some(rt) => {
                let tick = self.janitor_tick();
                let me = self.me.clone();
                let round = move || {
                    let core = me.upgrade()?;
                    Some(async move { core.janitor_round().await })
                };
                rt.spawn(janitor::run(round, self.janitor_notify.clone(), tick));
            }
            None => self.janitor_notify.notify_one(),
        }
    }

    /// Warns about checkouts held past the leak threshold and, when asked to, closes them:
    /// on PostgreSQL their backend is terminated, so their transaction rolls back and their
    /// locks go; the holder then meets
    /// [`Error::SessionNotFound`](crate::Error::SessionNotFound) and the pool replaces the
    /// session when it comes back.
    pub(crate) async fn check_leaks(&self) {
        let Some(leaks) = &self.leaks else {
            return;
        };
        let doomed = leaks.check();
        #[cfg(feature = "postgres")]
        if let (false, Ok(db)) = (doomed.is_empty(), self.database()) {
            let timeout = db.check_timeout();
            for pid in doomed {
                let res = tokio::time::timeout(timeout, db.terminate_backend(pid)).await;
                tracing::warn!(target: "session_pool::leak", pid = pid.pid, closed = matches!(res, Ok(Ok(true))),
                    "closed a leaked session's backend");
            }
        }
        #[cfg(not(feature = "postgres"))]
        let _ = doomed;
    }

    /// One round of the janitor (see `janitor.rs`): roll back what came home dirty; else
    /// look for leaks, retire and refill, and sample the gauges.
    async fn janitor_round(self: Arc<Self>) -> janitor::Next {
        let dirty = self.take_dirty();
        if !dirty.is_empty() {
            self.clean(dirty).await;
            return janitor::Next::Again;
        }
        self.check_leaks().await;
        // Only the lifecycle rules retire and refill here: a janitor that ticks for the
        // leak warning or the metrics changes nothing else.
        if self.rules.life.tick().is_some() {
            self.maintain().await;
        }
        self.counters.export.publish(&self.stats());
        if self.is_closed() {
            janitor::Next::Stop
        } else {
            janitor::Next::Wait
        }
    }

    /// The sessions waiting for the janitor.
    pub(crate) fn take_dirty(&self) -> Vec<Session> {
        std::mem::take(&mut self.state.lock().dirty)
    }

    /// Settles the cut-off statements and transactions of `dirty` (each within the check
    /// timeout), concurrently, and returns each session to the pool as soon as it is
    /// settled; a session that did not answer is dropped and replaced. Sessions that come
    /// home dirty meanwhile join at once: one settle waiting out its check timeout (a
    /// cancel that cannot get through) must not hold up another's rollback, whose locks
    /// others may be waiting on.
    pub(crate) async fn clean(&self, dirty: Vec<Session>) {
        use futures_util::stream::{FuturesUnordered, StreamExt};

        let settle = |mut s: Session| async move {
            if let Err(e) = s.settle().await {
                tracing::debug!(target: "session_pool::pool", error = %e,
                    "could not settle a cut-off statement or transaction; dropping its session");
            }
            s
        };
        let mut settling: FuturesUnordered<_> = dirty.into_iter().map(settle).collect();
        let mut n = 0usize;
        while !settling.is_empty() {
            tokio::select! {
                Some(s) = settling.next() => {
                    n += 1;
                    self.checkin(s);
                }
                // A wake-up taken here for anything else is not lost: the janitor runs
                // another round after this one.
                () = self.janitor_notify.notified() => {
                    settling.extend(self.take_dirty().into_iter().map(settle));
                }
            }
        }
        tracing::debug!(target: "session_pool::pool", sessions = n,
            "settled cut-off statements and transactions");
    }
}

//! Waiting for a session: the first-come-first-served queue's entry and exit, and the
//! sweeper that times waiters out.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::time::Instant;

use super::Core;
use crate::error::{Error, Result};
use crate::pool::queue::{Grant, State, Waiter};
use crate::pool::slot::{Places, Slot};
use crate::pool::sweeper::{self, Arm};
use crate::pool::timer_thread::{self, Expire};

impl Core {
    /// Takes an idle session or a free place, waiting up to `timeout` (None: forever) for one.
    pub(crate) async fn acquire(
        self: &Arc<Self>,
        timeout: Option<Duration>,
        deadline: Option<Instant>,
    ) -> Result<Slot<'_, Core>> {
        self.database()?;
        // Made before the lock, which every checkin with waiters takes: the allocation
        // would lengthen the time it is held. A checkout here nearly always waits.
        let w = Waiter::queued(deadline, timeout.unwrap_or(Duration::MAX));
        let waiter = {
            let mut st = self.state.lock();
            if self.gate.is_closed() {
                return Err(Error::Closed);
            }
            if st.waiters.is_empty()
                && let Some(e) = self.idle.pop()
            {
                return Ok(Slot::new(self, Some(e)));
            }
            if self.open.load(Relaxed) < self.rules.max_open {
                self.open.fetch_add(1, Relaxed);
                return Ok(Slot::new(self, None));
            }
            if timeout == Some(Duration::ZERO) {
                drop(st);
                self.counters.add_get_timeouts(1);
                return Err(Error::PoolTimeout {
                    timeout: Duration::ZERO,
                });
            }
            // No timer per waiter: one sweeper per pool times waiters out (see
            // `sweeper.rs`), so a contended checkout costs no timer-wheel insert and remove.
            st.enqueue(w.clone(), &self.gate);
            // A session a checkin pushed before it could see this waiter goes to the
            // waiters now, in order (see `gate.rs`).
            let wakers = self.hand_idle_to_waiters(&mut st);
            let arm = deadline.map_or(Arm::Nothing, |d| st.sweeper.arm(d, sweeper::use_thread));
            drop(st);
            wakers.into_iter().for_each(Waker::wake);
            self.start_sweeper(arm);
            w
        };
        Wait {
            core: self,
            waiter,
            done: false,
        }
        .await
    }

    /// Under the lock: hands idle sessions to the waiters, first come first served.
    pub(super) fn hand_idle_to_waiters(&self, st: &mut State) -> Vec<Waker> {
        let mut wakers = Vec::new();
        while !st.waiters.is_empty() {
            let Some(session) = self.idle.pop() else {
                break;
            };
            match st.grant_first(Grant::Session(session), &self.gate) {
                Ok(waker) => wakers.extend(waker),
                Err(grant) => {
                    self.requeue(grant);
                    break;
                }
            }
        }
        wakers
    }

    /// Spawns or wakes the sweeper (a task on a current-thread runtime, the process's timer
    /// thread otherwise), as [`Sweeper::arm`](crate::pool::sweeper::Sweeper::arm) decided.
    fn start_sweeper(&self, arm: Arm) {
        match arm {
            Arm::Nothing => {}
            Arm::Notify => self.sweep_notify.notify_one(),
            Arm::Thread(deadline) => timer_thread::arm(self.me.clone(), deadline),
            Arm::Spawn => match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    let (expire, lost) = (self.me.clone(), self.me.clone());
                    rt.spawn(sweeper::run(
                        move || expire.upgrade()?.expire_waiters(),
                        move || {
                            if let Some(core) = lost.upgrade() {
                                core.sweeper_lost();
                            }
                        },
                        self.sweep_notify.clone(),
                    ));
                }
                Err(_) => {
                    // Not on a tokio runtime, and the timer thread could not be started:
                    // waiters wait until served or cancelled; the next arm tries again.
                    self.state.lock().sweeper.disarm();
                    tracing::warn!(target: "session_pool::pool",
                        "no tokio runtime and no timer thread: pool wait timeouts cannot be enforced");
                }
            },
        }
    }

    /// The sweeper's round: fails the waiters whose deadline passed and returns the next
    /// deadline, or `None` (and the sweeper stands down) when no waiter has one.
    fn expire_waiters(&self) -> Option<Instant> {
        let (wakers, next) = self.state.lock().expire_waiters(Instant::now(), &self.gate);
        if !wakers.is_empty() {
            self.counters.add_get_timeouts(wakers.len() as u64);
        }
        wakers.into_iter().for_each(|w| w.wake());
        next
    }

    /// The sweeper stopped without finishing (its runtime shut down): waiters with a
    /// deadline are woken to arm a new one.
    fn sweeper_lost(&self) {
        let wakers = self.state.lock().sweeper_lost();
        wakers.into_iter().for_each(|w| w.wake());
    }

    /// Places freed without `release_place` (sessions retired from the idle queue) are
    /// offered to waiters.
    pub(super) fn wake_waiters_for_free_places(&self) {
        let mut wakers = Vec::new();
        let mut st = self.state.lock();
        while !self.gate.is_closed()
            && self.open.load(Relaxed) < self.rules.max_open
            && !st.waiters.is_empty()
        {
            self.open.fetch_add(1, Relaxed);
            match st.grant_first(Grant::Create, &self.gate) {
                Ok(w) => wakers.extend(w),
                Err(_) => {
                    self.open.fetch_sub(1, Relaxed);
                    break;
                }
            }
        }
        drop(st);
        wakers.into_iter().for_each(|w| w.wake());
    }
}

impl Expire for Core {
    fn expire(&self) -> Option<Instant> {
        self.expire_waiters()
    }
}

/// A queued `acquire`; dropping it (timeout, cancellation) leaves the queue and gives back
/// anything granted meanwhile.
struct Wait<'c> {
    core: &'c Arc<Core>,
    waiter: Arc<Waiter>,
    /// The grant was taken: the waiter is out of the queue and holds nothing, so dropping
    /// has nothing to undo (and takes no lock).
    done: bool,
}

impl<'c> Future for Wait<'c> {
    type Output = Result<Slot<'c, Core>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // `Wait` is `Unpin` (a reference, an `Arc` and a flag).
        let this = self.get_mut();
        let mut inner = this.waiter.inner.lock();
        let grant = inner.grant.take();
        if grant.is_some() {
            // A grant is given only with the waiter taken out of the queue.
            debug_assert!(!inner.queued);
            this.done = true;
        }
        match grant {
            Some(Grant::Session(s)) => Poll::Ready(Ok(Slot::new(this.core, Some(s)))),
            Some(Grant::Create) => Poll::Ready(Ok(Slot::new(this.core, None))),
            Some(Grant::Closed) => Poll::Ready(Err(Error::Closed)),
            Some(Grant::TimedOut) => Poll::Ready(Err(Error::PoolTimeout {
                timeout: this.waiter.timeout,
            })),
            None => {
                match &mut inner.waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    slot => *slot = Some(cx.waker().clone()),
                }
                let rearm = std::mem::take(&mut inner.rearm);
                drop(inner);
                if rearm && let Some(d) = this.waiter.deadline {
                    let arm = this.core.state.lock().sweeper.arm(d, sweeper::use_thread);
                    this.core.start_sweeper(arm);
                }
                Poll::Pending
            }
        }
    }
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if self.waiter.inner.lock().queued {
            // Lock order: the pool's state, then the waiter.
            let mut st = self.core.state.lock();
            let mut inner = self.waiter.inner.lock();
            if inner.queued {
                inner.queued = false;
                st.remove(&self.waiter, &self.core.gate);
            }
        }
        // Granted after the future stopped being polled: give it back.
        let grant = self.waiter.inner.lock().grant.take();
        match grant {
            Some(Grant::Session(s)) => self.core.checkin(s),
            Some(Grant::Create) => self.core.release_place(None),
            Some(Grant::Closed | Grant::TimedOut) | None => {}
        }
    }
}

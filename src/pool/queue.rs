//! The first-come-first-served waiters, kept under the pool's lock.
//!
//! Idle sessions exist only while nobody waits: a returned session or a freed place goes to
//! the first waiter. So taking an idle session never overtakes anyone.

use std::collections::VecDeque;
use std::sync::Arc;
use std::task::Waker;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use super::gate::Gate;
use super::sweeper::Sweeper;
use crate::session::Session;

/// What a waiter is given: its accounting is already done by the giver.
pub(crate) enum Grant {
    /// An idle session, now counted in use.
    Session(Session),
    /// A free place (counted open and in use): the waiter creates the session.
    Create,
    /// The pool closed.
    Closed,
    /// The deadline passed (set by the sweeper).
    TimedOut,
}

#[derive(Default)]
pub(crate) struct WaiterInner {
    pub(crate) grant: Option<Grant>,
    pub(crate) waker: Option<Waker>,
    pub(crate) queued: bool,
    /// The sweeper went away (its runtime shut down): re-arm one when polled.
    pub(crate) rearm: bool,
}

pub(crate) struct Waiter {
    pub(crate) inner: Mutex<WaiterInner>,
    /// When the sweeper fails this waiter with a timeout; `None` waits forever.
    pub(crate) deadline: Option<Instant>,
    /// The timeout asked for, for the error.
    pub(crate) timeout: Duration,
}

impl Waiter {
    pub(crate) fn queued(deadline: Option<Instant>, timeout: Duration) -> Arc<Waiter> {
        Arc::new(Waiter {
            inner: Mutex::new(WaiterInner {
                queued: true,
                ..WaiterInner::default()
            }),
            deadline,
            timeout,
        })
    }
}

/// What the pool's lock guards: the waiters and the tasks that serve them. Idle sessions
/// live in the lock-free queue beside it (see `gate.rs` for how the two agree).
pub(crate) struct State {
    pub(crate) waiters: VecDeque<Arc<Waiter>>,
    /// The task that times waiters out (see `sweeper.rs`).
    pub(crate) sweeper: Sweeper,
    /// Sessions back with an abandoned transaction, for the janitor to roll back (counted
    /// in use until then).
    pub(crate) dirty: Vec<Session>,
    /// The janitor task has been started.
    pub(crate) janitor: bool,
}

impl State {
    pub(crate) fn new() -> Self {
        State {
            waiters: VecDeque::new(),
            sweeper: Sweeper::default(),
            dirty: Vec::new(),
            janitor: false,
        }
    }

    /// Queues a waiter, counted in the gate.
    pub(crate) fn enqueue(&mut self, waiter: Arc<Waiter>, gate: &Gate) {
        self.waiters.push_back(waiter);
        gate.add_waiters(1);
    }

    /// Takes `waiter` out of the queue, if it is still there.
    pub(crate) fn remove(&mut self, waiter: &Arc<Waiter>, gate: &Gate) {
        let before = self.waiters.len();
        self.waiters.retain(|w| !Arc::ptr_eq(w, waiter));
        gate.remove_waiters(before - self.waiters.len());
    }

    /// Hands `grant` to the longest waiter; gives it back if nobody waits.
    pub(crate) fn grant_first(
        &mut self,
        grant: Grant,
        gate: &Gate,
    ) -> std::result::Result<Option<Waker>, Grant> {
        match self.waiters.pop_front() {
            Some(w) => {
                gate.remove_waiters(1);
                let mut inner = w.inner.lock();
                inner.queued = false;
                inner.grant = Some(grant);
                Ok(inner.waker.take())
            }
            None => Err(grant),
        }
    }

    /// Fails the waiters whose deadline passed; returns their wakers and the next deadline
    /// (the sweeper stands down when there is none).
    pub(crate) fn expire_waiters(
        &mut self,
        now: Instant,
        gate: &Gate,
    ) -> (Vec<Waker>, Option<Instant>) {
        let mut wakers = Vec::new();
        let mut next: Option<Instant> = None;
        let before = self.waiters.len();
        // Lock order: the pool's state, then each waiter.
        self.waiters.retain(|w| match w.deadline {
            Some(d) if d <= now => {
                let mut inner = w.inner.lock();
                inner.queued = false;
                inner.grant = Some(Grant::TimedOut);
                wakers.extend(inner.waker.take());
                false
            }
            Some(d) => {
                next = Some(next.map_or(d, |n| n.min(d)));
                true
            }
            None => true,
        });
        gate.remove_waiters(before - self.waiters.len());
        match next {
            Some(d) => self.sweeper.next = Some(d),
            None => self.sweeper.disarm(),
        }
        (wakers, next)
    }

    /// The sweeper stopped without finishing: waiters with a deadline are told to arm a new
    /// one; returns their wakers.
    pub(crate) fn sweeper_lost(&mut self) -> Vec<Waker> {
        self.sweeper.disarm();
        self.waiters
            .iter()
            .filter(|w| w.deadline.is_some())
            .filter_map(|w| {
                let mut inner = w.inner.lock();
                inner.rearm = true;
                inner.waker.take()
            })
            .collect()
    }
}

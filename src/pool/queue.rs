//! The idle queue and the first-come-first-served waiters, kept under the pool's one lock.
//!
//! Idle sessions exist only while nobody waits: a returned session or a freed place goes to
//! the first waiter. So taking an idle session never overtakes anyone.

use std::collections::VecDeque;
use std::sync::Arc;
use std::task::Waker;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

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

/// Everything the pool's lock guards.
pub(crate) struct State {
    pub(crate) idle: VecDeque<Session>,
    pub(crate) waiters: VecDeque<Arc<Waiter>>,
    /// The task that times waiters out (see `sweeper.rs`).
    pub(crate) sweeper: Sweeper,
    /// Sessions counted against `max_open`: idle, in use, or being created.
    pub(crate) open: usize,
    /// Places held outside the idle queue (checkouts, slots, grants).
    pub(crate) in_use: usize,
    /// The most `in_use` has been when a session was handed to a user.
    pub(crate) max_in_use: usize,
    pub(crate) closed: bool,
    /// Sessions handed out by `get` and given back by `put`: counted here, under the lock
    /// every checkout takes anyway, rather than with two more atomic operations.
    pub(crate) acquired: u64,
    pub(crate) released: u64,
    /// Sessions back with an abandoned transaction, for the janitor to roll back (counted
    /// in use until then).
    pub(crate) dirty: Vec<Session>,
    /// The janitor task has been started.
    pub(crate) janitor: bool,
    /// When a session of this pool was last found lost: idle sessions last used before
    /// then are checked before they are handed out (a restart or failover takes them all).
    pub(crate) lost_at: Option<coarsetime::Instant>,
}

impl State {
    pub(crate) fn new(idle_capacity: usize) -> Self {
        State {
            idle: VecDeque::with_capacity(idle_capacity.min(1024)),
            waiters: VecDeque::new(),
            sweeper: Sweeper::default(),
            open: 0,
            in_use: 0,
            max_in_use: 0,
            closed: false,
            acquired: 0,
            released: 0,
            dirty: Vec::new(),
            janitor: false,
            lost_at: None,
        }
    }

    /// Counts `n` more places in use.
    pub(crate) fn add_in_use(&mut self, n: usize) {
        self.in_use += n;
    }

    /// Counts a session handed to a user, keeping the high-water mark of places in use.
    pub(crate) fn count_acquired(&mut self) {
        self.acquired += 1;
        self.max_in_use = self.max_in_use.max(self.in_use);
    }

    /// True when `session` was last used before a sibling was found lost.
    pub(crate) fn suspect(&self, session: &Session) -> bool {
        self.lost_at
            .is_some_and(|lost| session.touched().is_some_and(|t| t <= lost))
    }

    /// Hands `grant` to the longest waiter; gives it back if nobody waits.
    pub(crate) fn grant_first(
        &mut self,
        grant: Grant,
    ) -> std::result::Result<Option<Waker>, Grant> {
        match self.waiters.pop_front() {
            Some(w) => {
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
    pub(crate) fn expire_waiters(&mut self, now: Instant) -> (Vec<Waker>, Option<Instant>) {
        let mut wakers = Vec::new();
        let mut next: Option<Instant> = None;
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

    /// Empties the idle queue and returns what was there (no longer counted).
    pub(crate) fn drain_idle(&mut self) -> Vec<Session> {
        let drained: Vec<Session> = self.idle.drain(..).collect();
        self.open -= drained.len();
        drained
    }
}

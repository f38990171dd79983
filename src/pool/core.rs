//! The machinery every pool strategy shares: idle sessions, first-come-first-served waiters,
//! and the count of open sessions, all under one short-held lock.
//!
//! Every counted place in a pool is owned by exactly one of: the idle queue, a waiter's
//! grant, a [`Slot`] (a session being handed out, checked or created), or a user's checkout.
//! Slots and waits are guards: dropping one (a cancelled future) gives its place back, so the
//! accounting survives cancellation at any await.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use super::checkout::LeakRegistry;
use super::sweeper::{self, Arm, Sweeper};
use super::{PoolStats, PutError};
use crate::database::Database;
use crate::error::{Error, Result};
use crate::session::{Session, SessionOptions};

/// Event counters, as Spanner's Go and Java clients export them.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) acquired: AtomicU64,
    pub(crate) released: AtomicU64,
    pub(crate) get_timeouts: AtomicU64,
    pub(crate) created: AtomicU64,
    pub(crate) deleted: AtomicU64,
    pub(crate) replaced: AtomicU64,
    pub(crate) pinged: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }
}

/// What a waiter is given: its accounting is already done by the giver.
enum Grant {
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
struct WaiterInner {
    grant: Option<Grant>,
    waker: Option<Waker>,
    queued: bool,
    /// The sweeper went away (its runtime shut down): re-arm one when polled.
    rearm: bool,
}

struct Waiter {
    inner: Mutex<WaiterInner>,
    /// When the sweeper fails this waiter with a timeout; `None` waits forever.
    deadline: Option<Instant>,
    /// The timeout asked for, for the error.
    timeout: Duration,
}

struct State {
    idle: VecDeque<Session>,
    waiters: VecDeque<Arc<Waiter>>,
    /// The task that times waiters out (see `sweeper.rs`).
    sweeper: Sweeper,
    /// Sessions counted against `max_open`: idle, in use, or being created.
    open: usize,
    /// Places held outside the idle queue (checkouts, slots, grants).
    in_use: usize,
    closed: bool,
}

impl State {
    /// Hands `grant` to the longest waiter; gives it back if nobody waits.
    fn grant_first(&mut self, grant: Grant) -> std::result::Result<Option<Waker>, Grant> {
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
}

/// The shared core of a pool.
pub(crate) struct Core {
    /// This core, for the sessions it creates to point home.
    me: Weak<Core>,
    pub(crate) max_open: usize,
    pub(crate) max_idle: usize,
    pub(crate) options: Arc<SessionOptions>,
    pub(crate) counters: Counters,
    pub(crate) leaks: Option<Arc<LeakRegistry>>,
    pub(crate) closed_notify: tokio::sync::Notify,
    /// Wakes the sweeper when a waiter with an earlier deadline arrives.
    sweep_notify: Arc<tokio::sync::Notify>,
    database: OnceLock<Database>,
    state: Mutex<State>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("database", &self.database.get().map(Database::name))
            .field("stats", &self.stats())
            .finish()
    }
}

impl Core {
    pub(crate) fn new(
        max_open: usize,
        max_idle: usize,
        options: SessionOptions,
        leaks: Option<Arc<LeakRegistry>>,
    ) -> Arc<Core> {
        Arc::new_cyclic(|me| Core {
            me: me.clone(),
            max_open,
            max_idle,
            options: Arc::new(options),
            counters: Counters::default(),
            leaks,
            closed_notify: tokio::sync::Notify::new(),
            sweep_notify: Arc::new(tokio::sync::Notify::new()),
            database: OnceLock::new(),
            state: Mutex::new(State {
                idle: VecDeque::with_capacity(max_idle.min(1024)),
                waiters: VecDeque::new(),
                sweeper: Sweeper::default(),
                open: 0,
                in_use: 0,
                closed: false,
            }),
        })
    }

    fn is_home_of(&self, session: &Session) -> bool {
        session
            .home
            .as_ref()
            .is_some_and(|w| std::ptr::eq(w.as_ptr(), self))
    }

    /// A leased session was dropped instead of returned: free its place.
    pub(crate) fn forget_leased(&self) {
        self.release_place(None);
    }

    /// Binds the database; binding again to the same database is a no-op.
    pub(crate) fn bind(&self, database: &Database) -> Result<()> {
        let bound = self.database.get_or_init(|| database.clone());
        if bound.name() != database.name() {
            return Err(Error::invalid(format!(
                "the pool is bound to {} already; it cannot serve {} too",
                bound.name(),
                database.name()
            )));
        }
        Ok(())
    }

    pub(crate) fn database(&self) -> Result<&Database> {
        self.database.get().ok_or(Error::NotBound)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.state.lock().closed
    }

    /// Takes an idle session or a free place, waiting up to `timeout` (None: forever) for one.
    pub(crate) async fn acquire(&self, timeout: Option<Duration>) -> Result<Slot<'_>> {
        self.database()?;
        let waiter = {
            let mut st = self.state.lock();
            if st.closed {
                return Err(Error::Closed);
            }
            // Idle sessions and free places exist only while nobody waits (a returned session
            // or a freed place goes to the first waiter), so taking one here overtakes nobody.
            if let Some(s) = st.idle.pop_front() {
                st.in_use += 1;
                return Ok(Slot::new(self, Some(s)));
            }
            if st.open < self.max_open {
                st.open += 1;
                st.in_use += 1;
                return Ok(Slot::new(self, None));
            }
            if timeout == Some(Duration::ZERO) {
                drop(st);
                Counters::add(&self.counters.get_timeouts, 1);
                return Err(Error::PoolTimeout {
                    timeout: Duration::ZERO,
                });
            }
            // No timer per waiter: one sweeper task per pool times waiters out, so a
            // contended checkout costs no timer-wheel insert and remove.
            let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
            let w = Arc::new(Waiter {
                inner: Mutex::new(WaiterInner {
                    queued: true,
                    ..WaiterInner::default()
                }),
                deadline,
                timeout: timeout.unwrap_or(Duration::MAX),
            });
            st.waiters.push_back(w.clone());
            let arm = deadline.map_or(Arm::Nothing, |d| st.sweeper.arm(d));
            drop(st);
            self.start_sweeper(arm);
            w
        };
        Wait { core: self, waiter }.await
    }

    /// The fast path of `get`: takes the idle session at the front of the queue under one
    /// lock, with no future in between. A session `due` does not flag is checked out at once;
    /// a due one comes back in a slot, to be checked without locking again.
    fn take_idle(&self, due: &impl Fn(&Session) -> bool) -> Idle<'_> {
        let mut st = self.state.lock();
        if st.closed {
            return Idle::Empty;
        }
        // Idle sessions exist only while nobody waits: taking one overtakes nobody.
        let Some(mut session) = st.idle.pop_front() else {
            return Idle::Empty;
        };
        st.in_use += 1;
        drop(st);
        if due(&session) {
            return Idle::Due(Slot::new(self, Some(session)));
        }
        self.lease(&mut session);
        Idle::Ready(session)
    }

    /// Marks a session handed to a user: dropping it instead of `put` frees its place.
    fn lease(&self, session: &mut Session) {
        session.leased = true;
        Counters::add(&self.counters.acquired, 1);
    }

    /// Spawns or wakes the sweeper, as [`Sweeper::arm`] decided.
    fn start_sweeper(&self, arm: Arm) {
        match arm {
            Arm::Nothing => {}
            Arm::Notify => self.sweep_notify.notify_one(),
            Arm::Spawn => match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    rt.spawn(sweeper::run(self.me.clone(), self.sweep_notify.clone()));
                }
                Err(_) => {
                    // Not on a tokio runtime: nothing could run timers anyway. Waiters
                    // then wait until served or cancelled; the next arm tries again.
                    self.state.lock().sweeper.disarm();
                    tracing::warn!(target: "session_pool::pool",
                        "no tokio runtime: pool wait timeouts cannot be enforced");
                }
            },
        }
    }

    /// The sweeper's round: fails the waiters whose deadline passed and returns the next
    /// deadline, or `None` (and the sweeper stands down) when no waiter has one.
    pub(super) fn expire_waiters(&self) -> Option<Instant> {
        let now = Instant::now();
        let mut wakers = Vec::new();
        let mut next: Option<Instant> = None;
        let mut st = self.state.lock();
        // Lock order: the pool's state, then each waiter.
        st.waiters.retain(|w| match w.deadline {
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
            Some(d) => st.sweeper.next = Some(d),
            None => st.sweeper.disarm(),
        }
        drop(st);
        if !wakers.is_empty() {
            Counters::add(&self.counters.get_timeouts, wakers.len() as u64);
        }
        for w in wakers {
            w.wake();
        }
        next
    }

    /// The sweeper stopped without finishing (its runtime shut down): waiters with a
    /// deadline are woken to arm a new one.
    pub(super) fn sweeper_lost(&self) {
        let mut st = self.state.lock();
        st.sweeper.disarm();
        let wakers: Vec<Waker> = st
            .waiters
            .iter()
            .filter(|w| w.deadline.is_some())
            .filter_map(|w| {
                let mut inner = w.inner.lock();
                inner.rearm = true;
                inner.waker.take()
            })
            .collect();
        drop(st);
        for w in wakers {
            w.wake();
        }
    }

    /// Takes the idle sessions at the front of the queue for which `due` holds (up to the
    /// first that does not), for checking.
    pub(crate) fn take_idle_while(&self, mut due: impl FnMut(&Session) -> bool) -> Vec<Slot<'_>> {
        let mut st = self.state.lock();
        let mut out = Vec::new();
        while st.idle.front().is_some_and(&mut due) {
            if let Some(s) = st.idle.pop_front() {
                st.in_use += 1;
                out.push(Slot::new(self, Some(s)));
            }
        }
        out
    }

    /// Reserves every free place (up to `max_open`), for creating sessions up front.
    pub(crate) fn reserve_missing(&self) -> Vec<Slot<'_>> {
        let mut st = self.state.lock();
        if st.closed {
            return Vec::new();
        }
        let n = self.max_open.saturating_sub(st.open);
        st.open += n;
        st.in_use += n;
        drop(st);
        (0..n).map(|_| Slot::new(self, None)).collect()
    }

    /// Creates a session with the pool's labels and role, marked as the pool's own.
    pub(crate) async fn create_session(&self) -> Result<Session> {
        let mut session = self.database()?.session_shared(self.options.clone());
        session.create().await?;
        session.home = Some(self.me.clone());
        Counters::add(&self.counters.created, 1);
        Ok(session)
    }

    /// Returns a session that the pool counts in use: to the first waiter, else to the idle
    /// queue; a broken session is dropped and its place freed.
    fn checkin(&self, session: Session) {
        if session.is_broken() {
            Counters::add(&self.counters.replaced, 1);
            tracing::debug!(target: "session_pool::pool", session = ?session.session_id(),
                "dropping a broken session; a new one will take its place");
            self.release_place(Some(session));
            return;
        }
        let mut st = self.state.lock();
        if st.closed {
            st.in_use -= 1;
            st.open -= 1;
            drop(st);
            Counters::add(&self.counters.deleted, 1);
            return; // dropped: a closed pool keeps nothing
        }
        if st.waiters.is_empty() {
            st.in_use -= 1;
            if st.idle.len() < self.max_idle {
                st.idle.push_back(session);
            } else {
                // Over the idle target (a bursty pool): dropping closes the connection
                // without awaiting anything.
                st.open -= 1;
                drop(st);
                drop(session);
                Counters::add(&self.counters.deleted, 1);
            }
            return;
        }
        // The first waiter takes it over as it is (still counted in use).
        let waker = st.grant_first(Grant::Session(session)).ok().flatten();
        drop(st);
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// `put`: a session handed back by a user.
    pub(crate) fn put(&self, mut session: Session) -> std::result::Result<(), PutError> {
        if !self.is_home_of(&session) {
            // Not one of ours: take it if there is room, as the Python pools do.
            let mut st = self.state.lock();
            if st.closed {
                return Err(PutError {
                    session,
                    error: Error::Closed,
                });
            }
            if !session.is_created() {
                drop(st);
                let error = Error::invalid("only created sessions can be put into a pool");
                return Err(PutError { session, error });
            }
            if st.open >= self.max_open || st.idle.len() >= self.max_idle {
                drop(st);
                return Err(PutError {
                    session,
                    error: Error::PoolFull {
                        size: self.max_open,
                    },
                });
            }
            st.open += 1;
            st.in_use += 1;
            drop(st);
            session.home = Some(self.me.clone());
        } else {
            session.leased = false;
            Counters::add(&self.counters.released, 1);
        }
        self.checkin(session);
        Ok(())
    }

    /// Frees a counted place (dropping its session, if any) and offers it to a waiter.
    fn release_place(&self, session: Option<Session>) {
        let mut st = self.state.lock();
        st.open -= 1;
        st.in_use -= 1;
        let mut waker = None;
        if !st.closed && st.open < self.max_open && !st.waiters.is_empty() {
            st.open += 1;
            st.in_use += 1;
            waker = st.grant_first(Grant::Create).ok().flatten();
        }
        drop(st);
        drop(session);
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Empties the idle queue and returns what was there (no longer counted).
    pub(crate) fn drain_idle(&self) -> Vec<Session> {
        let mut st = self.state.lock();
        let drained: Vec<Session> = st.idle.drain(..).collect();
        st.open -= drained.len();
        drained
    }

    /// Closes the pool: waiters get [`Error::Closed`]; returns the idle sessions to delete.
    pub(crate) fn close(&self) -> Vec<Session> {
        let mut st = self.state.lock();
        st.closed = true;
        let mut wakers = Vec::with_capacity(st.waiters.len());
        while let Ok(w) = st.grant_first(Grant::Closed) {
            wakers.extend(w);
        }
        let drained: Vec<Session> = st.idle.drain(..).collect();
        st.open -= drained.len();
        drop(st);
        for w in wakers {
            w.wake();
        }
        self.closed_notify.notify_waiters();
        drained
    }

    /// Deletes sessions the pool no longer holds, concurrently.
    pub(crate) async fn retire_all(&self, sessions: Vec<Session>) {
        let n = sessions.len() as u64;
        futures_util::future::join_all(sessions.into_iter().map(Session::retire)).await;
        Counters::add(&self.counters.deleted, n);
    }

    /// `clear`: deletes every idle session.
    pub(crate) async fn clear(&self) {
        let idle = self.drain_idle();
        self.retire_all(idle).await;
    }

    /// `close`: closes, then deletes the idle sessions.
    pub(crate) async fn close_and_retire(&self) {
        let idle = self.close();
        self.retire_all(idle).await;
    }

    /// `bind` for the fixed-size strategies: binds, then creates the missing sessions and
    /// returns the first error, if any (the sessions that were made stay).
    pub(crate) async fn bind_and_fill(&self, database: &Database) -> Result<()> {
        self.bind(database)?;
        match self.fill().await.1.into_iter().next() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    pub(crate) fn stats(&self) -> PoolStats {
        let st = self.state.lock();
        let c = &self.counters;
        PoolStats {
            open: st.open,
            in_use: st.in_use,
            idle: st.idle.len(),
            max_open: self.max_open,
            waiters: st.waiters.len(),
            acquired: c.acquired.load(Relaxed),
            released: c.released.load(Relaxed),
            get_timeouts: c.get_timeouts.load(Relaxed),
            created: c.created.load(Relaxed),
            deleted: c.deleted.load(Relaxed),
            replaced: c.replaced.load(Relaxed),
            pinged: c.pinged.load(Relaxed),
        }
    }
}

/// What [`Core::take_idle`] found at the front of the idle queue.
enum Idle<'c> {
    /// A session that needs no check, already checked out.
    Ready(Session),
    /// A session due for a check, held in a slot.
    Due(Slot<'c>),
    /// Nothing idle (or the pool is closed): take the slow path.
    Empty,
}

/// A counted place held outside the idle queue: a session being handed out or checked, or
/// a reservation to create one. Dropped while armed, it frees the place.
pub(crate) struct Slot<'c> {
    core: &'c Core,
    session: Option<Session>,
    armed: bool,
}

impl<'c> Slot<'c> {
    fn new(core: &'c Core, session: Option<Session>) -> Self {
        Slot {
            core,
            session,
            armed: true,
        }
    }

    pub(crate) fn session_mut(&mut self) -> Option<&mut Session> {
        self.session.as_mut()
    }

    /// Drops the session as dead, keeping the place (to create a replacement in it).
    pub(crate) fn discard_dead(&mut self) {
        if let Some(s) = self.session.take() {
            Counters::add(&self.core.counters.replaced, 1);
            tracing::info!(target: "session_pool::pool", session = ?s.session_id(),
                "session is gone on the server; replacing it");
        }
    }

    /// Fills the place with a new session if it is empty.
    pub(crate) async fn ensure_session(&mut self) -> Result<()> {
        if self.session.is_none() {
            self.session = Some(self.core.create_session().await?);
        }
        Ok(())
    }

    /// Hands the session to the caller, who now holds the place (returned by `put`).
    pub(crate) fn checkout(mut self) -> Result<Session> {
        let mut session = self.session.take().ok_or(Error::NotCreated)?;
        self.armed = false;
        self.core.lease(&mut session);
        Ok(session)
    }

    /// Returns the session to the pool (after a ping); an empty place is freed.
    pub(crate) fn checkin(mut self) {
        self.armed = false;
        match self.session.take() {
            Some(s) => self.core.checkin(s),
            None => self.core.release_place(None),
        }
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if self.armed {
            // Cut off mid-check or mid-create: the session's state is unknown, so it is
            // dropped (no I/O awaited) and the place freed for a new one.
            self.core.release_place(self.session.take());
        }
    }
}

/// A queued `acquire`; dropping it (timeout, cancellation) leaves the queue and gives back
/// anything granted meanwhile.
struct Wait<'c> {
    core: &'c Core,
    waiter: Arc<Waiter>,
}

impl<'c> Future for Wait<'c> {
    type Output = Result<Slot<'c>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut inner = self.waiter.inner.lock();
        match inner.grant.take() {
            Some(Grant::Session(s)) => Poll::Ready(Ok(Slot::new(self.core, Some(s)))),
            Some(Grant::Create) => Poll::Ready(Ok(Slot::new(self.core, None))),
            Some(Grant::Closed) => Poll::Ready(Err(Error::Closed)),
            Some(Grant::TimedOut) => Poll::Ready(Err(Error::PoolTimeout {
                timeout: self.waiter.timeout,
            })),
            None => {
                match &mut inner.waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    slot => *slot = Some(cx.waker().clone()),
                }
                let rearm = std::mem::take(&mut inner.rearm);
                drop(inner);
                if rearm && let Some(d) = self.waiter.deadline {
                    let arm = self.core.state.lock().sweeper.arm(d);
                    self.core.start_sweeper(arm);
                }
                Poll::Pending
            }
        }
    }
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        if self.waiter.inner.lock().queued {
            // Lock order: the pool's state, then the waiter.
            let mut st = self.core.state.lock();
            let mut inner = self.waiter.inner.lock();
            if inner.queued {
                inner.queued = false;
                st.waiters.retain(|w| !Arc::ptr_eq(w, &self.waiter));
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

/// How a ping round checks a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Probe {
    /// `Session::exists()`: one cheap round trip.
    Exists,
    /// `Session::ping()`: `SELECT 1`, which also resets server-side idle timers.
    Ping,
}

impl Core {
    /// `get` for every strategy: takes a session (or a place), checks the session with
    /// `exists()` when `due` says so, replaces it if it is gone, creates one if needed.
    pub(crate) async fn get_checked(
        &self,
        timeout: Option<Duration>,
        due: impl Fn(&Session) -> bool,
    ) -> Result<Session> {
        let (mut slot, check) = match self.take_idle(&due) {
            Idle::Ready(session) => return Ok(session),
            Idle::Due(slot) => (slot, true),
            Idle::Empty => {
                let mut slot = self.acquire(timeout).await?;
                let check = slot.session_mut().is_some_and(|s| due(s));
                (slot, check)
            }
        };
        if check
            && let Some(s) = slot.session_mut()
            && !s.exists().await.unwrap_or(false)
        {
            slot.discard_dead();
        }
        slot.ensure_session().await?;
        slot.checkout()
    }

    /// One maintenance round: probes the idle sessions at the front of the queue for which
    /// `due` holds, replaces the dead ones, and (with `top_up`) recreates missing sessions.
    pub(crate) async fn ping_round(
        &self,
        due: impl FnMut(&Session) -> bool,
        probe: Probe,
        top_up: bool,
    ) -> super::PingReport {
        use futures_util::future::join_all;
        let mut report = super::PingReport::default();
        let outcomes = join_all(
            self.take_idle_while(due)
                .into_iter()
                .map(|slot| self.probe(slot, probe)),
        )
        .await;
        for outcome in outcomes {
            match outcome {
                Outcome::Alive => report.pinged += 1,
                Outcome::Replaced => report.replaced += 1,
                Outcome::Failed => report.failed += 1,
            }
        }
        if top_up && !self.is_closed() {
            let (made, errors) = self.fill().await;
            report.topped_up = made;
            report.failed += errors.len();
            if let Some(e) = errors.first() {
                tracing::warn!(target: "session_pool::pool", error = %e, failed = errors.len(),
                    "could not create sessions to refill the pool");
            }
        }
        Counters::add(&self.counters.pinged, report.pinged as u64);
        if report != super::PingReport::default() {
            tracing::debug!(target: "session_pool::ping", pinged = report.pinged,
                replaced = report.replaced, topped_up = report.topped_up, failed = report.failed,
                "ping round");
        }
        if let Some(leaks) = &self.leaks {
            leaks.check();
        }
        report
    }

    /// Creates every missing session (up to `max_open`) concurrently; returns how many were
    /// made and the errors of those that were not.
    pub(crate) async fn fill(&self) -> (usize, Vec<Error>) {
        let slots = self.reserve_missing();
        let results =
            futures_util::future::join_all(slots.into_iter().map(|mut slot| async move {
                slot.ensure_session().await?;
                slot.checkin();
                Ok::<_, Error>(())
            }))
            .await;
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

    pub(crate) fn track_checkout(&self, session: &Session) -> Option<super::CheckoutTracker> {
        self.leaks.as_ref().map(|l| l.track(session.session_id()))
    }

    async fn probe(&self, mut slot: Slot<'_>, probe: Probe) -> Outcome {
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

enum Outcome {
    Alive,
    Replaced,
    Failed,
}

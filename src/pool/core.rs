//! The machinery every pool strategy shares: idle sessions in a lock-free queue,
//! first-come-first-served waiters under a short-held lock, and the count of open sessions.
//! A checkout or a checkin that overtakes nobody touches no lock (see `gate.rs`).
//!
//! Every counted place in a pool is owned by exactly one of: the idle queue, a waiter's
//! grant, a [`Slot`] (a session being handed out, checked or created), or a user's lease
//! ([`PooledSession`](super::PooledSession), or a checkout). Slots, leases and waits are guards: dropping one (a cancelled
//! future) gives its place back, so the accounting survives cancellation at any await.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, OnceLock, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crossbeam_queue::ArrayQueue;
use parking_lot::Mutex;
use tokio::time::Instant;

use super::gate::Gate;
use super::janitor;
use super::leak::{CheckoutTracker, LeakRegistry};
use super::ledger::Ledger;
use super::metrics::{Counters, Export, Stopwatch};
use super::queue::{Grant, State, Waiter};
use super::slot::{Places, Slot};
use super::stats::PoolStats;
use super::sweeper::{self, Arm};
use super::timer_thread::{self, Expire};
use crate::database::Database;
use crate::error::{Error, Result};
use crate::session::{Session, SessionOptions};

/// How a ping round checks a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Probe {
    /// `Session::exists()`: one cheap round trip.
    Exists,
    /// `Session::ping()`: `SELECT 1`, which also resets server-side idle timers.
    Ping,
}

/// What makes one strategy differ from another: plain data, so one core serves them all.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rules {
    /// Most sessions open (idle, in use, being created).
    pub(crate) max_open: usize,
    /// Most sessions kept idle; more returned at once are dropped.
    pub(crate) max_idle: usize,
    /// How long `get` waits when called without a timeout; `None` waits until served.
    pub(crate) default_timeout: Option<Duration>,
    /// A session idle at least this long is checked before it is handed out, and by a ping
    /// round (zero: every time).
    pub(crate) check_after: Duration,
    /// How a ping round checks.
    pub(crate) probe: Probe,
    /// `bind` and ping rounds create sessions up to `max_open`.
    pub(crate) fill: bool,
    /// How sessions are made, reset and retired.
    pub(crate) life: Lifecycle,
}

/// How a pool's sessions are made, reset and retired (Spanner Go/Java, asyncpg).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Lifecycle {
    /// Sessions users give back are reset before their next use.
    pub(crate) reset_on_release: bool,
    /// An idle session idle this long is closed (and, where the pool fills, replaced).
    pub(crate) max_idle_lifetime: Option<Duration>,
    /// A session checked out this many times is closed when it comes back.
    pub(crate) max_uses: Option<u64>,
    /// How many sessions are created at once when filling (0: all that are missing).
    pub(crate) create_step: usize,
    /// Idle sessions kept ready (a bursty pool's floor).
    pub(crate) min_idle: usize,
}

impl Lifecycle {
    /// How often the janitor must look at the pool for these rules (none: only on work).
    pub(crate) fn tick(&self) -> Option<Duration> {
        let idle = self
            .max_idle_lifetime
            .map(|l| (l / 2).clamp(Duration::from_millis(10), Duration::from_secs(30)));
        let floor = (self.min_idle > 0).then_some(Duration::from_secs(1));
        idle.into_iter().chain(floor).min()
    }
}

/// The shared core of a pool.
pub struct Core {
    /// This core, for the entries of the sessions it creates.
    me: Weak<Core>,
    pub(crate) rules: Rules,
    pub(crate) options: Arc<SessionOptions>,
    pub(crate) counters: Counters,
    pub(crate) leaks: Option<Arc<LeakRegistry>>,
    pub(crate) closed_notify: tokio::sync::Notify,
    /// Wakes the sweeper when a waiter with an earlier deadline arrives.
    sweep_notify: Arc<tokio::sync::Notify>,
    /// Wakes the janitor (see `janitor.rs`): work for it, or this core dropped.
    janitor_notify: Arc<tokio::sync::Notify>,
    /// Held while sessions are created to fill the pool, so that two fills (bind, a ping
    /// round, the janitor) do not both create the same missing sessions.
    pub(crate) fill_lock: tokio::sync::Mutex<()>,
    database: OnceLock<Database>,
    /// Whether anyone waits or the pool is closed, read without the lock.
    gate: Gate,
    /// Idle sessions, least recently returned first: taken and given back without a lock
    /// while the gate is clear.
    idle: ArrayQueue<Session>,
    /// Sessions counted against `max_open`: idle, in use, or being created. Changed only
    /// under the lock; read without it. The sessions in use are `open` minus the idle ones.
    open: AtomicUsize,
    /// The most sessions in use when one was handed to a user.
    max_in_use: AtomicUsize,
    /// When a session of this pool was last found lost, in coarse ticks after `epoch`, plus
    /// one (0: never): idle sessions last used before then are checked before they are
    /// handed out (a restart or failover takes them all).
    lost_at: AtomicU64,
    epoch: coarsetime::Instant,
    /// The checkout counts of the pool's sessions.
    ledger: Ledger,
    /// The waiters and the background tasks' bookkeeping.
    pub(crate) state: Mutex<State>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("database", &self.database.get().map(Database::name))
            .field("stats", &self.stats())
            .finish()
    }
}

/// The rest of a `get` that the fast path could not serve.
pub(crate) struct Slow<'c> {
    core: &'c Arc<Core>,
    idle: Idle<'c>,
    /// When the checkout began, for the due check.
    now: coarsetime::Instant,
}

impl Slow<'_> {
    /// Waits for a session or a place, then checks a due session or creates one. Waiting
    /// runs inline (a small future), and a session handed over that needs no check goes
    /// out at once; checking and creating are boxed, because their state machine (connect
    /// and check futures) is large and would make every checkout future large too.
    pub(crate) async fn run(self, timeout: Option<Duration>) -> Result<Leased> {
        let Slow { core, idle, now } = self;
        let timeout = timeout.or(core.rules.default_timeout);
        // One clock read bounds all of it: the wait, then any check or creation.
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let due = core.due(now);
        let slot = match idle {
            Idle::Ready(leased) => return Ok(leased),
            Idle::Due(slot) => slot,
            Idle::Empty => {
                let mut slot = core.acquire(timeout, deadline).await?;
                if slot
                    .session_mut()
                    .is_some_and(|s| !due(s) && !core.suspect(s))
                {
                    return slot.checkout();
                }
                slot
            }
        };
        let span = match core.database.get() {
            Some(db) => crate::telemetry::session_op(db.telemetry(), "checkout"),
            None => tracing::Span::none(),
        };
        crate::telemetry::traced(span, Box::pin(core.ready(slot, timeout, deadline))).await
    }
}

/// A session handed to a user, with the handle on its pool that holds its place.
pub(crate) type Leased = (Session, Arc<Core>);

/// What [`Core::take_idle`] found at the front of the idle queue.
enum Idle<'c> {
    /// A session that needs no check, already checked out.
    Ready(Leased),
    /// A session due for a check, held in a slot.
    Due(Slot<'c, Core>),
    /// Nothing idle (or the pool is closed): take the slow path.
    Empty,
}

impl Core {
    pub(crate) fn new(
        rules: Rules,
        options: SessionOptions,
        leaks: Option<Arc<LeakRegistry>>,
        export: Export,
    ) -> Arc<Core> {
        Arc::new_cyclic(|me| Core {
            me: me.clone(),
            rules,
            options: Arc::new(options),
            counters: Counters::new(export),
            leaks,
            closed_notify: tokio::sync::Notify::new(),
            sweep_notify: Arc::new(tokio::sync::Notify::new()),
            janitor_notify: Arc::new(tokio::sync::Notify::new()),
            fill_lock: tokio::sync::Mutex::new(()),
            database: OnceLock::new(),
            gate: Gate::default(),
            idle: ArrayQueue::new(rules.max_idle.max(1)),
            open: AtomicUsize::new(0),
            max_in_use: AtomicUsize::new(0),
            lost_at: AtomicU64::new(0),
            epoch: coarsetime::Instant::now_without_cache_update(),
            ledger: Ledger::default(),
            state: Mutex::new(State::new()),
        })
    }

    /// True when a session idle since its last use is due a check as of `now`.
    pub(crate) fn due(&self, now: coarsetime::Instant) -> impl Fn(&Session) -> bool + use<> {
        let after = self.rules.check_after;
        move |s| s.idle_for(now).is_some_and(|idle| idle >= after)
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
        self.gate.is_closed()
    }

    /// True when `session` was last used before a sibling was found lost.
    fn suspect(&self, session: &Session) -> bool {
        let lost = self.lost_at.load(Relaxed);
        lost != 0
            && session.touched().is_some_and(|touched| {
                self.epoch
                    .checked_add(coarsetime::Duration::from_ticks(lost - 1))
                    .is_some_and(|lost| touched <= lost)
            })
    }

    /// Notes that a session of this pool was found lost: its siblings idle since are
    /// suspect.
    fn mark_lost(&self) {
        let now = coarsetime::Instant::now_without_cache_update();
        let ticks = if now > self.epoch {
            now.duration_since(self.epoch).as_ticks()
        } else {
            0
        };
        self.lost_at.fetch_max(ticks + 1, Relaxed);
    }

    /// Counts a session handed to a user, keeping the high-water mark of sessions in use.
    fn count_handout(&self, session: &mut Session) {
        session.count_acquired();
        // In use is at most open: once the mark reached every open session (any pool that
        // has been busy), the idle queue's length, two words other threads keep writing,
        // need not be read.
        let open = self.open.load(Relaxed);
        let max = self.max_in_use.load(Relaxed);
        if open > max {
            let in_use = open.saturating_sub(self.idle.len());
            if in_use > max {
                self.max_in_use.fetch_max(in_use, Relaxed);
            }
        }
        if cfg!(feature = "metrics") {
            session.checked_out(Stopwatch::start());
        }
    }

    /// `get` for every strategy: takes a session (or a place), checks the session with
    /// `exists()` when it is due, replaces it if it is gone, creates one if needed.
    ///
    /// The common cases, an idle session that needs no check and a wait for one, are served
    /// inline; checks and creation are boxed (see [`Slow::run`]).
    pub(crate) async fn get(self: &Arc<Self>, timeout: Option<Duration>) -> Result<Leased> {
        match self.try_ready() {
            Ok(session) => Ok(session),
            Err(slow) => slow.run(timeout).await,
        }
    }

    /// The fast path of `get`, with no future: an idle session that needs no check, or
    /// what the slow path needs to go on.
    pub(crate) fn try_ready(self: &Arc<Self>) -> std::result::Result<Leased, Slow<'_>> {
        let now = coarsetime::Instant::now_without_cache_update();
        match self.take_idle(&self.due(now)) {
            Idle::Ready(session) => Ok(session),
            idle => Err(Slow {
                core: self,
                idle,
                now,
            }),
        }
    }

    /// The rest of `get` once a place is held: check its session (which is due), or
    /// create one. The deadline bounds it, as it bounded the wait.
    async fn ready(
        self: &Arc<Self>,
        mut slot: Slot<'_, Core>,
        timeout: Option<Duration>,
        deadline: Option<Instant>,
    ) -> Result<Leased> {
        let check = slot.session_mut().is_some();
        let ready = async {
            if check
                && let Some(s) = slot.session_mut()
                && !s.exists().await.unwrap_or(false)
            {
                slot.discard_dead();
            }
            slot.ensure_session().await
        };
        match deadline {
            None => ready.await?,
            Some(deadline) => match tokio::time::timeout_at(deadline, ready).await {
                Ok(res) => res?,
                Err(_) => {
                    // The slot drops with this frame: the place is freed, and a session cut
                    // off mid-check is closed rather than handed out.
                    self.counters.add_get_timeouts(1);
                    return Err(Error::PoolTimeout {
                        timeout: timeout.unwrap_or_default(),
                    });
                }
            },
        }
        slot.checkout()
    }

    /// The fast path of `get`: takes the idle session at the front of the queue, with no
    /// lock and no future. A session `due` does not flag is checked out at once; a due one
    /// comes back in a slot, to be checked.
    fn take_idle(self: &Arc<Self>, due: &impl Fn(&Session) -> bool) -> Idle<'_> {
        // Someone waits (they come first) or the pool is closed: the slow path.
        if !self.gate.is_clear() {
            return Idle::Empty;
        }
        // The lease's handle, taken before the queue's writes: a locked instruction costs
        // least with no stores pending.
        let home = Arc::clone(self);
        let Some(mut session) = self.idle.pop() else {
            return Idle::Empty;
        };
        if due(&session) || self.suspect(&session) {
            return Idle::Due(Slot::new(self, Some(session)));
        }
        self.count_handout(&mut session);
        Idle::Ready((session, home))
    }

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
    fn hand_idle_to_waiters(&self, st: &mut State) -> Vec<Waker> {
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

    /// Puts back a session nobody took (under the lock, with nobody waiting).
    fn requeue(&self, grant: Grant) {
        if let Grant::Session(session) = grant
            && let Err(session) = self.idle.push(session)
        {
            self.open.fetch_sub(1, Relaxed);
            drop(session);
            self.counters.add_deleted(1);
        }
    }

    /// A checkin pushed a session as a waiter came or the pool closed: the idle sessions go
    /// to the waiters, or are closed.
    fn settle(&self) {
        let mut st = self.state.lock();
        if self.gate.is_closed() {
            let drained = self.drain_idle(&mut st);
            drop(st);
            self.counters.add_deleted(drained.len() as u64);
            return;
        }
        let wakers = self.hand_idle_to_waiters(&mut st);
        drop(st);
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Empties the idle queue (under the lock, which `open` needs) and returns what was there,
    /// no longer counted.
    fn drain_idle(&self, _locked: &mut State) -> Vec<Session> {
        let drained: Vec<Session> = std::iter::from_fn(|| self.idle.pop()).collect();
        self.open.fetch_sub(drained.len(), Relaxed);
        drained
    }

    /// Spawns or wakes the sweeper (a task on a current-thread runtime, the process's timer
    /// thread otherwise), as [`Sweeper::arm`](super::sweeper::Sweeper::arm) decided.
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

    /// Reserves the places to fill, for creating sessions up front: every free place (up
    /// to `max_open`) where the pool fills, enough for `min_idle` idle sessions otherwise.
    pub(crate) fn reserve_missing(self: &Arc<Self>) -> Vec<Slot<'_, Core>> {
        let st = self.state.lock();
        if self.gate.is_closed() {
            return Vec::new();
        }
        let free = self.rules.max_open.saturating_sub(self.open.load(Relaxed));
        let n = if self.rules.fill {
            free
        } else {
            self.rules
                .life
                .min_idle
                .saturating_sub(self.idle.len())
                .min(free)
        };
        self.open.fetch_add(n, Relaxed);
        drop(st);
        (0..n).map(|_| Slot::new(self, None)).collect()
    }

    /// [`checkin`](Core::checkin), counting the session as released by a user when
    /// `released` says so. The common case, a healthy session and nobody waiting, is
    /// inline: every call that moved the session on cost the checkin another copy of it.
    #[inline]
    fn checkin_counted(&self, mut session: Session, released: bool) {
        if released {
            session.count_released();
        }
        if session.is_broken() || session.needs_settling() || !self.gate.is_clear() {
            self.checkin_other(session);
            return;
        }
        self.push_idle(session);
    }

    /// Nobody waits: straight to the idle queue, no lock. A waiter or a close that came
    /// meanwhile is seen after the push (see `gate.rs`).
    #[inline]
    fn push_idle(&self, session: Session) {
        match self.idle.push(session) {
            Ok(()) => {
                if !self.gate.is_clear_after_push() {
                    self.settle();
                }
            }
            Err(session) => {
                // Over the idle target (a bursty pool): dropping closes the connection
                // without awaiting anything.
                self.counters.add_deleted(1);
                self.release_place(Some(session));
            }
        }
    }

    /// The rest of a checkin: a broken session, a cut-off statement or transaction, or someone
    /// waiting (or the pool closed).
    #[inline(never)]
    fn checkin_other(&self, session: Session) {
        if session.is_broken() {
            self.mark_lost();
            self.counters.add_replaced(1);
            tracing::debug!(target: "session_pool::pool", session = ?session.session_id(),
                "dropping a broken session; a new one will take its place");
            self.release_place(Some(session));
            return;
        }
        if session.needs_settling()
            && !self.gate.is_closed()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            // A cut-off statement or an abandoned transaction: the janitor stops and rolls
            // it back now, so its locks do not wait for the session's next use, and the
            // next user does not wait for the statement. Still counted in use until then.
            // (With no runtime to do it on, the next use does it.)
            let mut st = self.state.lock();
            st.dirty.push(session);
            let start = !std::mem::replace(&mut st.janitor, true);
            drop(st);
            self.wake_janitor(start.then_some(rt));
            return;
        }
        if self.gate.is_clear() {
            self.push_idle(session);
            return;
        }
        let mut st = self.state.lock();
        if self.gate.is_closed() {
            self.open.fetch_sub(1, Relaxed);
            drop(st);
            drop(session);
            self.counters.add_deleted(1);
            return; // dropped: a closed pool keeps nothing
        }
        // The first waiter takes it over as it is (still counted in use).
        match st.grant_first(Grant::Session(session), &self.gate) {
            Ok(waker) => {
                drop(st);
                waker.into_iter().for_each(Waker::wake);
            }
            // The waiters left meanwhile.
            Err(grant) => self.requeue(grant),
        }
    }

    /// A leased session coming home from its checkout guard.
    #[inline]
    pub(crate) fn return_leased(&self, mut session: Session) {
        if cfg!(feature = "metrics")
            && let Some(watch) = session.checkout_watch()
        {
            self.counters.export.use_time(watch);
        }
        let life = &self.rules.life;
        if let Some(max) = life.max_uses
            && session.count_use() >= max
        {
            // Worn out: closed without awaiting anything; the pool makes a new one when it
            // needs it.
            session.count_released();
            self.counters.add_deleted(1);
            tracing::debug!(target: "session_pool::pool", session = ?session.session_id(),
                uses = max, "session reached its maximum uses; closing it");
            self.release_place(Some(session));
            return;
        }
        if life.reset_on_release {
            session.reset_before_next_use();
        }
        self.checkin_counted(session, true);
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

    /// Places freed without `release_place` (sessions retired from the idle queue) are
    /// offered to waiters.
    fn wake_waiters_for_free_places(&self) {
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

    /// Takes a session that is not one of ours, if there is room, as the Python pools do;
    /// otherwise hands it back with the reason.
    // A refused session is handed back whole, as std's `SendError` does.
    #[allow(clippy::result_large_err)]
    pub(crate) fn adopt(&self, mut session: Session) -> std::result::Result<(), (Session, Error)> {
        let st = self.state.lock();
        if self.gate.is_closed() {
            drop(st);
            return Err((session, Error::Closed));
        }
        if !session.is_created() {
            drop(st);
            let error = Error::invalid("only created sessions can be put into a pool");
            return Err((session, error));
        }
        if self.open.load(Relaxed) >= self.rules.max_open || self.idle.len() >= self.rules.max_idle
        {
            drop(st);
            let size = self.rules.max_open;
            return Err((session, Error::PoolFull { size }));
        }
        self.open.fetch_add(1, Relaxed);
        drop(st);
        // Its checkouts count here from now on.
        if let Some(tally) = session.fresh_tally() {
            self.ledger.register(Arc::clone(tally));
        }
        self.checkin(session);
        Ok(())
    }

    /// Closes the pool: waiters get [`Error::Closed`]; returns the idle sessions to delete.
    pub(crate) fn close(&self) -> Vec<Session> {
        let mut st = self.state.lock();
        self.gate.close();
        let mut wakers = Vec::with_capacity(st.waiters.len());
        while let Ok(w) = st.grant_first(Grant::Closed, &self.gate) {
            wakers.extend(w);
        }
        let drained = self.drain_idle(&mut st);
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
        self.counters.add_deleted(n);
    }

    /// `clear`: deletes every idle session.
    pub(crate) async fn clear(&self) {
        let idle = self.drain_idle(&mut self.state.lock());
        self.retire_all(idle).await;
    }

    /// `close`: closes, then deletes the idle sessions.
    pub(crate) async fn close_and_retire(&self) {
        let idle = self.close();
        self.retire_all(idle).await;
    }

    /// `bind`: binds, then creates the missing sessions (all of them for strategies that
    /// fill, `min_idle` for the others), `create_step` at a time. All or nothing: if one cannot be created, those that were are closed again, so a failed
    /// start holds no connections that other processes may need; the first error is
    /// returned.
    pub(crate) async fn bind_and_fill(self: &Arc<Self>, database: &Database) -> Result<()> {
        self.bind(database)?;
        let _filling = self.fill_lock.lock().await;
        let slots = self.reserve_missing();
        let mut created = Vec::with_capacity(slots.len());
        for chunk in chunks(slots, self.rules.life.create_step) {
            created.extend(
                futures_util::future::join_all(
                    chunk
                        .into_iter()
                        .map(|mut slot| async move { slot.ensure_session().await.map(|()| slot) }),
                )
                .await,
            );
        }
        let (made, failed): (Vec<_>, Vec<_>) = created.into_iter().partition(Result::is_ok);
        match failed.into_iter().find_map(Result::err) {
            None => {
                made.into_iter().flatten().for_each(Slot::checkin);
                self.start_ticking();
                Ok(())
            }
            Some(e) => {
                let n = made.len();
                let sessions: Vec<Session> = made
                    .into_iter()
                    .flatten()
                    .filter_map(Slot::release)
                    .collect();
                self.retire_all(sessions).await;
                tracing::warn!(target: "session_pool::pool", error = %e, closed = n,
                    "could not create every session of the pool; closed those that were");
                Err(e)
            }
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
    fn start_ticking(&self) {
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
            .chain(super::metrics::SAMPLE_EVERY)
            .min()
    }

    /// Starts the janitor on `start`'s runtime, or wakes the running one.
    fn wake_janitor(&self, start: Option<tokio::runtime::Handle>) {
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
    /// locks go; the holder then meets [`Error::SessionNotFound`] and the pool replaces
    /// the session when it comes back.
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

    pub(crate) fn stats(&self) -> PoolStats {
        let waiters = self.state.lock().waiters.len();
        let (acquired, released) = self.ledger.totals();
        let open = self.open.load(Relaxed);
        let idle = self.idle.len();
        let c = &self.counters;
        PoolStats {
            open,
            in_use: open.saturating_sub(idle),
            max_in_use: self.max_in_use.load(Relaxed),
            idle,
            max_open: self.rules.max_open,
            waiters,
            acquired,
            released,
            get_timeouts: c.get_timeouts.load(Relaxed),
            created: c.created.load(Relaxed),
            deleted: c.deleted.load(Relaxed),
            replaced: c.replaced.load(Relaxed),
            pinged: c.pinged.load(Relaxed),
        }
    }
}

impl Expire for Core {
    fn expire(&self) -> Option<Instant> {
        self.expire_waiters()
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        // Ends the janitor, which holds only a weak handle. No I/O.
        self.janitor_notify.notify_one();
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

impl Places for Core {
    /// Returns a session that the pool counts in use: to the first waiter, else to the idle
    /// queue; a broken session is dropped and its place freed.
    fn checkin(&self, session: Session) {
        self.checkin_counted(session, false);
    }

    /// Frees a counted place (dropping its session, if any) and offers it to a waiter.
    fn release_place(&self, session: Option<Session>) {
        let mut st = self.state.lock();
        self.open.fetch_sub(1, Relaxed);
        let mut waker = None;
        if !self.gate.is_closed()
            && self.open.load(Relaxed) < self.rules.max_open
            && !st.waiters.is_empty()
        {
            self.open.fetch_add(1, Relaxed);
            waker = st.grant_first(Grant::Create, &self.gate).ok().flatten();
        }
        drop(st);
        drop(session);
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Creates a session with the pool's labels and role.
    async fn create_session(&self) -> Result<Session> {
        let mut session = Session::new(self.database()?.clone(), self.options.clone());
        let watch = Stopwatch::start();
        session.create().await?;
        if let Some(tally) = session.tally() {
            self.ledger.register(Arc::clone(tally));
        }
        self.counters.export.create_time(watch);
        self.counters.add_created(1);
        Ok(session)
    }

    fn count_replaced(&self, dead: &Session) {
        self.mark_lost();
        self.counters.add_replaced(1);
        tracing::info!(target: "session_pool::pool", session = ?dead.session_id(),
            "session is gone on the server; replacing it");
    }

    fn count_acquired(&self, session: &mut Session) {
        self.count_handout(session);
    }
}

/// `items` in groups of `step` (one group when `step` is 0).
pub(crate) fn chunks<T>(items: Vec<T>, step: usize) -> Vec<Vec<T>> {
    if step == 0 || items.len() <= step {
        return vec![items];
    }
    let mut out = Vec::new();
    let mut items = items.into_iter().peekable();
    while items.peek().is_some() {
        out.push(items.by_ref().take(step).collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::chunks;

    #[test]
    fn chunks_split_in_steps() {
        assert_eq!(
            chunks(vec![1, 2, 3, 4, 5], 2),
            vec![vec![1, 2], vec![3, 4], vec![5]]
        );
        assert_eq!(chunks(vec![1, 2, 3], 0), vec![vec![1, 2, 3]]);
        assert_eq!(chunks(Vec::<u8>::new(), 2), vec![Vec::<u8>::new()]);
    }
}

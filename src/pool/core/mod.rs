//! The machinery every pool strategy shares: idle sessions in a lock-free queue,
//! first-come-first-served waiters under a short-held lock, and the count of open sessions.
//! A checkout or a checkin that overtakes nobody touches no lock (see `gate.rs`).
//!
//! Every counted place in a pool is owned by exactly one of: the idle queue, a waiter's
//! grant, a [`Slot`](super::slot::Slot) (a session being handed out, checked or created),
//! or a user's lease ([`PooledSession`](super::PooledSession), or a checkout). Slots, leases
//! and waits are guards: dropping one (a cancelled future) gives its place back, so the
//! accounting survives cancellation at any await.
//!
//! This file holds the core's state and its counts; the rest is one file per path: `get.rs`
//! (a checkout), `wait.rs` (queueing for a session, and timing out), `checkin.rs` (a
//! session coming back), `open_close.rs` (filling, clearing and closing) and `upkeep.rs`
//! (the janitor's rounds).

use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use crossbeam_queue::ArrayQueue;
use parking_lot::Mutex;

use super::gate::Gate;
use super::leak::LeakRegistry;
use super::ledger::Ledger;
use super::metrics::{Counters, Export, Stopwatch};
use super::queue::{Grant, State};
use super::slot::Places;
use super::stats::PoolStats;
use crate::database::Database;
use crate::error::{Error, Result};
use crate::session::{Session, SessionOptions};

mod checkin;
mod get;
mod open_close;
mod upkeep;
mod wait;

pub(crate) use get::Slow;
pub(crate) use open_close::chunks;

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
    /// A session older than this (less its spread) is closed when it comes back.
    pub(crate) max_lifetime: Option<Duration>,
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

/// A session handed to a user, with the handle on its pool that holds its place.
pub(crate) type Leased = (Session, Arc<Core>);

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

impl Drop for Core {
    fn drop(&mut self) {
        // Ends the janitor, which holds only a weak handle. No I/O.
        self.janitor_notify.notify_one();
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

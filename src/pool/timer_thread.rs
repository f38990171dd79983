//! One thread per process that times pool waiters out for pools used off a current-thread
//! runtime, in place of a sweeper task (see `sweeper.rs`).
//!
//! Why a thread: while any tokio timer is pending, every park of a runtime's worker is an
//! `epoll_wait` with a timeout, which arms and cancels a kernel timer (in a virtual
//! machine, a trap to the hypervisor). A pool under contention always has a waiter with a
//! deadline, so its sweeper's timer was pending all the time (BENCHMARKS §3c). This thread
//! sleeps until the earliest deadline of all pools and is woken only when an earlier one
//! arrives, so the runtime's workers park without a timeout.
//!
//! Why not always: a current-thread runtime can pause its clock (`tokio::time::pause`,
//! `start_paused`), and waiters' deadlines are on that clock; only a task on that runtime
//! sees them pass. Multi-thread runtimes cannot pause, so their clock is the real one.

use std::collections::HashMap;
use std::sync::{OnceLock, Weak};
use std::time::Instant as StdInstant;

use parking_lot::{Condvar, Mutex};

/// What the thread times: a pool's waiters.
pub(crate) trait Expire: Send + Sync {
    /// Fails the waiters whose deadline passed; returns the next deadline, if any waiter
    /// still has one.
    fn expire(&self) -> Option<tokio::time::Instant>;
}

/// A pool's next deadline; the pool is held weakly, so that the thread never keeps one
/// alive (a pool dropped meanwhile is forgotten).
struct Entry {
    at: StdInstant,
    pool: Weak<dyn Expire>,
}

/// The deadlines, one per pool (keyed by the pool's address), and the thread's wake-up.
struct Timers {
    entries: Mutex<HashMap<usize, Entry>>,
    earlier: Condvar,
}

static TIMERS: OnceLock<Option<Timers>> = OnceLock::new();

/// True when the thread runs (it is started on first use); false if it could not be
/// started, and sweeper tasks must do.
pub(crate) fn available() -> bool {
    timers().is_some()
}

fn timers() -> Option<&'static Timers> {
    TIMERS
        .get_or_init(|| {
            std::thread::Builder::new()
                .name("session-pool-timer".into())
                .spawn(|| run(timers().expect("set before the thread runs")))
                .map_err(|e| {
                    tracing::warn!(target: "session_pool::pool", error = %e,
                        "could not start the pool timer thread; using a task per pool");
                })
                .ok()
                .map(|_| Timers {
                    entries: Mutex::new(HashMap::new()),
                    earlier: Condvar::new(),
                })
        })
        .as_ref()
}

/// Makes the thread call `pool.expire()` at `at` (or earlier, if the pool already had an
/// earlier deadline), and again at each deadline it returns.
pub(crate) fn arm(pool: Weak<dyn Expire>, at: tokio::time::Instant) {
    let Some(t) = timers() else {
        return;
    };
    let at = at.into_std();
    let key = pool.as_ptr() as *const () as usize;
    let mut entries = t.entries.lock();
    let earliest = entries.values().map(|e| e.at).min();
    match entries.get_mut(&key) {
        // The same address may be a new pool where a dropped one was: it takes the entry.
        Some(e) => {
            e.at = e.at.min(at);
            e.pool = pool;
        }
        None => {
            entries.insert(key, Entry { at, pool });
        }
    }
    if earliest.is_none_or(|e| at < e) {
        t.earlier.notify_one();
    }
}

/// The thread: sleeps until the earliest deadline (or an earlier one arrives), then runs
/// the pools that are due, outside the lock, and arms their next deadlines.
fn run(t: &'static Timers) {
    let mut entries = t.entries.lock();
    loop {
        entries.retain(|_, e| e.pool.strong_count() > 0);
        let now = StdInstant::now();
        let due: Vec<(usize, Weak<dyn Expire>)> = entries
            .iter()
            .filter(|(_, e)| e.at <= now)
            .map(|(&k, e)| (k, e.pool.clone()))
            .collect();
        if due.is_empty() {
            match entries.values().map(|e| e.at).min() {
                Some(at) => {
                    t.earlier.wait_until(&mut entries, at);
                }
                None => t.earlier.wait(&mut entries),
            }
            continue;
        }
        for (k, _) in &due {
            entries.remove(k);
        }
        let next: Vec<(usize, Weak<dyn Expire>, StdInstant)> =
            parking_lot::MutexGuard::unlocked(&mut entries, || {
                due.into_iter()
                    .filter_map(|(k, pool)| {
                        let at = pool.upgrade()?.expire()?;
                        Some((k, pool, at.into_std()))
                    })
                    .collect()
            });
        for (k, pool, at) in next {
            // An arm that came while the lock was released may hold an earlier deadline.
            let e = entries.entry(k).or_insert(Entry { at, pool });
            e.at = e.at.min(at);
        }
    }
}

//! The gate: one word, read without the pool's lock, that says whether anyone waits and
//! whether the pool is closed. It lets a checkout and a checkin use the lock-free idle
//! queue only when that overtakes nobody.
//!
//! The hand-off rule, and why it holds without a lock:
//!
//! - A checkin pushes its session to the idle queue only when the gate is clear (nobody
//!   waits, not closed); then it reads the gate again (a `SeqCst` load), and if a waiter or
//!   the close came meanwhile, it takes the lock and settles: idle sessions go to the
//!   waiters in order, or are closed.
//! - A waiter is counted in the gate (a `SeqCst` read-modify-write, under the lock), then,
//!   after a `SeqCst` fence and still under the lock, takes any idle session for the
//!   waiters in order.
//!
//! This is the store-buffering pattern, and of the two sides at least one sees the other's
//! write, so a session is never left idle while someone waits for one (the same holds for
//! closing). The checkin needs no fence of its own: `ArrayQueue::push` publishes a session
//! by a `SeqCst` compare-and-swap of the queue's tail, which comes before the `SeqCst`
//! re-read of the gate in the single order of `SeqCst` operations; if that re-read missed
//! the waiter, the waiter's fence comes after the push in that order too, and `pop` reads
//! the tail after a `SeqCst` fence of its own (crossbeam-queue 0.3, `array_queue.rs`), so it
//! sees the push and waits the few instructions until the slot is written. Saving the
//! fence saves a locked instruction on every checkin. The dependency on crossbeam's
//! orderings is noted in `Cargo.toml`; `tests/pool_handoff.rs` races checkins with waiters.

use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::atomic::{AtomicUsize, fence};

/// Set once the pool is closed; the other bits count the waiters.
const CLOSED: usize = 1 << (usize::BITS - 1);

/// Waiters and the closed flag, on a cache line of their own: every checkout reads it, and
/// only a contended pool writes it.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct Gate(AtomicUsize);

impl Gate {
    /// True when nobody waits and the pool is open: the idle queue may be used directly.
    #[inline]
    pub(crate) fn is_clear(&self) -> bool {
        self.0.load(Relaxed) == 0
    }

    /// [`is_clear`](Gate::is_clear) as a `SeqCst` load, for a checkin right after its push
    /// to the idle queue: see the module's rule.
    #[inline]
    pub(crate) fn is_clear_after_push(&self) -> bool {
        self.0.load(SeqCst) == 0
    }

    /// True once the pool is closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.0.load(SeqCst) & CLOSED != 0
    }

    /// Counts `n` more waiters (under the pool's lock). Adding one is followed by a fence:
    /// the caller then looks at the idle queue (see the module's rule).
    pub(crate) fn add_waiters(&self, n: usize) {
        self.0.fetch_add(n, SeqCst);
        fence(SeqCst);
    }

    /// Counts `n` waiters fewer (under the pool's lock).
    pub(crate) fn remove_waiters(&self, n: usize) {
        if n > 0 {
            self.0.fetch_sub(n, SeqCst);
        }
    }

    /// Marks the pool closed (under the pool's lock), then fences: the caller then empties
    /// the idle queue.
    pub(crate) fn close(&self) {
        self.0.fetch_or(CLOSED, SeqCst);
        fence(SeqCst);
    }
}

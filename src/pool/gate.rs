//! The gate: one word, read without the pool's lock, that says whether anyone waits and
//! whether the pool is closed. It lets a checkout and a checkin use the lock-free idle
//! queue only when that overtakes nobody.
//!
//! The hand-off rule, and why it holds without a lock:
//!
//! - A checkin pushes its session to the idle queue only when the gate is clear (nobody
//!   waits, not closed); then, after a `SeqCst` fence, it reads the gate again, and if a
//!   waiter or the close came meanwhile, it takes the lock and settles: idle sessions go to
//!   the waiters in order, or are closed.
//! - A waiter is counted in the gate (a `SeqCst` read-modify-write, under the lock), then,
//!   after a `SeqCst` fence and still under the lock, takes any idle session for the
//!   waiters in order.
//!
//! Of two such fenced pairs, at least one sees the other's write (the store-buffering
//! rule of the C++ and Rust memory model), so a session is never left idle while someone
//! waits for one. The same holds for closing.

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

    /// [`is_clear`](Gate::is_clear), ordered after everything before it (a checkin's
    /// push): see the module's rule.
    #[inline]
    pub(crate) fn is_clear_after_fence(&self) -> bool {
        fence(SeqCst);
        self.0.load(Relaxed) == 0
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

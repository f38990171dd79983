//! A session's checkout counts, kept with the session so that a pool counts its checkouts
//! without a shared counter: only the session's holder writes them (plain loads and stores,
//! no read-modify-write), and the pool's statistics read them.

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

/// How often a pool handed a session out and got it back.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    acquired: AtomicU64,
    released: AtomicU64,
}

impl Tally {
    /// Adds one. Only the session's holder calls this (through `&mut Session`), so a load
    /// and a store cannot lose a count.
    fn bump(counter: &AtomicU64) {
        counter.store(counter.load(Relaxed) + 1, Relaxed);
    }

    pub(crate) fn count_acquired(&self) {
        Self::bump(&self.acquired);
    }

    pub(crate) fn count_released(&self) {
        Self::bump(&self.released);
    }

    /// The counts so far: (acquired, released).
    pub(crate) fn read(&self) -> (u64, u64) {
        (self.acquired.load(Relaxed), self.released.load(Relaxed))
    }
}

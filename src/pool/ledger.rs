//! The pool's checkout counts: the sum of its sessions' tallies (see `session/tally.rs`),
//! plus what the sessions it no longer holds had counted.

use std::sync::Arc;

use parking_lot::Mutex;

use crate::session::Tally;

/// The tallies of the sessions a pool made or adopted.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    live: Vec<Arc<Tally>>,
    /// The counts of sessions gone since (their tally held only here).
    retired: (u64, u64),
}

impl Inner {
    /// Folds the tallies of sessions that are gone into `retired`.
    fn prune(&mut self) {
        let retired = &mut self.retired;
        self.live.retain(|t| {
            if Arc::strong_count(t) > 1 {
                return true;
            }
            let (a, r) = t.read();
            retired.0 += a;
            retired.1 += r;
            false
        });
    }
}

impl Ledger {
    /// Counts the checkouts of a session new to the pool.
    pub(crate) fn register(&self, tally: Arc<Tally>) {
        let mut inner = self.inner.lock();
        // Pruned when the list would grow: a pool that churns sessions keeps it short.
        if inner.live.len() == inner.live.capacity() {
            inner.prune();
        }
        inner.live.push(tally);
    }

    /// Sessions handed out and given back, over the pool's life: (acquired, released).
    pub(crate) fn totals(&self) -> (u64, u64) {
        let mut inner = self.inner.lock();
        inner.prune();
        inner.live.iter().fold(inner.retired, |(a, r), t| {
            let (ta, tr) = t.read();
            (a + ta, r + tr)
        })
    }
}

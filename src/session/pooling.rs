//! What a pool notes on its sessions: checkout counts, uses, and work for the next use.

use super::{Session, Tally};
use crate::error::Result;

impl Session {
    /// Notes when a pool handed the session out.
    pub(crate) fn checked_out(&mut self, watch: crate::stopwatch::Stopwatch) {
        if let Some(live) = self.parts.live.as_mut() {
            live.meta.checked_out = Some(watch);
        }
    }

    /// When a pool last handed the session out, forgotten as it is read.
    pub(crate) fn checkout_watch(&mut self) -> Option<crate::stopwatch::Stopwatch> {
        self.parts
            .live
            .as_mut()
            .and_then(|l| l.meta.checked_out.take())
    }

    /// The session's checkout counts, for its pool's statistics.
    pub(crate) fn tally(&self) -> Option<&std::sync::Arc<Tally>> {
        self.parts.live.as_ref().map(|l| &l.meta.tally)
    }

    /// Gives the session fresh checkout counts (it joins another pool).
    pub(crate) fn fresh_tally(&mut self) -> Option<&std::sync::Arc<Tally>> {
        let live = self.parts.live.as_mut()?;
        live.meta.tally = std::sync::Arc::default();
        Some(&live.meta.tally)
    }

    /// Counts a checkout of the session (its holder is the only writer).
    pub(crate) fn count_acquired(&mut self) {
        if let Some(l) = &self.parts.live {
            l.meta.tally.count_acquired();
        }
    }

    /// Counts the session given back by a pool's user (its holder is the only writer).
    pub(crate) fn count_released(&mut self) {
        if let Some(l) = &self.parts.live {
            l.meta.tally.count_released();
        }
    }

    /// Whether the session is older than `lifetime`, less up to an eighth of it spread by
    /// its id (sessions a pool made together are then not all replaced together).
    pub(crate) fn outlived(&self, lifetime: std::time::Duration) -> bool {
        self.parts.live.as_ref().is_some_and(|l| {
            // At most an eighth of it, so no overflow whatever `lifetime` is.
            let spread = (lifetime / 8).mul_f64(f64::from(l.meta.spread) / f64::from(u16::MAX));
            l.meta.created_at.elapsed() >= lifetime - spread
        })
    }

    /// Counts one more use by a pool's user; returns the count.
    pub(crate) fn count_use(&mut self) -> u64 {
        self.parts.live.as_mut().map_or(0, |l| {
            l.meta.uses += 1;
            l.meta.uses
        })
    }

    /// Resets the session's state before its next use (see `PoolOptions::reset_on_release`).
    pub(crate) fn reset_before_next_use(&mut self) {
        if let Some(live) = self.parts.live.as_mut() {
            live.meta.needs_reset = true;
        }
    }

    /// True when a cut-off use left something on the connection (a statement still
    /// running, a transaction open: see `settle.rs`) that the next use settles first.
    pub(crate) fn needs_settling(&self) -> bool {
        self.parts
            .live
            .as_ref()
            .is_some_and(|l| l.unsettled() && !l.meta.broken)
    }

    /// Settles now what a cut-off use left (see [`needs_settling`](Session::needs_settling)),
    /// each step within the check timeout.
    pub(crate) async fn settle(&mut self) -> Result<()> {
        match self.parts.live.as_mut() {
            Some(live) if live.unsettled() && !live.meta.broken => {
                live.settle(&self.parts.database).await
            }
            _ => Ok(()),
        }
    }
}

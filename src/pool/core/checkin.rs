//! Checkin: a session back to the first waiter or the idle queue, and a session from
//! outside adopted.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::Waker;

use super::Core;
use crate::error::Error;
use crate::pool::queue::{Grant, State};
use crate::pool::slot::Places;
use crate::session::Session;

impl Core {
    /// Puts back a session nobody took (under the lock, with nobody waiting).
    pub(super) fn requeue(&self, grant: Grant) {
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
    pub(super) fn drain_idle(&self, _locked: &mut State) -> Vec<Session> {
        let drained: Vec<Session> = std::iter::from_fn(|| self.idle.pop()).collect();
        self.open.fetch_sub(drained.len(), Relaxed);
        drained
    }

    /// [`checkin`](Core::checkin), counting the session as released by a user when
    /// `released` says so. The common case, a healthy session and nobody waiting, is
    /// inline: every call that moved the session on cost the checkin another copy of it.
    #[inline]
    pub(super) fn checkin_counted(&self, mut session: Session, released: bool) {
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
            tracing::debug!(target: "session_pool::pool", session = ?session.session_id(),
                uses = max, "session reached its maximum uses; closing it");
            self.retire_returned(session);
            return;
        }
        if let Some(lifetime) = life.max_lifetime
            && session.outlived(lifetime)
        {
            tracing::debug!(target: "session_pool::pool", session = ?session.session_id(),
                ?lifetime, "session reached its maximum lifetime; closing it");
            self.retire_returned(session);
            return;
        }
        if life.reset_on_release {
            session.reset_before_next_use();
        }
        self.checkin_counted(session, true);
    }

    /// Closes a session that came back worn out (uses, lifetime) without awaiting anything;
    /// the pool makes a new one when it needs it.
    fn retire_returned(&self, mut session: Session) {
        session.count_released();
        self.counters.add_deleted(1);
        self.release_place(Some(session));
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
}

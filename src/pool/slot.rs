//! Slots: counted places the pool holds outside the idle queue while it hands a session
//! out, checks it, or creates one. A slot is a guard: dropped (a cancelled future), it gives
//! its place back, with no I/O. Generic over [`Places`], so this file needs nothing of the
//! core but what the trait names.

use std::future::Future;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::session::Session;

/// What a slot needs of the pool whose place it holds.
pub(crate) trait Places: Send + Sync {
    /// Returns a session to the pool (to a waiter, or the idle queue).
    fn checkin(&self, session: Session);
    /// Frees a place, dropping its session if any.
    fn release_place(&self, session: Option<Session>);
    /// Creates a session for the pool.
    fn create_session(&self) -> impl Future<Output = Result<Session>> + Send;
    /// Counts a session found gone and dropped.
    fn count_replaced(&self, dead: &Session);
    /// Counts a session handed to a user.
    fn count_acquired(&self, session: &mut Session);
}

/// A counted place the pool holds outside the idle queue: a session being handed out or
/// checked, or a reservation to create one. Dropped while armed, it frees the place.
pub(crate) struct Slot<'c, P: Places> {
    core: &'c Arc<P>,
    session: Option<Session>,
    armed: bool,
}

impl<'c, P: Places> Slot<'c, P> {
    pub(crate) fn new(core: &'c Arc<P>, session: Option<Session>) -> Self {
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
            self.core.count_replaced(&s);
        }
    }

    /// Fills the place with a new session if it is empty.
    pub(crate) async fn ensure_session(&mut self) -> Result<()> {
        if self.session.is_none() {
            self.session = Some(self.core.create_session().await?);
        }
        Ok(())
    }

    /// Hands the session to the caller, with a handle on the pool: whoever holds the pair
    /// now holds the place.
    pub(crate) fn checkout(mut self) -> Result<(Session, Arc<P>)> {
        let mut session = self.session.take().ok_or(Error::NotCreated)?;
        self.armed = false;
        self.core.count_acquired(&mut session);
        Ok((session, Arc::clone(self.core)))
    }

    /// Frees the place and hands the session over, to be closed by the caller (no longer
    /// counted).
    pub(crate) fn release(mut self) -> Option<Session> {
        self.armed = false;
        let session = self.session.take();
        self.core.release_place(None);
        session
    }

    /// Returns the session to the pool (after a check); an empty place is freed.
    pub(crate) fn checkin(mut self) {
        self.armed = false;
        match self.session.take() {
            Some(s) => self.core.checkin(s),
            None => self.core.release_place(None),
        }
    }
}

impl<P: Places> Drop for Slot<'_, P> {
    fn drop(&mut self) {
        if self.armed {
            // Cut off mid-check or mid-create: the session's state is unknown, so it is
            // dropped (no I/O awaited) and the place freed for a new one.
            self.core.release_place(self.session.take());
        }
    }
}

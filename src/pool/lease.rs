//! Leases: a session a user holds keeps its place in the pool. [`PooledSession`] is a guard:
//! dropped without `put` (a forgotten session), its lease gives the place back, with no
//! I/O.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use super::core::Core;
use super::leak::CheckoutTracker;
use super::slot::Places;
use crate::session::Session;

/// A session handed out by [`get`](super::AbstractSessionPool::get), holding its place in
/// the pool until it is given back with [`put`](super::AbstractSessionPool::put).
///
/// Derefs to the [`Session`]. Dropped without `put`, it frees its place: the session is
/// closed (no I/O awaited) and the pool creates a new one when one is needed. Prefer
/// [`SessionCheckout`](super::SessionCheckout), which puts the session back when dropped.
///
/// A session made outside any pool becomes one with `PooledSession::from(session)`, to be
/// offered to a pool with `put`.
pub struct PooledSession {
    session: Session,
    lease: Lease,
    /// The leak warning's tracking of this checkout, when the pool has one.
    tracker: Option<CheckoutTracker>,
}

/// The place a session holds in one of this crate's pools. Dropping an armed lease frees
/// the place: only bookkeeping (a lock, maybe waking a waiter), no I/O.
struct Lease(Option<Arc<Core>>);

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(core) = self.0.take() {
            core.release_place(None);
        }
    }
}

impl PooledSession {
    /// A session leased from `core`, which counts it in use.
    pub(crate) fn leased(
        session: Session,
        core: Arc<Core>,
        tracker: Option<CheckoutTracker>,
    ) -> Self {
        PooledSession {
            session,
            lease: Lease(Some(core)),
            tracker,
        }
    }

    /// Splits the session from its lease without freeing the place: the caller takes over
    /// the place's accounting (and the leak tracking, if any).
    pub(crate) fn into_parts(mut self) -> (Session, Option<Arc<Core>>, Option<CheckoutTracker>) {
        let core = self.lease.0.take();
        (self.session, core, self.tracker)
    }

    /// Takes the session out of the pool for good: its place is freed now, and the session
    /// is yours to keep or delete.
    pub fn detach(self) -> Session {
        // The lease drops here and frees the place.
        self.session
    }
}

impl From<Session> for PooledSession {
    /// A session from outside any pool, to offer to one with `put`.
    fn from(session: Session) -> Self {
        PooledSession {
            session,
            lease: Lease(None),
            tracker: None,
        }
    }
}

impl Deref for PooledSession {
    type Target = Session;
    fn deref(&self) -> &Session {
        &self.session
    }
}

impl DerefMut for PooledSession {
    fn deref_mut(&mut self) -> &mut Session {
        &mut self.session
    }
}

impl fmt::Debug for PooledSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PooledSession")
            .field("session", &self.session)
            .field("pooled", &self.lease.0.is_some())
            .finish()
    }
}

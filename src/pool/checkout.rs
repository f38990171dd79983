//! `SessionCheckout`, the RAII guard: owned, `'static` and `Send`, so it moves into
//! `tokio::spawn`, into structs and into a web handler's state.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use super::AbstractSessionPool;
use super::core::Core;
use super::leak::CheckoutTracker;
use super::lease::PooledSession;
use crate::session::Session;

/// A session checked out of a pool (Spanner's `SessionCheckout` context manager).
///
/// Derefs to the [`Session`]. Dropping it returns the session to its pool: no I/O, no task
/// spawned. A session that failed as "not found" or lost its connection while checked out
/// is not handed out again: the pool drops it and creates a new one in its place.
///
/// The guard owns what it needs to go home (the lease of this crate's pools, or a handle
/// to any other pool), so it has no lifetime: keep it in a struct or move it into a task.
///
/// ```no_run
/// # async fn demo() -> session_pool::Result<()> {
/// use session_pool::{Database, FixedSizePool};
/// let pool = FixedSizePool::builder().size(4).build(&Database::open("sqlite::memory:").await?).await?;
/// let mut session = pool.session().await?;
/// tokio::spawn(async move { session.ping().await }).await.unwrap()?;
/// # Ok(()) }
/// ```
#[must_use = "the session goes back to the pool as soon as the checkout is dropped"]
pub struct SessionCheckout {
    session: Option<Session>,
    /// The lease, unpacked: the core of this crate's pool whose place the session holds.
    home: Option<Arc<Core>>,
    /// What most checkouts lack, boxed so that the guard stays small: a leak tracker, and
    /// the way home of a session from a pool outside this crate.
    extra: Option<Box<Extra>>,
}

struct Extra {
    /// A pool outside this crate, which takes its session back through `put`.
    other: Option<Arc<dyn AbstractSessionPool>>,
    tracker: Option<CheckoutTracker>,
}

impl Extra {
    #[inline]
    fn boxed(
        other: Option<Arc<dyn AbstractSessionPool>>,
        tracker: Option<CheckoutTracker>,
    ) -> Option<Box<Extra>> {
        (other.is_some() || tracker.is_some()).then(|| Box::new(Extra { other, tracker }))
    }
}

impl SessionCheckout {
    /// Wraps a session taken from `pool` with [`get`](AbstractSessionPool::get); dropping
    /// the guard puts it back into `pool`.
    pub fn new<P: AbstractSessionPool + Clone>(pool: &P, session: PooledSession) -> Self {
        let (session, home, tracker) = session.into_parts();
        // This crate's pools track `get` already; others may track here.
        let tracker = tracker.or_else(|| pool.track_checkout(&session));
        let other = match home {
            Some(_) => None,
            None => Some(Arc::new(pool.clone()) as Arc<dyn AbstractSessionPool>),
        };
        SessionCheckout {
            session: Some(session),
            home,
            extra: Extra::boxed(other, tracker),
        }
    }

    /// A session leased from one of this crate's pools, which its lease returns to.
    /// Always inline: built out of line, the guard went through memory once more on every
    /// checkout (BENCHMARKS §1g).
    #[inline(always)]
    pub(crate) fn leased(
        session: Session,
        home: Arc<Core>,
        tracker: Option<CheckoutTracker>,
    ) -> Self {
        SessionCheckout {
            session: Some(session),
            home: Some(home),
            extra: Extra::boxed(None, tracker),
        }
    }

    /// Takes the session out of the guard; give it back with
    /// [`put`](AbstractSessionPool::put), or drop it to free its place.
    pub fn into_inner(mut self) -> PooledSession {
        let session = self
            .session
            .take()
            .expect("a checkout holds its session until dropped");
        let tracker = self.extra.take().and_then(|e| e.tracker);
        match self.home.take() {
            Some(core) => PooledSession::leased(session, core, tracker),
            None => PooledSession::from(session),
        }
    }
}

impl Deref for SessionCheckout {
    type Target = Session;
    fn deref(&self) -> &Session {
        self.session
            .as_ref()
            .expect("a checkout holds its session until dropped")
    }
}

impl DerefMut for SessionCheckout {
    fn deref_mut(&mut self) -> &mut Session {
        self.session
            .as_mut()
            .expect("a checkout holds its session until dropped")
    }
}

impl fmt::Debug for SessionCheckout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionCheckout")
            .field("session", &self.session)
            .finish()
    }
}

impl Drop for SessionCheckout {
    fn drop(&mut self) {
        // This crate's pools: straight back through the lease's core (no I/O). The lease
        // is looked at first, so that the session moves once, into the call.
        if let Some(core) = self.home.take() {
            if let Some(session) = self.session.take() {
                core.return_leased(session);
            }
            return;
        }
        let Some(session) = self.session.take() else {
            return;
        };
        let Some(pool) = self.extra.as_ref().and_then(|e| e.other.as_ref()) else {
            return;
        };
        if let Err(e) = pool.put(session.into()) {
            tracing::warn!(target: "session_pool::pool", error = %e.error,
                "a checked-out session could not be returned; it was dropped");
        }
    }
}

//! `get`: the fast path (an idle session, no lock, no future) and the slow path (wait,
//! then check or create).

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{Core, Leased};
use crate::error::{Error, Result};
use crate::pool::slot::Slot;
use crate::session::Session;

/// The rest of a `get` that the fast path could not serve.
pub(crate) struct Slow<'c> {
    core: &'c Arc<Core>,
    idle: Idle<'c>,
    /// When the checkout began, for the due check.
    now: coarsetime::Instant,
}

impl Slow<'_> {
    /// Waits for a session or a place, then checks a due session or creates one. Waiting
    /// runs inline (a small future), and a session handed over that needs no check goes
    /// out at once; checking and creating are boxed, because their state machine (connect
    /// and check futures) is large and would make every checkout future large too.
    pub(crate) async fn run(self, timeout: Option<Duration>) -> Result<Leased> {
        let Slow { core, idle, now } = self;
        let timeout = timeout.or(core.rules.default_timeout);
        // One clock read bounds all of it: the wait, then any check or creation.
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let due = core.due(now);
        let slot = match idle {
            Idle::Ready(leased) => return Ok(leased),
            Idle::Due(slot) => slot,
            Idle::Empty => {
                let mut slot = core.acquire(timeout, deadline).await?;
                if slot
                    .session_mut()
                    .is_some_and(|s| !due(s) && !core.suspect(s))
                {
                    return slot.checkout();
                }
                slot
            }
        };
        let span = match core.database.get() {
            Some(db) => crate::telemetry::session_op(db.telemetry(), "checkout"),
            None => tracing::Span::none(),
        };
        crate::telemetry::traced(span, Box::pin(core.ready(slot, timeout, deadline))).await
    }
}

/// What [`Core::take_idle`] found at the front of the idle queue.
enum Idle<'c> {
    /// A session that needs no check, already checked out.
    Ready(Leased),
    /// A session due for a check, held in a slot.
    Due(Slot<'c, Core>),
    /// Nothing idle (or the pool is closed): take the slow path.
    Empty,
}

impl Core {
    /// `get` for every strategy: takes a session (or a place), checks the session with
    /// `exists()` when it is due, replaces it if it is gone, creates one if needed.
    ///
    /// The common cases, an idle session that needs no check and a wait for one, are served
    /// inline; checks and creation are boxed (see [`Slow::run`]).
    pub(crate) async fn get(self: &Arc<Self>, timeout: Option<Duration>) -> Result<Leased> {
        match self.try_ready() {
            Ok(session) => Ok(session),
            Err(slow) => slow.run(timeout).await,
        }
    }

    /// The fast path of `get`, with no future: an idle session that needs no check, or
    /// what the slow path needs to go on.
    pub(crate) fn try_ready(self: &Arc<Self>) -> std::result::Result<Leased, Slow<'_>> {
        let now = coarsetime::Instant::now_without_cache_update();
        match self.take_idle(&self.due(now)) {
            Idle::Ready(session) => Ok(session),
            idle => Err(Slow {
                core: self,
                idle,
                now,
            }),
        }
    }

    /// The rest of `get` once a place is held: check its session (which is due), or
    /// create one. The deadline bounds it, as it bounded the wait.
    async fn ready(
        self: &Arc<Self>,
        mut slot: Slot<'_, Core>,
        timeout: Option<Duration>,
        deadline: Option<Instant>,
    ) -> Result<Leased> {
        let check = slot.session_mut().is_some();
        let ready = async {
            if check
                && let Some(s) = slot.session_mut()
                && !s.exists().await.unwrap_or(false)
            {
                slot.discard_dead();
            }
            slot.ensure_session().await
        };
        match deadline {
            None => ready.await?,
            Some(deadline) => match tokio::time::timeout_at(deadline, ready).await {
                Ok(res) => res?,
                Err(_) => {
                    // The slot drops with this frame: the place is freed, and a session cut
                    // off mid-check is closed rather than handed out.
                    self.counters.add_get_timeouts(1);
                    return Err(Error::PoolTimeout {
                        timeout: timeout.unwrap_or_default(),
                    });
                }
            },
        }
        slot.checkout()
    }

    /// The fast path of `get`: takes the idle session at the front of the queue, with no
    /// lock and no future. A session `due` does not flag is checked out at once; a due one
    /// comes back in a slot, to be checked.
    fn take_idle(self: &Arc<Self>, due: &impl Fn(&Session) -> bool) -> Idle<'_> {
        // Someone waits (they come first) or the pool is closed: the slow path.
        if !self.gate.is_clear() {
            return Idle::Empty;
        }
        // The lease's handle, taken before the queue's writes: a locked instruction costs
        // least with no stores pending.
        let home = Arc::clone(self);
        let Some(mut session) = self.idle.pop() else {
            return Idle::Empty;
        };
        if due(&session) || self.suspect(&session) {
            return Idle::Due(Slot::new(self, Some(session)));
        }
        self.count_handout(&mut session);
        Idle::Ready((session, home))
    }
}

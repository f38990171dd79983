//! The optional leak warning: checkouts held longer than a threshold are logged, with the
//! backtrace of where they were taken.

use std::backtrace::Backtrace;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

struct Entry {
    since: Instant,
    session: Option<String>,
    /// The PostgreSQL backend, for closing a leaked session.
    pid: Option<crate::database::Backend>,
    backtrace: Option<Backtrace>,
    warned: bool,
}

/// Checkouts in flight, for the leak warning (only kept when a threshold is set).
pub(crate) struct LeakRegistry {
    threshold: Duration,
    backtraces: bool,
    /// Close leaked sessions (their PostgreSQL backend terminated), not only warn.
    close: bool,
    next: AtomicU64,
    live: Mutex<HashMap<u64, Entry>>,
}

impl fmt::Debug for LeakRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeakRegistry")
            .field("threshold", &self.threshold)
            .finish()
    }
}

impl LeakRegistry {
    pub(crate) fn new(threshold: Duration, backtraces: bool, close: bool) -> Arc<Self> {
        Arc::new(LeakRegistry {
            threshold,
            backtraces,
            close,
            next: AtomicU64::new(0),
            live: Mutex::new(HashMap::new()),
        })
    }

    /// How long a checkout may be held before it is reported.
    pub(crate) fn threshold(&self) -> Duration {
        self.threshold
    }

    pub(crate) fn track(
        self: &Arc<Self>,
        session: Option<&str>,
        pid: Option<crate::database::Backend>,
    ) -> CheckoutTracker {
        let id = self.next.fetch_add(1, Relaxed);
        let backtrace = self.backtraces.then(Backtrace::force_capture);
        let entry = Entry {
            since: Instant::now(),
            session: session.map(str::to_owned),
            pid,
            backtrace,
            warned: false,
        };
        self.live.lock().insert(id, entry);
        CheckoutTracker {
            registry: self.clone(),
            id,
        }
    }

    /// Warns once for each checkout held longer than the threshold, while it is held;
    /// returns the backends to close (those newly found, when closing is on).
    pub(crate) fn check(&self) -> Vec<crate::database::Backend> {
        let mut live = self.live.lock();
        let mut close = Vec::new();
        for e in live.values_mut() {
            let held = e.since.elapsed();
            if held < self.threshold || e.warned {
                continue;
            }
            e.warned = true;
            warn_leak(e, held, self.threshold, "is still checked out");
            if self.close {
                close.extend(e.pid);
            }
        }
        close
    }
}

fn warn_leak(e: &Entry, held: Duration, threshold: Duration, what: &str) {
    let backtrace = e
        .backtrace
        .as_ref()
        .map(|b| b.to_string())
        .unwrap_or_default();
    tracing::warn!(target: "session_pool::leak", session = ?e.session, ?held, ?threshold,
        %backtrace, "session {what} after longer than the leak threshold");
}

/// Tracks one checkout for the leak warning; returned by
/// [`AbstractSessionPool::track_checkout`](super::AbstractSessionPool::track_checkout). Dropping it ends the tracking.
pub struct CheckoutTracker {
    registry: Arc<LeakRegistry>,
    id: u64,
}

impl fmt::Debug for CheckoutTracker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckoutTracker")
            .field("id", &self.id)
            .finish()
    }
}

impl Drop for CheckoutTracker {
    fn drop(&mut self) {
        let entry = self.registry.live.lock().remove(&self.id);
        if let Some(e) = entry {
            let held = e.since.elapsed();
            if held >= self.registry.threshold && !e.warned {
                warn_leak(&e, held, self.registry.threshold, "was returned");
            }
        }
    }
}

//! A PostgreSQL row stream under a timeout. At the deadline of a per-call timeout a cancel
//! is sent for the backend (from a connection of its own) while the stream goes on being
//! polled, so the server's "canceling statement" error ends it and the session stays
//! usable. If the server answers neither within the check timeout (or, for the
//! server-enforced database-wide timeout, past it plus the check timeout), the stream ends
//! with [`Error::StatementTimeout`] and a lost session.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use futures_core::future::BoxFuture;
use futures_core::stream::BoxStream;
use futures_util::{FutureExt, StreamExt};
use tokio::time::{Instant, Sleep};

use crate::conn::{ExecError, ExecResult};
use crate::database::Database;
use crate::error::Error;
use crate::row::Row;

enum Phase {
    /// Before the deadline.
    Running,
    /// The cancel is on its way (or sent); waiting for the stream to end.
    Cancelling(Option<BoxFuture<'static, ()>>),
    /// Ended.
    Done,
}

pub(crate) struct Timed<'a> {
    inner: BoxStream<'a, ExecResult<Row>>,
    timer: Pin<Box<Sleep>>,
    phase: Phase,
    /// Send a cancel at the deadline (a per-call timeout); otherwise the server enforces
    /// it, and the deadline is when the client gives up.
    cancel: bool,
    db: Database,
    backend: crate::database::Backend,
    timeout: Duration,
}

impl<'a> Timed<'a> {
    /// `inner` bounded by `timeout`: cancelled at it when `cancel`, given up on at
    /// `timeout` plus the check timeout otherwise.
    pub(crate) fn new(
        inner: BoxStream<'a, ExecResult<Row>>,
        db: &Database,
        backend: crate::database::Backend,
        timeout: Duration,
        cancel: bool,
    ) -> Self {
        let first = if cancel {
            timeout
        } else {
            timeout.saturating_add(db.check_timeout())
        };
        Timed {
            inner,
            timer: Box::pin(tokio::time::sleep(first)),
            phase: Phase::Running,
            cancel,
            db: db.clone(),
            backend,
            timeout,
        }
    }

    /// The stream cannot go on: the session is stuck mid-statement.
    fn give_up(&mut self) -> Poll<Option<ExecResult<Row>>> {
        self.phase = Phase::Done;
        Poll::Ready(Some(Err(ExecError::Crate(Error::StatementTimeout {
            timeout: self.timeout,
            session_lost: true,
        }))))
    }
}

impl Stream for Timed<'_> {
    type Item = ExecResult<Row>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if matches!(this.phase, Phase::Done) {
            return Poll::Ready(None);
        }
        if this.timer.as_mut().poll(cx).is_ready() {
            match this.phase {
                Phase::Running if this.cancel => {
                    let grace = this.db.check_timeout();
                    let (db, pid) = (this.db.clone(), this.backend);
                    let cancel = async move {
                        #[cfg(feature = "postgres")]
                        if let Err(e) = tokio::time::timeout(grace, db.cancel_backend(pid)).await {
                            tracing::warn!(target: "session_pool::session", pid = pid.pid, error = %e,
                                "no answer to a cancel within the check timeout");
                        }
                        #[cfg(not(feature = "postgres"))]
                        let _ = (db, pid);
                    };
                    this.phase = Phase::Cancelling(Some(cancel.boxed()));
                    this.timer
                        .as_mut()
                        .reset(Instant::now() + grace.saturating_mul(2));
                    // Registers the new deadline's waker.
                    let _ = this.timer.as_mut().poll(cx);
                }
                _ => return this.give_up(),
            }
        }
        if let Phase::Cancelling(Some(cancel)) = &mut this.phase
            && cancel.poll_unpin(cx).is_ready()
        {
            this.phase = Phase::Cancelling(None);
        }
        match this.inner.poll_next_unpin(cx) {
            Poll::Ready(None) => {
                this.phase = Phase::Done;
                Poll::Ready(None)
            }
            other => other,
        }
    }
}

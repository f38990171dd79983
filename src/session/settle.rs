//! Settling what a cut-off use left on a session's connection, before anything else runs on
//! it: a statement still running because its future was dropped (a cancelled request, a
//! timeout around the call), and a transaction left open or half begun or ended.
//!
//! A dropped future sends nothing, so the statement runs on: on PostgreSQL with whatever
//! locks its transaction holds, until it ends by itself; on SQLite with the write lock. And
//! the connection answers nothing else until it has. So the statement is stopped first —
//! a cancel by backend pid, or through a transaction pooler by the mark in its text
//! (`crate::pooler::Mark`), or SQLite's interrupt — then its answer is read, and
//! the transaction rolled back. A pool's janitor does this as soon as such a session comes
//! home; a session outside a pool does it at its next use.

use std::time::Duration;

use super::{Live, Meta};
use crate::database::Database;
use crate::error::Result;

impl Live {
    /// A cut-off use left something to settle.
    pub(crate) fn unsettled(&self) -> bool {
        let m = &self.meta;
        m.tx_dirty || m.tx_open || m.in_flight
    }

    /// A transaction may be open with no ROLLBACK queued for it: a `BEGIN`, `COMMIT` or
    /// `ROLLBACK` was cut off, or a transaction through a pooler (which this crate begins
    /// and ends itself, `transaction::TxConn::Pooled`) was dropped.
    fn rollback_owed(&self) -> bool {
        let m = &self.meta;
        #[cfg(feature = "postgres")]
        let own = m.tx_open && m.pooled_mark.is_some();
        #[cfg(not(feature = "postgres"))]
        let own = false;
        m.tx_dirty || own
    }

    /// Settles the session (see the module), each step within `db`'s check timeout. Past
    /// it the session is lost, and a direct PostgreSQL backend still running the statement
    /// is ended, so that its locks go with it.
    pub(crate) async fn settle(&mut self, db: &Database) -> Result<()> {
        let timeout = db.check_timeout();
        if self.meta.in_flight {
            self.stop_cut_off(db, timeout).await?;
        }
        // The cut-off statement's answer (an error, if the cancel reached it), then sqlx's
        // queued ROLLBACK if a `Transaction` was dropped, each make one call fail in turn
        // before the connection is ready: a few tries read them all. A ROLLBACK that SQLite
        // refuses (no transaction open) fails every time: fine too.
        let mut tries = 4;
        let res = loop {
            let res = if self.rollback_owed() {
                // Ours, which PostgreSQL warns about and SQLite refuses when no transaction
                // is open.
                let rollback = self
                    .conn
                    .as_mut()
                    .execute(crate::conn::fixed("ROLLBACK"), crate::param::NONE);
                tokio::time::timeout(timeout, async { rollback.await.map(drop) }).await
            } else {
                let flush = async { Ok(self.conn.ping().await?) };
                tokio::time::timeout(timeout, flush).await
            };
            tries -= 1;
            match res {
                Ok(Err(e)) => {
                    let err = self.meta.fail(e);
                    if self.meta.broken {
                        break Ok(Err(err));
                    }
                    if tries == 0 {
                        break Ok(Ok(()));
                    }
                }
                Ok(Ok(())) => break Ok(Ok(())),
                Err(elapsed) => break Err(elapsed),
            }
        };
        match res {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                end_backend(&self.meta, db, timeout).await;
                return Err(err);
            }
            Err(_) => {
                self.meta.broken = true;
                end_backend(&self.meta, db, timeout).await;
                return Err(self.meta.not_found(format!(
                    "the server did not settle a cut-off statement or transaction within \
                     {timeout:?}"
                )));
            }
        }
        self.meta.in_flight = false;
        self.meta.tx_open = false;
        self.meta.tx_dirty = false;
        Ok(())
    }

    /// Stops the statement a dropped future left running, and reads its answer if that
    /// is quick (the rest is read with the rollback). Gives the session up when the
    /// server does not answer the cancel either.
    async fn stop_cut_off(&mut self, db: &Database, timeout: Duration) -> Result<()> {
        if let Some(interrupt) = self.meta.interrupt.clone() {
            // SQLite: stopped at its next check when its future was dropped
            // (`deadline::Running`); armed again in case it had answered by then. A ping
            // runs no SQL, so the armed interrupt cannot stop it; then nothing is armed for
            // the rollback. (A statement waiting out the busy timeout stops only then.)
            interrupt.arm(Duration::ZERO);
            let drained = tokio::time::timeout(timeout, self.conn.ping()).await;
            interrupt.disarm();
            if drained.is_err() {
                self.meta.broken = true;
                return Err(self.meta.not_found(format!(
                    "a cut-off statement did not stop within {timeout:?}"
                )));
            }
            return Ok(());
        }
        // PostgreSQL: most cut-off statements are done, or nearly (a stream dropped after
        // the rows wanted), and need no cancel, which costs a connection. Dropped
        // unfinished, the ping leaves its Sync pending for the next call to read.
        if tokio::time::timeout(DRAIN_AT_ONCE, self.conn.ping())
            .await
            .is_ok()
        {
            return Ok(());
        }
        if answered(&self.meta, db, timeout).await {
            // Read what is left with the rollback (within the check timeout).
            return Ok(());
        }
        // The server does not answer a new connection either: waiting for this one to read
        // the statement's answer would only keep this place in the pool longer.
        self.meta.broken = true;
        // Through a pooler the cancel is a query, so it waits for a free server connection;
        // all of them can be held by the statement and clients waiting on its locks.
        #[cfg(feature = "postgres")]
        let pooled = self.meta.pooled_mark.is_some();
        #[cfg(not(feature = "postgres"))]
        let pooled = false;
        let pooler = if pooled {
            " (or the transaction pooler had no free server connection for it)"
        } else {
            ""
        };
        Err(self.meta.not_found(format!(
            "the server did not answer the cancel of a cut-off statement within \
             {timeout:?}{pooler}"
        )))
    }
}

/// How long a cut-off PostgreSQL statement may take to answer before it is cancelled.
const DRAIN_AT_ONCE: Duration = Duration::from_millis(20);

/// Cancels the PostgreSQL statement a dropped future left running, from a connection of
/// its own. False only when the server (or the pooler) gave no answer within `timeout`; a
/// cancel refused, or nothing to name the backend by, leaves the drain that follows to tell.
async fn answered(meta: &Meta, db: &Database, timeout: Duration) -> bool {
    #[cfg(feature = "postgres")]
    {
        let cancel: std::pin::Pin<Box<dyn std::future::Future<Output = Result<bool>> + Send + '_>> =
            if let Some(backend) = meta.backend {
                Box::pin(db.cancel_backend(backend))
            } else if let Some(mark) = meta.pooled_mark {
                // `BEGIN`, `COMMIT` and `ROLLBACK` carry the mark too. One that went through
                // left its backend idle, or to another client's statement: neither matches.
                Box::pin(db.cancel_marked(mark))
            } else {
                return true;
            };
        match tokio::time::timeout(timeout, cancel).await {
            Ok(Ok(found)) => {
                tracing::debug!(target: "session_pool::session", session = %meta.name, found,
                    "cancelled a statement cut off by a dropped future");
                true
            }
            Ok(Err(e)) => {
                // Refused, say, or the host down: the drain that follows tells.
                tracing::warn!(target: "session_pool::session", session = %meta.name,
                    error = %e, "could not cancel a statement cut off by a dropped future");
                true
            }
            Err(_) => false,
        }
    }
    #[cfg(not(feature = "postgres"))]
    {
        let _ = (meta, db, timeout);
        true
    }
}

/// Ends the backend of a session given up while a statement may still run there, so its
/// locks go now rather than when the statement ends by itself.
async fn end_backend(meta: &Meta, db: &Database, timeout: Duration) {
    #[cfg(feature = "postgres")]
    if meta.in_flight
        && let Some(backend) = meta.backend
    {
        let res = tokio::time::timeout(timeout, Box::pin(db.terminate_backend(backend))).await;
        tracing::warn!(target: "session_pool::session", session = %meta.name, pid = backend.pid,
            ended = matches!(res, Ok(Ok(true))),
            "ended the backend of a session whose cut-off statement did not stop");
    }
    #[cfg(not(feature = "postgres"))]
    let _ = (meta, db, timeout);
}

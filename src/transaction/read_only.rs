//! `run_in_read_only_transaction`: a function over a [`Snapshot`], retried on abort. A
//! standby refuses SERIALIZABLE (0A000), so read-only work that must be retried, as on a
//! replica, runs here (`REPEATABLE READ READ ONLY`).

use super::Snapshot;
use super::retry::{Backoff, TransactionOptions};
use crate::error::Error;
use crate::session::Session;

impl Session {
    /// Runs `f` in a read-only [`Snapshot`] (PostgreSQL `REPEATABLE READ READ ONLY`, which a
    /// hot standby accepts; SQLite a deferred transaction), retrying when the database
    /// aborts it (a standby cancels queries that conflict with replay, 40001), with the
    /// default [`TransactionOptions`]. A standby that ends the session instead (FATAL
    /// 40001, its transaction idle while replay waited) is [`Error::SessionNotFound`],
    /// not retried on this session. As with
    /// [`run_in_transaction`](Session::run_in_transaction), `f` may run several times and
    /// returns its own error type.
    ///
    /// On a session of a read replica's database, or routed by
    /// [`run_in_read_only_transaction_at`](Session::run_in_read_only_transaction_at).
    pub async fn run_in_read_only_transaction<T, E, F>(
        &mut self,
        mut f: F,
    ) -> std::result::Result<T, E>
    where
        F: AsyncFnMut(&mut Snapshot<'_>) -> std::result::Result<T, E>,
        E: From<Error> + 'static,
    {
        let mut backoff = Backoff::new(TransactionOptions::default());
        loop {
            backoff.attempts += 1;
            let abort = match self.snapshot().await {
                Err(e) if e.is_aborted() => e,
                Err(e) => return Err(E::from(e)),
                Ok(mut snapshot) => {
                    snapshot.meta.last_abort = None;
                    let res = f(&mut snapshot).await;
                    let abort = snapshot.meta.last_abort.take();
                    let closed = snapshot.close().await;
                    match (res, abort) {
                        (Ok(value), _) => {
                            closed.map_err(E::from)?;
                            return Ok(value);
                        }
                        (Err(_), Some((code, message))) => Error::Aborted {
                            code,
                            message,
                            source: None,
                        },
                        (Err(err), None) => return Err(err),
                    }
                }
            };
            backoff.after_abort(abort).await.map_err(E::from)?;
        }
    }
}

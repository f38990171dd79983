//! How long a statement may run, who stops it when it runs longer (the client's cancel,
//! the server's `statement_timeout`, or nobody: a check that counts the session lost), and
//! what a statement that ran past its limit leaves of the session.

use std::future::Future;
use std::time::Duration;

use super::Meta;
use crate::conn::{ExecError, ExecResult, RawConnection};
use crate::database::Database;
use crate::error::{Class, Error, Result, classify};

/// How long a statement may run, and who stops it when it runs longer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limit {
    pub(crate) timeout: Duration,
    pub(super) by: By,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(super) enum By {
    /// The client: a cancel request on PostgreSQL, the progress handler's interrupt on
    /// SQLite; then the check timeout for the statement to stop.
    Cancel,
    /// The server (PostgreSQL's `statement_timeout`); the client gives up, dropping the
    /// session, only after the check timeout more.
    Server,
    /// Nobody: past the timeout the session counts as lost (a check).
    Lost,
}

impl Limit {
    /// A per-call timeout, cancelled by the client.
    pub(crate) fn cancel_after(timeout: Duration) -> Limit {
        Limit {
            timeout,
            by: By::Cancel,
        }
    }

    /// A check: past `timeout`, the session is lost.
    pub(crate) fn lost_after(timeout: Duration) -> Limit {
        Limit {
            timeout,
            by: By::Lost,
        }
    }

    /// The database-wide statement timeout, if any.
    pub(super) fn database_wide(db: &Database, conn: &RawConnection<'_>) -> Option<Limit> {
        let timeout = db.statement_timeout()?;
        let by = match conn {
            #[cfg(feature = "postgres")]
            RawConnection::Postgres(_) | RawConnection::PostgresPooled(..) => By::Server,
            #[cfg(feature = "sqlite")]
            RawConnection::Sqlite(_) => By::Cancel,
        };
        Some(Limit { timeout, by })
    }
}

/// On a transaction pooler's link the server enforces a statement's limit: it is sent
/// with the statement (`SET LOCAL statement_timeout`), since a cancel needs the backend
/// pid the pooler hides. Checks (`By::Lost`) stay the client's. The statement also carries
/// the session's mark, by which it is found if it is cut off (`crate::pooler::Mark`).
pub(super) fn server_side<'c>(
    conn: RawConnection<'c>,
    limit: Option<Limit>,
    meta: &Meta,
) -> (RawConnection<'c>, Option<Limit>) {
    if !conn.is_pooled() {
        return (conn, limit);
    }
    #[cfg(feature = "postgres")]
    let conn = conn.with_link(crate::conn::PoolerLink {
        timeout: limit.filter(|l| l.by != By::Lost).map(|l| l.timeout),
        in_transaction: meta.tx_open,
        mark: meta.pooled_mark.map(|m| m.key),
    });
    #[cfg(not(feature = "postgres"))]
    let _ = meta;
    let limit = match limit {
        Some(l) if l.by != By::Lost => Some(Limit {
            by: By::Server,
            ..l
        }),
        other => other,
    };
    (conn, limit)
}

/// A limited statement's failure as this crate's error: a cancel is its timeout.
fn finish<T>(meta: &mut Meta, limit: Limit, res: ExecResult<T>) -> Result<T> {
    res.map_err(|e| match e {
        ExecError::Sql(e) if classify(&e) == Class::Cancelled => timed_out(meta, &e, limit.timeout),
        e => meta.fail(e),
    })
}

/// A statement cancelled at its `timeout` (`e`): the session stays usable, but the
/// cancel aborted its transaction as any error does.
pub(super) fn timed_out(meta: &mut Meta, e: &sqlx::Error, timeout: Duration) -> Error {
    meta.note_failure(e);
    Error::StatementTimeout {
        timeout,
        session_lost: false,
    }
}

/// Runs one statement's future within `limit`, and turns its failure into this crate's
/// error. With no limit, it is just awaited.
///
/// Until the statement answers, the session counts it in flight: dropped before that (a
/// cancelled request), the statement may still run on the server, holding its locks, so
/// the session's next use, or its pool's janitor, stops it and reads what is left before
/// anything else runs on the connection (`settle.rs`).
///
/// `run` comes pinned by the caller: taken by value, it would be stored twice in this
/// future (the argument, and the awaited copy), and copied between them.
pub(super) async fn bounded<T, F: Future<Output = ExecResult<T>>>(
    meta: &mut Meta,
    db: &Database,
    limit: Option<Limit>,
    mut run: std::pin::Pin<&mut F>,
) -> Result<T> {
    meta.in_flight = true;
    if let Some(interrupt) = meta.interrupt.clone() {
        // SQLite: the progress handler stops the statement at its deadline, or at once if
        // this future is dropped first.
        let running = crate::deadline::Running::start(interrupt, limit.map(|l| l.timeout));
        let res = run.as_mut().await;
        running.finish();
        statement_answered(meta, &res);
        return match limit {
            Some(limit) => finish(meta, limit, res),
            None => res.map_err(|e| meta.fail(e)),
        };
    }
    let Some(limit) = limit else {
        let res = run.as_mut().await;
        statement_answered(meta, &res);
        return res.map_err(|e| meta.fail(e));
    };
    let grace = db.check_timeout();
    let first = match limit.by {
        By::Cancel | By::Lost => limit.timeout,
        By::Server => limit.timeout.saturating_add(grace),
    };
    if let Ok(res) = tokio::time::timeout(first, run.as_mut()).await {
        statement_answered(meta, &res);
        return finish(meta, limit, res);
    }
    if limit.by == By::Cancel
        && let Some(pid) = meta.backend
    {
        #[cfg(feature = "postgres")]
        // Boxed: a connection's worth of state, needed only past a timeout, would otherwise
        // be part of every statement's future.
        match tokio::time::timeout(grace, Box::pin(db.cancel_backend(pid))).await {
            Ok(Ok(_)) => {
                if let Ok(res) = tokio::time::timeout(grace, run.as_mut()).await {
                    statement_answered(meta, &res);
                    return finish(meta, limit, res);
                }
            }
            Ok(Err(e)) => tracing::warn!(target: "session_pool::session", session = %meta.name,
                error = %e, "could not send a cancel for a statement past its timeout"),
            Err(_) => tracing::warn!(target: "session_pool::session", session = %meta.name,
                "no answer to a cancel within the check timeout"),
        }
        #[cfg(not(feature = "postgres"))]
        let _ = pid;
    }
    // The server answers neither the statement nor its cancel: the connection is stuck
    // mid-statement, so the session cannot be reused.
    meta.broken = true;
    tracing::warn!(target: "session_pool::session", session = %meta.name, timeout = ?limit.timeout,
        "no answer from the server past the timeout; dropping the session");
    Err(match limit.by {
        By::Lost => meta.not_found(format!(
            "the server did not answer within the check timeout ({:?})",
            limit.timeout
        )),
        By::Cancel | By::Server => Error::StatementTimeout {
            timeout: limit.timeout,
            session_lost: true,
        },
    })
}

/// The statement answered. One that succeeded in a transaction leaves it usable (after a
/// `ROLLBACK TO SAVEPOINT`, say), whatever failed before it.
fn statement_answered<T>(meta: &mut Meta, res: &ExecResult<T>) {
    meta.in_flight = false;
    if res.is_ok() {
        meta.tx_failed = None;
    }
}

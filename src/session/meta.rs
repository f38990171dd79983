//! A created session's bookkeeping, and how a failure on its connection becomes this
//! crate's error.

use std::time::Instant;

use super::{Tally, prepared};
use crate::conn::ExecError;
use crate::error::{Class, Error, classify, database_from, typed};

/// The first server error in an open transaction (`Meta::tx_failed`).
#[derive(Debug)]
pub(crate) struct TxFailure {
    /// Its SQLSTATE and message.
    pub(crate) code: Option<String>,
    pub(crate) message: String,
    /// A serialization failure, deadlock or stale prepared statement: run again, the
    /// transaction can succeed.
    pub(crate) retryable: bool,
}

/// Bookkeeping of a created session, kept apart from its connection so a transaction can
/// borrow both.
#[derive(Debug)]
pub(crate) struct Meta {
    pub(crate) id: String,
    pub(crate) name: String,
    /// The PostgreSQL backend (host and pid) the session runs on.
    pub(crate) backend: Option<crate::database::Backend>,
    pub(crate) created_at: Instant,
    /// Random, from the id: where in its last eighth a pool's `max_lifetime` retires it.
    pub(crate) spread: u16,
    pub(crate) last_used: Instant,
    /// `last_used` on the coarse clock (a few ms resolution, a few ns to read), for the
    /// pools' idle checks on every checkout.
    pub(crate) touched: coarsetime::Instant,
    pub(crate) broken: bool,
    /// A `BEGIN`, `COMMIT` or `ROLLBACK` was cut off (its future dropped): the connection may
    /// still be inside a transaction, so the next use rolls back first.
    pub(crate) tx_dirty: bool,
    /// A transaction was begun and has not finished. Dropped half-way, sqlx queued its
    /// ROLLBACK on the connection (sent with the next message), or, through a transaction
    /// pooler, where this crate sends `BEGIN` and `COMMIT` itself, nothing is queued and the
    /// settle sends one (`settle.rs`).
    pub(crate) tx_open: bool,
    /// A statement in the open transaction failed on the server (PostgreSQL), and none has
    /// succeeded since (a `ROLLBACK TO SAVEPOINT`). The server would answer the COMMIT with
    /// a rollback, so `commit` reports it instead.
    pub(crate) tx_failed: Option<TxFailure>,
    /// The schema changes the connection's statement cache has been cleared for
    /// (`prepared.rs`): behind, it is cleared before the next statement.
    pub(crate) prepared_at: prepared::PreparedAt,
    /// A statement was sent and its answer not read to the end (its future or stream was
    /// dropped half-way): it may still run, so the next use stops it first (`settle.rs`).
    pub(crate) in_flight: bool,
    /// Through a transaction pooler: the mark each statement's text carries, by which a
    /// cut-off one is found and cancelled.
    #[cfg(feature = "postgres")]
    pub(crate) pooled_mark: Option<crate::pooler::Mark>,
    /// A direct PostgreSQL session that may go over to the pooler mode if it finds itself
    /// moved between server connections: no pooler was declared either way, and it
    /// assumed no role (`SET ROLE` on a shared server connection cannot be taken back).
    #[cfg(feature = "postgres")]
    pub(crate) may_go_pooled: bool,
    /// A statement failed because the server connection did not hold the session's
    /// prepared statements: before its next statement the session finds out why
    /// (`passthrough.rs`).
    #[cfg(feature = "postgres")]
    pub(crate) statements_lost: bool,
    /// Reset the connection's state before its next use (a pool's reset on release).
    pub(crate) needs_reset: bool,
    /// Times a pool handed the session out and got it back.
    pub(crate) uses: u64,
    /// The same, as the pool's statistics read them.
    pub(crate) tally: std::sync::Arc<Tally>,
    /// When a pool last handed the session out (for the use-time histogram).
    pub(crate) checked_out: Option<crate::stopwatch::Stopwatch>,
    /// The connection was lost before any COMMIT of the current transaction was sent (in
    /// `BEGIN` or a statement): the server rolls the transaction back, so it may run again
    /// on another session (`Pool::run_in_transaction`). A loss during COMMIT leaves the
    /// outcome unknown and clears it; so does a limit on how long work may take (the
    /// pooler's or the server's).
    pub(crate) lost_before_commit: bool,
    /// The last abort the database reported on this session (SQLSTATE or result code, and
    /// message), so a retry loop knows an attempt was aborted even when the application's
    /// own error type carried the failure out.
    pub(crate) last_abort: Option<(Option<String>, String)>,
    /// SQLite: the deadline the connection's progress handler checks.
    pub(crate) interrupt: Option<std::sync::Arc<crate::deadline::Interrupt>>,
}

impl Meta {
    /// Turns a failure into this crate's error, marking the session broken when its
    /// connection is gone.
    pub(crate) fn fail(&mut self, err: ExecError) -> Error {
        let err = match err {
            ExecError::Crate(e) => return e,
            ExecError::Sql(e) => e,
        };
        self.note_failure(&err);
        let class = classify(&err);
        if matches!(
            class,
            Class::ConnectionLost
                | Class::Overloaded { lost: true }
                | Class::StatementPooling
                | Class::Notified
        ) {
            self.broken = true;
            tracing::debug!(
                target: "session_pool::session", session = %self.name, error = %err,
                "session lost its connection"
            );
        }
        if class == Class::UndeclaredPooler && self.finds_out_why() {
            // Outside a transaction nothing ran (the server refused the statement's Parse
            // or Bind), and the executor runs it again; inside one, it is aborted.
            if self.tx_open {
                return self.aborted(
                    err,
                    "the session's prepared statements were not on the server connection",
                );
            }
        } else if class == Class::UndeclaredPooler {
            // Its statement cache matches no server connection any more.
            self.broken = true;
            tracing::warn!(
                target: "session_pool::session", session = %self.name, error = %err,
                "a transaction-mode pooler moved this session between server connections: \
                 open the database with ?pgbouncer=true"
            );
        }
        if class == Class::StalePlan {
            self.prepared_at.went_stale();
            if self.tx_open {
                // The transaction is aborted; run again, with the statements prepared
                // anew, it can succeed: a retryable abort.
                return self.aborted(
                    err,
                    "a schema change altered the columns a prepared statement returns",
                );
            }
        }
        if class == Class::ConnectionLost {
            // Not when a limit on how long work may take (the pooler's or the server's)
            // ended it: run again on another session, the transaction would meet it again.
            self.lost_before_commit = !crate::error::cut_off_by_duration(&err);
            return Error::SessionNotFound {
                name: self.name.clone(),
                reason: crate::error::lost_reason(&err),
                source: Some(err),
            };
        }
        match typed(class, err) {
            Ok(e) => {
                if let Error::Aborted { code, message, .. } = &e {
                    self.last_abort = Some((code.clone(), message.clone()));
                }
                e
            }
            Err(err) => database_from(err),
        }
    }

    /// A server error that aborted the open transaction for a reason that running it again
    /// mends (`why`): a retryable [`Error::Aborted`].
    fn aborted(&mut self, err: sqlx::Error, why: &str) -> Error {
        let (code, message) = crate::error::describe(&err);
        let message = format!("{message} ({why}; run the transaction again)");
        self.last_abort = Some((code.clone(), message.clone()));
        Error::Aborted {
            code,
            message,
            source: Some(err),
        }
    }

    /// A statement failed because the server connection lacked the session's prepared
    /// statements. True if the session finds out why before its next statement
    /// (`passthrough.rs`): moved by a pooler, it goes over to the pooler mode; on its own
    /// backend, it prepares its statements anew. False if it cannot go over (a declared
    /// mode, a role), and is given up instead.
    #[cfg(feature = "postgres")]
    fn finds_out_why(&mut self) -> bool {
        self.statements_lost = self.may_go_pooled && self.pooled_mark.is_none();
        self.statements_lost
    }

    #[cfg(not(feature = "postgres"))]
    fn finds_out_why(&mut self) -> bool {
        false
    }

    /// The session's connection is to be used as through a transaction pooler from now
    /// on: it names no backend, and its statements carry a mark.
    #[cfg(feature = "postgres")]
    pub(crate) fn go_pooled(&mut self) {
        if self.pooled_mark.is_some() {
            return;
        }
        let host = self.backend.take().map_or(0, |b| b.host);
        let key = uuid::Uuid::parse_str(&self.id).map_or(0, |u| u.as_u64_pair().0);
        self.pooled_mark = Some(crate::pooler::Mark { host, key });
    }

    /// Notes a server error that aborts the open transaction, if one is open (see
    /// `tx_failed`); the first one counts.
    pub(crate) fn note_failure(&mut self, err: &sqlx::Error) {
        if self.tx_open && self.tx_failed.is_none() && crate::error::fails_transaction(err) {
            let (code, message) = crate::error::describe(err);
            self.tx_failed = Some(TxFailure {
                code,
                message,
                retryable: matches!(classify(err), Class::Aborted | Class::StalePlan),
            });
        }
    }

    /// [`fail`](Meta::fail) for a failed COMMIT: a connection lost while it was in flight
    /// leaves its outcome unknown, unless a limit on idle transactions ended it before the
    /// COMMIT was read (rolled back, a lost session).
    pub(crate) fn fail_commit(&mut self, err: sqlx::Error) -> Error {
        let rolled_back = crate::error::cut_off_idle_in_transaction(&err);
        match self.fail(err.into()) {
            lost @ Error::SessionNotFound { .. } if rolled_back => lost,
            Error::SessionNotFound { reason, source, .. } => {
                self.lost_before_commit = false;
                Error::CommitUnknown {
                    message: format!("the connection was lost during COMMIT: {reason}"),
                    source,
                }
            }
            other => other,
        }
    }

    pub(crate) fn not_found(&self, reason: String) -> Error {
        Error::SessionNotFound {
            name: self.name.clone(),
            reason,
            source: None,
        }
    }
}

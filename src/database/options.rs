//! `DatabaseOptions`: how to open a database.

use std::time::Duration;

use super::Database;
#[cfg(doc)]
use crate::error::Error;
use crate::error::Result;

/// How to open a [`Database`]: a URL plus tuning. Start with [`DatabaseOptions::new`].
#[derive(Debug, Clone)]
#[must_use]
pub struct DatabaseOptions {
    pub(super) url: String,
    pub(super) sqlite_busy_timeout: Duration,
    pub(super) connect_timeout: Duration,
    pub(super) check_timeout: Duration,
    pub(super) statement_timeout: Option<Duration>,
    pub(super) trace_query_text: bool,
    pub(super) application_name: String,
    pub(super) transaction_pooler: Option<bool>,
    pub(super) replicas: Vec<String>,
}

impl DatabaseOptions {
    /// Options for `url`, with the defaults: SQLite busy timeout 5 s, connect timeout 10 s,
    /// check timeout 5 s, no statement timeout, PostgreSQL `application_name`
    /// `session-pool` (unless the URL sets one).
    pub fn new(url: impl Into<String>) -> Self {
        DatabaseOptions {
            url: url.into(),
            sqlite_busy_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(10),
            check_timeout: Duration::from_secs(5),
            statement_timeout: None,
            trace_query_text: false,
            application_name: "session-pool".to_owned(),
            transaction_pooler: None,
            replicas: Vec::new(),
        }
    }

    /// How long a SQLite statement waits on a lock held by another connection before it fails
    /// as [`Error::Aborted`] (SQLITE_BUSY). Zero makes conflicts surface at once.
    pub fn sqlite_busy_timeout(mut self, timeout: Duration) -> Self {
        self.sqlite_busy_timeout = timeout;
        self
    }

    /// How long creating a session may take, all of it (connecting, authenticating, learning
    /// its backend pid, assuming its role), before it fails with [`Error::Connect`]. On
    /// PostgreSQL, a URL's `connect_timeout=<seconds>` (libpq's parameter, per host, at
    /// least 2) takes its place.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long a check may take: [`Session::exists`](crate::Session::exists),
    /// [`Session::ping`](crate::Session::ping), the probes of a pool's ping round, the
    /// rollback of an abandoned transaction, and the wait for a cancelled statement to
    /// stop. Past it the session counts as lost, as it does against a server that stopped
    /// answering. Default 5 s.
    pub fn check_timeout(mut self, timeout: Duration) -> Self {
        self.check_timeout = timeout;
        self
    }

    /// Cancels any statement that runs longer than `timeout` (default: none), as asyncpg's
    /// `command_timeout` does, with [`Error::StatementTimeout`]; the session stays usable.
    ///
    /// - PostgreSQL: the server's `statement_timeout`, set when each session is created
    ///   (so it also bounds statements run through [`Session::connection`](crate::Session::connection)).
    ///   If the server does not answer within the timeout plus the check timeout (a hung
    ///   network), the session is dropped as lost.
    /// - SQLite: an interrupt from the connection's progress handler.
    ///
    /// [`ReadContext::with_timeout`](crate::ReadContext::with_timeout) sets one per call.
    pub fn statement_timeout(mut self, timeout: Duration) -> Self {
        self.statement_timeout = Some(timeout);
        self
    }

    /// Puts each statement's text in its tracing span (`db.query.text`); off by default,
    /// since statements may carry what should not be logged.
    pub fn trace_query_text(mut self, on: bool) -> Self {
        self.trace_query_text = on;
        self
    }

    /// PostgreSQL `application_name` of the sessions, when the URL does not set one.
    pub fn application_name(mut self, name: impl Into<String>) -> Self {
        self.application_name = name.into();
        self
    }

    /// PostgreSQL through a transaction-mode pooler (PgBouncer's `pool_mode = transaction`,
    /// Supavisor, Neon's pooled endpoint), where consecutive transactions of one client
    /// connection may run on different server connections. Also set by the URL parameter
    /// `?pgbouncer=true` (as Prisma spells it); `false` (or `?pgbouncer=false`) says there
    /// is none.
    ///
    /// Default: found out. A pooler that keeps prepared statements working in transaction
    /// mode by renaming them (PgBouncer 1.21 and later with `max_prepared_statements`, on
    /// by default since 1.24) gives no error to tell it is there, so until one is
    /// declared either way each new session first asks the server whether its server
    /// connection holds any prepared statement but the one it runs (in the statement that
    /// learns its backend pid, before it sets anything): its own renamed, or another
    /// client's. If so, that session and every later one run in this mode, and a
    /// warning says to add `?pgbouncer=true`. A pooler that passes statement names
    /// through (PgBouncer before 1.21, or 1.21–1.23 with their default
    /// `max_prepared_statements = 0`; PgCat without its statement cache) is found that way
    /// on a server connection another client used, and otherwise by the first statement it
    /// refuses (a session's statement prepared on one server connection is missing on
    /// another): the database goes over to this mode, every session before
    /// its next statement, and the refused statement runs again (in a transaction, it is
    /// a retryable [`Error::Aborted`], which `run_in_transaction` runs again); a warning
    /// says to add `?pgbouncer=true`. Until then sessions run in the direct mode on shared
    /// server connections, so declare the pooler where a
    /// [`statement_timeout`](DatabaseOptions::statement_timeout) is set (each direct
    /// session sets it on the server connection it starts on). A session with a
    /// [`database_role`](crate::SessionOptions) cannot go over and fails with
    /// [`Error::UndeclaredPooler`], which names the fix. Session-mode pooling renames
    /// nothing and keeps the direct mode.
    ///
    /// In this mode:
    ///
    /// - Each statement is one simple-protocol message, its parameters written into the
    ///   text as typed, escaped literals (`E'…'::text`, `'42'::int8`…; see the crate's
    ///   tests for the round trips): one round trip, no prepared statement, nothing that
    ///   spans two protocol Syncs. Results come back in text form, which reads into the
    ///   same [`Value`](crate::Value)s (floats exactly on PostgreSQL 12 and later).
    /// - Sessions set nothing on the server at creation or release (no `statement_timeout`,
    ///   no reset): such settings would land on a shared server connection. A statement
    ///   timeout ([`statement_timeout`](DatabaseOptions::statement_timeout) or
    ///   [`with_timeout`](crate::ReadContext::with_timeout)) is sent with each statement as
    ///   `SET LOCAL statement_timeout` in the same message, so the server cancels it.
    /// - A [`database_role`](crate::SessionOptions) is [`Error::Unsupported`]: connect as
    ///   that role instead.
    /// - A session is a link to the pooler, not to a server backend: `exists()` and
    ///   `ping()` check that link (the pooler connects to the server per transaction), and
    ///   sessions have no backend pid.
    /// - Transactions, snapshots, batches, `run_in_transaction` and the stores work as
    ///   elsewhere: a transaction holds one server connection from `BEGIN` to the end.
    /// - Each statement's text starts with a comment naming a random key of the session's
    ///   own (`/* session-pool 0123456789abcdef */`), by which a statement cut off by a
    ///   dropped future is found in `pg_stat_activity` and cancelled.
    ///
    /// Statement texts are read as `standard_conforming_strings = on` reads them (the
    /// default since PostgreSQL 9.1) to find the `$n` placeholders. sqlx's startup
    /// parameter `extra_float_digits` is never sent, in any mode, so PgBouncer's default
    /// `ignore_startup_parameters` accepts the connection.
    pub fn transaction_pooler(mut self, on: bool) -> Self {
        self.transaction_pooler = Some(on);
        self
    }

    /// Adds a read replica of this PostgreSQL database (a streaming standby; call once per
    /// replica). Reads with a [`Staleness`](crate::Staleness) bound go to a replica that is
    /// fresh enough, through [`Session::read_at`](crate::Session::read_at),
    /// [`Session::snapshot_at`](crate::Session::snapshot_at) and the stores'
    /// `with_staleness`; writes and strong reads stay on this database. Each replica is
    /// opened with these same options (its URL may carry its own parameters).
    pub fn replica(mut self, url: impl Into<String>) -> Self {
        self.replicas.push(url.into());
        self
    }

    /// Parses the URL, checks that the database can be reached (creating a SQLite file if it
    /// is missing) and returns the [`Database`].
    pub async fn open(self) -> Result<Database> {
        Database::open_with(self).await
    }
}

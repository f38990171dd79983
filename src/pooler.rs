//! Whether a transaction-mode pooler stands between a database's sessions and its server:
//! as the URL or options declared it, or as a session found out when it was created.
//!
//! PgBouncer 1.21 and later (with `max_prepared_statements`, on by default since 1.24)
//! keep sqlx's prepared statements working in transaction mode by renaming them on the
//! server connections (`PGBOUNCER_<n>`), so nothing fails there to say that consecutive
//! transactions of one session run on different server connections. What a direct session
//! sets on its connection would then land on shared server connections: its
//! `statement_timeout`, its `SET ROLE`, its reset on release; and its backend pid, which
//! timeouts and leak handling signal, would name another client's backend. So unless the
//! pooler is declared either way, a new session asks the server whether the statement it
//! is running was renamed, and the database goes over to the pooler mode if it was.
//! Session-mode pooling does not rename, so it keeps the direct mode.

use std::sync::atomic::{AtomicBool, Ordering};

/// A database's knowledge of a transaction pooler in front of its server.
#[derive(Debug)]
pub(crate) struct PoolerMode {
    /// `?pgbouncer=` or `DatabaseOptions::transaction_pooler`, if given.
    declared: Option<bool>,
    /// A session found its statements renamed by a pooler.
    found: AtomicBool,
}

impl PoolerMode {
    pub(crate) fn new(declared: Option<bool>) -> Self {
        PoolerMode {
            declared,
            found: AtomicBool::new(false),
        }
    }

    /// Sessions run in the pooler mode: declared, or found.
    pub(crate) fn pooled(&self) -> bool {
        self.declared == Some(true) || self.found.load(Ordering::Relaxed)
    }

    /// A new direct session checks for a pooler: none was declared either way, and none
    /// found yet.
    pub(crate) fn detects(&self) -> bool {
        self.declared.is_none() && !self.found.load(Ordering::Relaxed)
    }

    /// A session of `database` found a transaction pooler: later sessions connect in the
    /// pooler mode. Warns once per database, since the URL should say so.
    pub(crate) fn found(&self, database: &str) {
        if !self.found.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                target: "session_pool::database",
                database,
                "a transaction-mode pooler renamed this session's prepared statements \
                 (PgBouncer 1.21 or later): sessions now run as with `?pgbouncer=true`, \
                 setting nothing on shared server connections; add `?pgbouncer=true` to \
                 the URL to say so"
            );
        }
    }
}

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

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

/// Whether the server behind the pooler takes a transaction's tag (see [`TxTag`]).
const TAGS_UNKNOWN: u8 = 0;
#[cfg(feature = "postgres")]
const TAGS_TAKEN: u8 = 1;
#[cfg(feature = "postgres")]
const TAGS_REFUSED: u8 = 2;

/// The mark a session's transactions carry through a transaction pooler: a shared
/// transaction-level advisory lock on a key of the session's own, taken with `BEGIN` in
/// the same message (`pg_try_advisory_xact_lock_shared`, which never waits). The pooler
/// hides which server backend runs the transaction, so a statement of it cut off by a
/// dropped future (a cancelled request) could not otherwise be cancelled, and would run
/// on holding the transaction's locks; `pg_locks` names the backend holding the key, for
/// exactly as long as the transaction lasts, so the backend found is never another
/// client's. (Outside a transaction a statement carries no tag: it runs to its end, or to
/// its statement timeout.)
#[cfg(feature = "postgres")]
#[derive(Debug, Clone, Copy)]
pub(crate) struct TxTag {
    /// Which of the database's hosts the session's pooler is.
    pub(crate) host: usize,
    /// The advisory lock's key: random, from the session's id.
    pub(crate) key: i64,
}

#[cfg(feature = "postgres")]
impl TxTag {
    /// The statement that takes the tag, sent after `BEGIN` in the same message.
    pub(crate) fn take(&self) -> String {
        format!("SELECT pg_try_advisory_xact_lock_shared({})", self.key)
    }

    /// A query for the pid of the backend holding the tag (none once its transaction
    /// ended), for `pg_cancel_backend` from another connection.
    pub(crate) fn holder(&self) -> String {
        // pg_locks shows a bigint key as its two halves, with objsubid 1.
        let key = self.key as u64;
        format!(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
             AND classid = {} AND objid = {} AND objsubid = 1 AND pid <> pg_backend_pid()",
            key >> 32,
            key & 0xffff_ffff
        )
    }
}

/// A database's knowledge of a transaction pooler in front of its server.
#[derive(Debug)]
pub(crate) struct PoolerMode {
    /// `?pgbouncer=` or `DatabaseOptions::transaction_pooler`, if given.
    declared: Option<bool>,
    /// A session found its statements renamed by a pooler.
    found: AtomicBool,
    /// Whether the server takes transactions' tags: asked by the first session in this
    /// mode (`TAGS_*`).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    tags: AtomicU8,
}

impl PoolerMode {
    pub(crate) fn new(declared: Option<bool>) -> Self {
        PoolerMode {
            declared,
            found: AtomicBool::new(false),
            tags: AtomicU8::new(TAGS_UNKNOWN),
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

    /// Whether transactions carry a tag: `None` until a session has asked the server.
    #[cfg(feature = "postgres")]
    pub(crate) fn tags(&self) -> Option<bool> {
        match self.tags.load(Ordering::Relaxed) {
            TAGS_TAKEN => Some(true),
            TAGS_REFUSED => Some(false),
            _ => None,
        }
    }

    /// What a session found: whether the server takes tags. Warns once if it does not.
    #[cfg(feature = "postgres")]
    pub(crate) fn found_tags(&self, taken: bool, database: &str) {
        let now = if taken { TAGS_TAKEN } else { TAGS_REFUSED };
        if self.tags.swap(now, Ordering::Relaxed) != now && !taken {
            tracing::warn!(
                target: "session_pool::database",
                database,
                "the server behind the transaction pooler has no advisory locks: a \
                 statement cut off inside a transaction cannot be cancelled, and runs on \
                 to its end or its statement timeout"
            );
        }
    }
}

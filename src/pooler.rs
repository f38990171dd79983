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
//! pooler is declared either way, a new session asks the server whether its server
//! connection holds prepared statements other than the one it is running (renamed, or
//! another client's), and the database goes over to the pooler mode if it does.
//! Session-mode pooling renames nothing and resets server connections between clients,
//! so it keeps the direct mode. A pooler that passes names through and gave the session a
//! new server connection is found later, at the first statement it refuses
//! (`session/passthrough.rs`).

use std::sync::atomic::{AtomicBool, Ordering};

/// The mark a session's statements carry through a transaction pooler: a comment at the
/// head of each statement's text naming a random key of the session's own. The pooler hides
/// which server backend runs a statement, so one cut off by a dropped future (a cancelled
/// request) could not otherwise be cancelled, and would run on holding its locks;
/// `pg_stat_activity` shows each backend's running text, so the backend running the
/// session's statement is found by its head. Free on the server (the lexer skips the
/// comment) and on the wire (36 bytes).
///
/// Inside a transaction the pooler keeps the backend for this session until its `ROLLBACK`,
/// so the backend found is never another client's. Outside one, the statement could end,
/// and the pooler lend the backend to another client's statement, in the microseconds
/// between the lookup and the signal: only a statement that had already run past the
/// settle's first 20 ms, ending in that instant, could make the cancel land elsewhere.
#[cfg(feature = "postgres")]
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mark {
    /// Which of the database's hosts the session's pooler is.
    pub(crate) host: usize,
    /// Random, from the session's id.
    pub(crate) key: u64,
}

#[cfg(feature = "postgres")]
impl Mark {
    /// The length of the head [`write`](Mark::write) writes.
    pub(crate) const LEN: usize = 36;

    /// Writes the statement head `/* session-pool <key> */ `.
    pub(crate) fn write(key: u64, out: &mut String) {
        use std::fmt::Write;
        let _ = write!(out, "/* session-pool {key:016x} */ ");
    }

    /// A query for the pid of the backend running a statement with this mark, for
    /// `pg_cancel_backend` from another connection.
    pub(crate) fn running(&self) -> String {
        format!(
            "SELECT pid FROM pg_stat_activity WHERE state = 'active' \
             AND datname = current_database() AND pid <> pg_backend_pid() \
             AND query LIKE '/* session-pool {:016x} */%'",
            self.key
        )
    }
}

/// A database role through a transaction pooler, refused: the error says why.
#[cfg(feature = "postgres")]
pub(crate) fn role_refused() -> crate::Error {
    crate::Error::Unsupported(
        "a database role through a transaction pooler: `SET ROLE` would land on a shared \
         server connection; connect as that role instead"
            .into(),
    )
}

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

    /// None was declared either way, so one may be found: by a new session whose statement
    /// was renamed, or by a session moved to another server connection.
    #[cfg(feature = "postgres")]
    pub(crate) fn undeclared(&self) -> bool {
        self.declared.is_none()
    }

    /// A new session of `database` found its server connection shared by a transaction
    /// pooler (its first statement renamed, or other clients' statements there): later
    /// sessions connect in the pooler mode. Warns once per database, since the URL should
    /// say so.
    pub(crate) fn found(&self, database: &str) {
        if !self.found.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                target: "session_pool::database",
                database,
                "a transaction-mode pooler shares this session's server connection (its \
                 prepared statement renamed, as PgBouncer 1.21 or later and PgCat do, or \
                 other clients' statements on it): sessions now run as with \
                 `?pgbouncer=true`, setting nothing on shared server connections; add \
                 `?pgbouncer=true` to the URL to say so"
            );
        }
    }

    /// A session of `database` ran on another server connection than the one its
    /// statements were prepared on: a transaction-mode pooler that passes statement names
    /// through (PgBouncer before 1.21, or with `max_prepared_statements = 0`; PgCat without
    /// its statement cache). Sessions go over to the pooler mode (`session/passthrough.rs`).
    /// Warns once per database: what direct sessions set before (a statement timeout)
    /// stays on the server connections they set it on.
    #[cfg(feature = "postgres")]
    pub(crate) fn found_passing(&self, database: &str) {
        if !self.found.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                target: "session_pool::database",
                database,
                "a transaction-mode pooler moved a session to another server connection, \
                 where its prepared statements were not: sessions now run as with \
                 `?pgbouncer=true`; add `?pgbouncer=true` to the URL so that they do from \
                 the start (a statement timeout sessions set before stays on the server \
                 connections they set it on)"
            );
        }
    }
}

#[cfg(all(test, feature = "postgres"))]
mod tests {
    use super::Mark;

    #[test]
    fn the_mark_is_as_long_as_said_and_found_by_its_own_query() {
        for key in [0, 1, u64::MAX, 0x0123_4567_89ab_cdef] {
            let mut head = String::new();
            Mark::write(key, &mut head);
            assert_eq!(head.len(), Mark::LEN, "{head}");
            let running = Mark { host: 0, key }.running();
            let pattern = head.trim_end();
            assert!(running.contains(&format!("LIKE '{pattern}%'")), "{running}");
        }
    }
}

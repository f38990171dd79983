//! A session's prepared statements across schema changes.
//!
//! A migration that changes the columns a statement returns (a column added under a
//! `SELECT *`, a column retyped under a `RETURNING`) leaves that statement's prepared form
//! stale on every connection that has it: PostgreSQL fails each later run with `0A000`
//! ("cached plan must not change result type") until the connection forgets it. One
//! session finding out tells the others: the database counts the stale statements its
//! sessions met, and a session whose statement cache predates the count clears it before
//! its next statement. After a migration a pool pays one failed statement (run again
//! where that is safe, `exec.rs`), not one per session, and a transaction on another
//! session is not aborted by it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::Meta;
use super::life::upkeep;
use crate::conn::RawConnection;
use crate::database::Database;
use crate::error::Result;

/// How many stale statements the sessions of one database have met; shared by them.
#[derive(Debug, Clone, Default)]
pub(crate) struct SchemaChanges(Arc<AtomicU64>);

impl SchemaChanges {
    fn now(&self) -> u64 {
        // Relaxed: a session that reads an old count clears its cache one statement later,
        // and meets at worst one more stale statement, which it handles the same way.
        self.0.load(Ordering::Relaxed)
    }
}

/// The count a session's statement cache was last cleared at.
#[derive(Debug)]
pub(crate) struct PreparedAt {
    changes: SchemaChanges,
    seen: u64,
}

impl PreparedAt {
    /// A fresh connection's cache: nothing in it is stale.
    pub(crate) fn new(changes: &SchemaChanges) -> Self {
        PreparedAt {
            seen: changes.now(),
            changes: changes.clone(),
        }
    }

    /// A statement of this session failed as stale: every session of the database,
    /// this one included, prepares its statements anew.
    pub(crate) fn went_stale(&self) {
        self.changes.0.fetch_add(1, Ordering::Relaxed);
    }

    /// The count to clear the cache up to, when it is behind.
    pub(crate) fn behind(&self) -> Option<u64> {
        let now = self.changes.now();
        (now != self.seen).then_some(now)
    }
}

/// Before a statement, in a transaction or not: clears the connection's statement cache if
/// a stale statement met since its last clearing (on any session of the database) left it
/// behind. Otherwise nothing but a read of the shared count.
pub(crate) async fn catch_up(
    conn: RawConnection<'_>,
    meta: &mut Meta,
    db: &Database,
) -> Result<()> {
    match meta.prepared_at.behind() {
        None => Ok(()),
        // Boxed: rare, and a round trip's state would otherwise sit in every statement's
        // future.
        Some(to) => Box::pin(prepare_anew(conn, meta, db.check_timeout(), to)).await,
    }
}

/// Clears the connection's statement cache up to `to` (from [`PreparedAt::behind`]),
/// within the check timeout: one round trip, once per schema change. (Closing statements
/// is allowed inside a transaction, an aborted one too.)
async fn prepare_anew(
    mut conn: RawConnection<'_>,
    meta: &mut Meta,
    timeout: Duration,
    to: u64,
) -> Result<()> {
    let clear = async { Ok(conn.clear_statements().await?) };
    upkeep(meta, timeout, "the clearing of its statement cache", clear).await?;
    meta.prepared_at.seen = to;
    tracing::debug!(target: "session_pool::session", session = %meta.name,
        "statement cache cleared after a schema change");
    Ok(())
}

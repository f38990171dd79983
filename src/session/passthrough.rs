//! A transaction pooler that passes sqlx's statement names through to its server
//! connections (PgBouncer before 1.21, or with `max_prepared_statements = 0`, as 1.21–1.23
//! ship; PgCat without its statement cache), found by the statements it loses.
//!
//! Nothing tells a new session it stands behind one: its first statement runs on one
//! server connection as a whole. Its later statements, prepared on one server connection,
//! are bound on another, where the name is missing (`26000`) or another client's (`42P05`):
//! the server refuses them before they run. The session then asks which backend it is on
//! and whether that backend holds any of sqlx's statements. On its own backend, with none
//! there, its statements went (`DEALLOCATE ALL`, `DISCARD ALL` run through it): it prepares
//! them anew and stays direct. Anywhere else, a pooler moved it: the database goes over to
//! the pooler mode (`crate::pooler`), this session at once and every other one before its
//! next statement, and the refused statement runs again (`exec.rs`); in a transaction, the
//! error is a retryable abort. Before this a session stayed broken, and so did every
//! session that replaced it, until the URL said `?pgbouncer=true`.

use super::Meta;
use super::life::upkeep;
use crate::conn::RawConnection;
use crate::database::Database;
use crate::error::Result;

/// After a statement was refused for a prepared statement the server connection did not
/// hold (`Meta::statements_lost`): finds out why, as the module says. True if the session
/// went over to the pooler mode (its connection is to be used as a pooled one from now on:
/// [`RawConnection::into_pooled`]); false if it stays direct, its statement cache cleared.
pub(crate) async fn find_out(
    conn: RawConnection<'_>,
    meta: &mut Meta,
    db: &Database,
) -> Result<bool> {
    let (RawConnection::Postgres(c), Some(backend)) = (conn, meta.backend) else {
        meta.statements_lost = false;
        return Ok(false);
    };
    let timeout = db.check_timeout();
    // The simple protocol: nothing prepared, so nothing of it can be missing.
    let mut facts = None;
    let ask = async {
        use sqlx::Row;
        let sql = "SELECT pg_backend_pid(), EXISTS (SELECT 1 FROM pg_prepared_statements \
                   WHERE left(name, 7) = 'sqlx_s_')";
        let row = match sqlx::raw_sql(sql).fetch_one(&mut *c).await {
            // A PostgreSQL-compatible server without the view: the pid alone.
            Err(sqlx::Error::Database(d)) if d.code().as_deref() == Some("42P01") => {
                sqlx::raw_sql("SELECT pg_backend_pid(), false")
                    .fetch_one(&mut *c)
                    .await?
            }
            other => other?,
        };
        facts = Some((row.try_get::<i32, _>(0)?, row.try_get::<bool, _>(1)?));
        Ok(())
    };
    upkeep(meta, timeout, "the check of its backend", ask).await?;
    // Cleared only now: dropped before it knew, the session finds out at its next use.
    meta.statements_lost = false;
    if facts == Some((backend.pid, false)) {
        let clear = async { Ok(RawConnection::Postgres(c).clear_statements().await?) };
        upkeep(meta, timeout, "the clearing of its statement cache", clear).await?;
        tracing::debug!(target: "session_pool::session", session = %meta.name,
            "the session's prepared statements were gone from its backend: prepared anew");
        return Ok(false);
    }
    db.found_passing_pooler();
    meta.go_pooled();
    tracing::debug!(target: "session_pool::session", session = %meta.name,
        "moved to another server connection by a transaction pooler: now in the pooler mode");
    Ok(true)
}

//! [`DatabaseSessionTables`]: the tables google-adk's own `DatabaseSessionService` keeps
//! sessions in (`sessions`, `events`, `app_states`, `user_states` and
//! `adk_internal_metadata`, schema version 1), so that a Python ADK app and this crate's
//! [`SessionService`](super::SessionService) share one database.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};

use super::event::{Event, JsonMap};
use crate::error::{Error, Result};
use crate::param::Param;
use crate::pool::{AbstractSessionPool, SharedPool};
use crate::session::{Context, ReadContext, WriteContext};
use crate::support::{checkout, is_postgres, retry_idempotent};

mod decode;
mod event_data;
mod read;
mod sql;
mod write;

/// The tables of google-adk's `DatabaseSessionService` (Python, schema version 1, as
/// google-adk 1.22 and later through 2.x create them), over any
/// [`AbstractSessionPool`].
///
/// Give it to [`SessionService::on_tables`](super::SessionService::on_tables): the service
/// then reads and writes what Python's `DatabaseSessionService(db_url=…)` does, in its
/// form, so either side may create the tables and each sees the other's sessions, events
/// and `app:` / `user:` state:
///
/// - sessions are keyed by app, user and id together; state is JSONB on PostgreSQL and
///   JSON text on SQLite; times are naive UTC, as SQLAlchemy stores them;
/// - each event is kept whole in `event_data`, as pydantic's
///   `model_dump(exclude_none=True, mode="json")` writes it (fields ADK has and
///   [`Event`] does not stay in [`Event::extra`] and are written back);
/// - `app:` and `user:` keys live in `app_states` and `user_states` without their prefix;
///   creating a session makes both rows, as Python's service needs them to append;
/// - an append is a compare-and-swap on the session's `update_time`, which becomes the
///   event's timestamp, as in Python: a copy older than the stored session is
///   [`Error::StaleSession`] here and `StaleSessionError` there;
/// - `list_sessions` returns ADK's order, oldest update first.
///
/// The legacy schema version 0 (one column per event field, pickled actions) is refused
/// with [`Error::Unsupported`]: migrate it with `adk migrate session`. The table names are
/// ADK's and fixed; on PostgreSQL they are looked up in the connection's `search_path`.
pub struct DatabaseSessionTables {
    pool: SharedPool,
    /// The tables were found in schema version 1 (or made so); asked once.
    ready: Arc<AtomicBool>,
}

impl Clone for DatabaseSessionTables {
    fn clone(&self) -> Self {
        DatabaseSessionTables {
            pool: Arc::clone(&self.pool),
            ready: Arc::clone(&self.ready),
        }
    }
}

impl fmt::Debug for DatabaseSessionTables {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseSessionTables")
            .field("ready", &self.ready.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// What the catalog says of ADK's tables.
#[derive(Debug, PartialEq, Eq)]
enum Found {
    /// Schema version 1.
    Ready,
    /// No events table yet.
    Missing,
}

/// A session as read, with its app's and user's state.
pub(crate) struct Loaded {
    pub(crate) id: String,
    pub(crate) user_id: String,
    pub(crate) state: JsonMap,
    pub(crate) app: JsonMap,
    pub(crate) user: JsonMap,
    pub(crate) update_time: DateTime<Utc>,
    pub(crate) events: Vec<Event>,
}

impl DatabaseSessionTables {
    /// The tables on `pool`'s database. Nothing is sent until a call.
    pub fn new(pool: impl AbstractSessionPool) -> Self {
        DatabaseSessionTables {
            pool: Arc::new(pool),
            ready: Arc::default(),
        }
    }

    /// The pool the tables are reached through.
    pub fn pool(&self) -> &SharedPool {
        &self.pool
    }

    /// Creates the five tables and the events index if they do not exist, as Python's
    /// `DatabaseSessionService.prepare_tables` does, and records schema version 1. Running
    /// it again, or after Python made them, changes nothing. Tables of schema version 0
    /// are [`Error::Unsupported`], before anything is added.
    pub async fn create_tables(&self) -> Result<()> {
        retry_idempotent(|| self.create_tables_once()).await
    }

    async fn create_tables_once(&self) -> Result<()> {
        let mut session = checkout(&self.pool).await?;
        let postgres = is_postgres(session.database().dialect());
        let mut tx = session.transaction().await?;
        if postgres {
            // Concurrent `CREATE TABLE IF NOT EXISTS` can still collide in the catalog.
            tx.execute_sql(
                "SELECT pg_advisory_xact_lock(hashtext('session_pool.adk.database_tables'))",
                &[],
            )
            .await?;
        }
        inspect(&mut tx, postgres).await?;
        for statement in sql::ddl(postgres) {
            tx.execute_update(statement, &[]).await?;
        }
        tx.execute_update(sql::mark_version(postgres), &[]).await?;
        tx.commit().await?;
        self.ready.store(true, Ordering::Release);
        tracing::debug!(target: "session_pool::adk", "ADK DatabaseSessionService tables ready");
        Ok(())
    }

    /// Checks, once, that the tables are ADK's schema version 1.
    async fn ensure(&self, ctx: &mut impl Context, postgres: bool) -> Result<()> {
        if self.ready.load(Ordering::Acquire) {
            return Ok(());
        }
        match Box::pin(inspect(ctx, postgres)).await? {
            Found::Ready => {
                self.ready.store(true, Ordering::Release);
                Ok(())
            }
            Found::Missing => Err(Error::NotFound(
                "the tables of ADK's DatabaseSessionService (sessions, events, app_states, \
                 user_states) are not in this database: call \
                 DatabaseSessionTables::create_tables, or let Python's service create them"
                    .into(),
            )),
        }
    }
}

/// What the catalog says of the tables: version 1, or none yet; any other schema is
/// [`Error::Unsupported`].
async fn inspect(ctx: &mut impl Context, postgres: bool) -> Result<Found> {
    let rows = ctx
        .exec()
        .await?
        .map_rows(sql::columns(postgres), &[] as &[Param<'_>], |r| {
            Ok((r.get::<String>(0)?, r.get::<String>(1)?))
        })
        .await?;
    let has = |table: &str, column: &str| rows.iter().any(|(t, c)| t == table && c == column);
    let has_table = |table: &str| rows.iter().any(|(t, _)| t == table);
    if has_table("adk_internal_metadata") {
        let version = ctx
            .exec()
            .await?
            .map_rows(sql::VERSION, &[] as &[Param<'_>], |r| r.get::<String>(0))
            .await?;
        match version.first().map(String::as_str) {
            Some("1") => {}
            Some(other) => {
                return Err(Error::Unsupported(format!(
                    "ADK's session tables are at schema version {other}; this crate reads \
                     and writes version 1 (google-adk 1.22 to 2.x)"
                )));
            }
            // Python's `prepare_tables` adds the row to a table it just made.
            None if !has_table("events") => return Ok(Found::Missing),
            None => {
                return Err(Error::Unsupported(
                    "adk_internal_metadata holds no schema_version: the ADK session \
                     tables are malformed (Python's DatabaseSessionService refuses them too)"
                        .into(),
                ));
            }
        }
    } else if has("events", "actions") && !has("events", "event_data") {
        return Err(Error::Unsupported(
            "the events table is ADK's legacy schema version 0 (one column per field, \
             pickled actions); migrate it with `adk migrate session` (google-adk) first"
                .into(),
        ));
    }
    if !has_table("events") && !has_table("sessions") {
        return Ok(Found::Missing);
    }
    for (table, column) in [
        ("sessions", "app_name"),
        ("sessions", "update_time"),
        ("events", "event_data"),
        ("events", "session_id"),
    ] {
        if !has(table, column) {
            return Err(Error::Unsupported(format!(
                "the `{table}` table has no `{column}` column: it is not the table of ADK's \
                 DatabaseSessionService (schema version 1). Point this pool at another \
                 database or schema"
            )));
        }
    }
    Ok(Found::Ready)
}

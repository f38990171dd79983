//! [`DatabaseSessionTables`]: the tables google-adk's own `DatabaseSessionService` keeps
//! sessions in (`sessions`, `events`, `app_states`, `user_states` and
//! `adk_internal_metadata`, schema version 1), so that a Python ADK app and this crate's
//! [`SessionService`](super::SessionService) share one database.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value as Json;

use super::event::{Event, JsonMap};
use super::scopes::{self, Split};
use crate::conn::{ExecError, ExecResult, RowRef};
use crate::error::{Error, Result};
use crate::param::Param;
use crate::pool::{AbstractSessionPool, SharedPool};
use crate::session::{Context, ReadContext, WriteContext};
use crate::support::{check_id, check_text, checkout, is_postgres, read_rows, retry_idempotent};

mod event_data;
mod sql;

/// The longest `invocation_id` the events table holds (`VARCHAR(256)`).
const MAX_INVOCATION_ID: usize = 256;

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

    /// Creates a session; `state` is split by scope already. An id in use for this app and
    /// user is [`Error::AlreadyExists`].
    pub(crate) async fn create(
        &self,
        app: &str,
        user: &str,
        id: &str,
        split: &Split,
    ) -> Result<Loaded> {
        check_id("app_name", app)?;
        check_id("user_id", user)?;
        check_id("session_id", id)?;
        let now = micros(Utc::now());
        let mut session = checkout(&self.pool).await?;
        let postgres = is_postgres(session.database().dialect());
        self.ensure(&mut *session, postgres).await?;
        let state = Json::Object(split.session.clone());
        let taken = || Error::AlreadyExists(format!("session `{id}` of {app}/{user}"));
        let (app_state, user_state) = if postgres {
            let app_delta = Json::Object(split.app.clone());
            let user_delta = Json::Object(split.user.clone());
            let params = [
                Param::Text(app),
                Param::Text(user),
                Param::Text(id),
                Param::Json(&app_delta),
                Param::Json(&user_delta),
                Param::Json(&state),
                Param::Timestamp(now),
            ];
            let rows = session
                .exec()
                .await?
                .map_rows(sql::CREATE_PG, &params, |r| {
                    Ok((r.get::<Option<bool>>(0)?, json_at(r, 1)?, json_at(r, 2)?))
                })
                .await?;
            match rows.into_iter().next() {
                Some((Some(true), a, u)) => (object(a), object(u)),
                _ => return Err(taken()),
            }
        } else {
            let at = naive_text(now);
            let text = state.to_string();
            let mut tx = session.transaction().await?;
            let inserted = tx
                .exec()
                .await?
                .execute(
                    sql::CREATE_SQLITE,
                    &[
                        Param::Text(app),
                        Param::Text(user),
                        Param::Text(id),
                        Param::Text(&text),
                        Param::Text(&at),
                    ],
                )
                .await?;
            if inserted == 0 {
                tx.rollback().await?;
                return Err(taken());
            }
            let app_state = merge_sqlite(&mut tx, &[app], &split.app, &at).await?;
            let user_state = merge_sqlite(&mut tx, &[app, user], &split.user, &at).await?;
            tx.commit().await?;
            (app_state, user_state)
        };
        Ok(Loaded {
            id: id.to_owned(),
            user_id: user.to_owned(),
            state: split.session.clone(),
            app: app_state,
            user: user_state,
            update_time: now,
            events: Vec::new(),
        })
    }

    /// The session with its app's and user's state and the events `limit`, `after` and
    /// `oldest` select, in chronological order; one statement.
    pub(crate) async fn get(
        &self,
        app: &str,
        user: &str,
        id: &str,
        after: Option<DateTime<Utc>>,
        limit: Option<usize>,
        oldest: bool,
    ) -> Result<Option<Loaded>> {
        check_id("app_name", app)?;
        check_id("user_id", user)?;
        check_id("session_id", id)?;
        let mut session = checkout(&self.pool).await?;
        let postgres = is_postgres(session.database().dialect());
        self.ensure(&mut *session, postgres).await?;
        let after_text;
        let after = match after.map(micros) {
            None => Param::Null,
            Some(t) if postgres => Param::Timestamp(t),
            Some(t) => {
                after_text = naive_text(t);
                Param::Text(&after_text)
            }
        };
        let limit = match (limit, postgres) {
            (Some(n), _) => Param::Int(i64::try_from(n).unwrap_or(i64::MAX)),
            (None, true) => Param::Null,
            (None, false) => Param::Int(-1),
        };
        let params = [
            Param::Text(app),
            Param::Text(user),
            Param::Text(id),
            after,
            limit,
        ];
        let rows = read_rows(
            &self.pool,
            session,
            crate::Staleness::Strong,
            sql::get(postgres, oldest),
            &params,
            |r| {
                Ok((
                    object(json_at(r, 0)?),
                    time_at(r, 1)?,
                    object(json_at(r, 2)?),
                    object(json_at(r, 3)?),
                    json_at(r, 4)?,
                ))
            },
        )
        .await?;
        let Some((state, update_time, app_state, user_state, events)) = rows.into_iter().next()
        else {
            return Ok(None);
        };
        Ok(Some(Loaded {
            id: id.to_owned(),
            user_id: user.to_owned(),
            state,
            app: app_state,
            user: user_state,
            update_time,
            events: events_of(events),
        }))
    }

    /// The app's sessions, of one user when `user` is given, oldest update first.
    pub(crate) async fn list(&self, app: &str, user: Option<&str>) -> Result<Vec<Loaded>> {
        check_id("app_name", app)?;
        if let Some(user) = user {
            check_id("user_id", user)?;
        }
        let mut session = checkout(&self.pool).await?;
        let postgres = is_postgres(session.database().dialect());
        self.ensure(&mut *session, postgres).await?;
        let params = [Param::Text(app), user.map_or(Param::Null, Param::Text)];
        read_rows(
            &self.pool,
            session,
            crate::Staleness::Strong,
            sql::list(postgres),
            &params,
            |r| {
                Ok(Loaded {
                    id: r.get(0)?,
                    user_id: r.get(1)?,
                    state: object(json_at(r, 2)?),
                    update_time: time_at(r, 3)?,
                    app: object(json_at(r, 4)?),
                    user: object(json_at(r, 5)?),
                    events: Vec::new(),
                })
            },
        )
        .await
    }

    /// Deletes the session and its events; whether it existed.
    pub(crate) async fn delete(&self, app: &str, user: &str, id: &str) -> Result<bool> {
        check_id("app_name", app)?;
        check_id("user_id", user)?;
        check_id("session_id", id)?;
        retry_idempotent(|| async {
            let mut session = checkout(&self.pool).await?;
            let postgres = is_postgres(session.database().dialect());
            self.ensure(&mut *session, postgres).await?;
            let params = [Param::Text(app), Param::Text(user), Param::Text(id)];
            let deleted = if postgres {
                session
                    .exec()
                    .await?
                    .execute(sql::DELETE_PG, &params)
                    .await?
            } else {
                let mut tx = session.transaction().await?;
                tx.exec()
                    .await?
                    .execute(sql::DELETE_EVENTS_SQLITE, &params)
                    .await?;
                let n = tx
                    .exec()
                    .await?
                    .execute(sql::DELETE_SESSION_SQLITE, &params)
                    .await?;
                tx.commit().await?;
                n
            };
            Ok(deleted > 0)
        })
        .await
    }

    /// The app and user of each session with this id (ADK-Rust names a session by id alone).
    #[cfg(feature = "adk-rust")]
    pub(crate) async fn owners(&self, id: &str) -> Result<Vec<(String, String)>> {
        check_id("session_id", id)?;
        let mut session = checkout(&self.pool).await?;
        let postgres = is_postgres(session.database().dialect());
        self.ensure(&mut *session, postgres).await?;
        let params = [Param::Text(id)];
        read_rows(
            &self.pool,
            session,
            crate::Staleness::Strong,
            sql::BY_ID,
            &params,
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .await
    }

    /// Appends `event` (its state delta already split into `split`, `temp:` keys gone) to
    /// the session if it is still at `expected`; returns the session's new update time,
    /// which is the event's timestamp to the microsecond.
    pub(crate) async fn append(
        &self,
        app: &str,
        user: &str,
        id: &str,
        expected: DateTime<Utc>,
        event: &Event,
        split: &Split,
    ) -> Result<DateTime<Utc>> {
        check_id("app_name", app)?;
        check_id("user_id", user)?;
        check_id("session_id", id)?;
        check_id("event id", &event.id)?;
        if let Some(inv) = &event.invocation_id {
            check_text("invocation_id", inv, MAX_INVOCATION_ID)?;
        }
        let at = micros(event.timestamp);
        let expected = micros(expected);
        let data = event_data::to_json(event, at);
        let invocation = event.invocation_id.as_deref().unwrap_or("");
        let mut session = checkout(&self.pool).await?;
        let postgres = is_postgres(session.database().dialect());
        self.ensure(&mut *session, postgres).await?;
        let swapped = if postgres {
            let delta = Json::Object(split.session.clone());
            let app_delta = Json::Object(split.app.clone());
            let user_delta = Json::Object(split.user.clone());
            let params = [
                Param::Text(app),
                Param::Text(user),
                Param::Text(id),
                Param::Json(&delta),
                Param::Timestamp(expected),
                Param::Timestamp(at),
                Param::Json(&app_delta),
                Param::Json(&user_delta),
                Param::Text(&event.id),
                Param::Text(invocation),
                Param::Json(&data),
            ];
            let rows = session
                .exec()
                .await?
                .map_rows(sql::APPEND_PG, &params, |r| r.get::<Option<bool>>(0))
                .await?;
            rows.first().copied().flatten().unwrap_or(false)
        } else {
            let at_text = naive_text(at);
            let key = [Param::Text(app), Param::Text(user), Param::Text(id)];
            let mut tx = session.transaction().await?;
            let current = tx
                .exec()
                .await?
                .map_rows(sql::SESSION_SQLITE, &key, |r| {
                    Ok((object(json_at(r, 0)?), time_at(r, 1)?))
                })
                .await?;
            match current.into_iter().next() {
                Some((mut state, version)) if version == expected => {
                    state.extend(split.session.iter().map(|(k, v)| (k.clone(), v.clone())));
                    let state = Json::Object(state).to_string();
                    let mut params = key.to_vec();
                    params.extend([Param::Text(&state), Param::Text(&at_text)]);
                    tx.exec()
                        .await?
                        .execute(sql::UPDATE_SESSION_SQLITE, &params)
                        .await?;
                    if !split.app.is_empty() {
                        merge_sqlite(&mut tx, &[app], &split.app, &at_text).await?;
                    }
                    if !split.user.is_empty() {
                        merge_sqlite(&mut tx, &[app, user], &split.user, &at_text).await?;
                    }
                    let data = data.to_string();
                    tx.exec()
                        .await?
                        .execute(
                            sql::INSERT_EVENT_SQLITE,
                            &[
                                Param::Text(&event.id),
                                Param::Text(app),
                                Param::Text(user),
                                Param::Text(id),
                                Param::Text(invocation),
                                Param::Text(&at_text),
                                Param::Text(&data),
                            ],
                        )
                        .await?;
                    tx.commit().await?;
                    true
                }
                _ => {
                    tx.rollback().await?;
                    false
                }
            }
        };
        if swapped {
            return Ok(at);
        }
        // Not swapped: tell a missing session from a moved one.
        let key = [Param::Text(app), Param::Text(user), Param::Text(id)];
        let now = session
            .exec()
            .await?
            .map_rows(sql::version(postgres), &key, |r| time_at(r, 0))
            .await?;
        Err(match now.into_iter().next() {
            None => Error::NotFound(format!("session `{id}` of {app}/{user}")),
            Some(actual) => Error::StaleSession {
                session_id: id.to_owned(),
                expected,
                actual,
            },
        })
    }
}

/// SQLite: merges `delta` into the app's (`key` = app) or user's (`key` = app, user) row,
/// making it when missing (as Python's `create_session` does); returns the state after.
/// Inside the caller's `BEGIN IMMEDIATE` transaction, so no other writer comes between the
/// read and the write.
async fn merge_sqlite(
    ctx: &mut impl Context,
    key: &[&str],
    delta: &JsonMap,
    at: &str,
) -> Result<JsonMap> {
    let (read, write) = if key.len() == 1 {
        (sql::APP_STATE, sql::PUT_APP_STATE)
    } else {
        (sql::USER_STATE, sql::PUT_USER_STATE)
    };
    let mut params: Vec<Param<'_>> = key.iter().map(|k| Param::Text(k)).collect();
    let current = ctx
        .exec()
        .await?
        .map_rows(read, &params, |r| json_at(r, 0))
        .await?;
    let found = !current.is_empty();
    let mut state = object(current.into_iter().next().flatten());
    if found && delta.is_empty() {
        return Ok(state);
    }
    state.extend(delta.iter().map(|(k, v)| (k.clone(), v.clone())));
    let text = Json::Object(state.clone()).to_string();
    params.extend([Param::Text(&text), Param::Text(at)]);
    ctx.exec().await?.execute(write, &params).await?;
    Ok(state)
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

/// `t` truncated to the microsecond, as the tables hold times.
fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

/// A time as SQLAlchemy writes a naive UTC `DATETIME` on SQLite.
fn naive_text(t: DateTime<Utc>) -> String {
    t.naive_utc().format("%Y-%m-%d %H:%M:%S%.6f").to_string()
}

/// A naive UTC time written by SQLAlchemy (`2026-12-06 10:00:00.123456`, with or without
/// the fraction, `T` or a space between date and time).
fn parse_naive(text: &str) -> Option<DateTime<Utc>> {
    ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
        .map(|t| t.and_utc())
}

/// A time column: `TIMESTAMPTZ` (converted in the statement) or SQLite's text.
fn time_at(r: RowRef<'_>, i: usize) -> ExecResult<DateTime<Utc>> {
    if r.is_postgres() {
        return r.get(i);
    }
    let text: String = r.get(i)?;
    parse_naive(&text).ok_or_else(|| {
        ExecError::Crate(Error::ColumnDecode {
            column: i.to_string(),
            expected: "a naive UTC time (`YYYY-MM-DD HH:MM:SS.ffffff`)".into(),
            found: format!("`{text}`"),
            source: None,
        })
    })
}

/// A JSON column: JSONB on PostgreSQL, JSON text on SQLite (unparseable text reads as
/// `None`, with a warning).
fn json_at(r: RowRef<'_>, i: usize) -> ExecResult<Option<Json>> {
    if r.is_postgres() {
        return r.get(i);
    }
    let Some(text) = r.get::<Option<String>>(i)? else {
        return Ok(None);
    };
    Ok(serde_json::from_str(&text)
        .inspect_err(|e| {
            tracing::warn!(target: "session_pool::adk", column = i, error = %e,
                "stored state is not JSON; reading it as empty");
        })
        .ok())
}

/// A state column's object; anything else reads as empty.
fn object(value: Option<Json>) -> JsonMap {
    scopes::stored(value)
}

/// The events of a read's array (`[id, invocation_id, time, event_data]` each), in
/// chronological order, ties broken by id.
fn events_of(array: Option<Json>) -> Vec<Event> {
    let Some(Json::Array(items)) = array else {
        return Vec::new();
    };
    let mut events: Vec<(DateTime<Utc>, Event)> = items
        .into_iter()
        .filter_map(|item| {
            let Json::Array(mut fields) = item else {
                return None;
            };
            if fields.len() != 4 {
                return None;
            }
            let data = fields.pop();
            let time = match fields.pop() {
                Some(Json::Number(n)) => n.as_f64().and_then(event_data::from_seconds),
                Some(Json::String(s)) => parse_naive(&s),
                _ => None,
            }?;
            let invocation = match fields.pop() {
                Some(Json::String(s)) => s,
                _ => String::new(),
            };
            let Some(Json::String(id)) = fields.pop() else {
                return None;
            };
            let data = data.filter(|d| !d.is_null());
            if data.is_none() {
                tracing::warn!(target: "session_pool::adk", event = %id,
                    "event_data is missing or not JSON; reading the event's columns only");
            }
            Some((time, event_data::from_json(id, invocation, time, data)))
        })
        .collect();
    events.sort_by(|(ta, a), (tb, b)| ta.cmp(tb).then_with(|| a.id.cmp(&b.id)));
    events.into_iter().map(|(_, e)| e).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlalchemy_times_parse_and_format_alike() {
        let t = parse_naive("2026-12-06 10:00:00.123456").unwrap();
        assert_eq!(naive_text(t), "2026-12-06 10:00:00.123456");
        assert_eq!(
            parse_naive("2026-12-06 10:00:00"),
            DateTime::from_timestamp(t.timestamp(), 0)
        );
        assert!(parse_naive("2026-12-06T10:00:00.5").is_some());
        assert!(parse_naive("yesterday").is_none());
    }
}

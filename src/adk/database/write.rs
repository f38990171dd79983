//! The writes: a session created with its app's and user's rows, an event appended as a
//! compare-and-swap, a session deleted with its events.

use chrono::{DateTime, Utc};
use serde_json::Value as Json;

use super::decode::{SqliteTime, json_at, state_at, time_at};
use super::{DatabaseSessionTables, Loaded, event_data, sql};
use crate::adk::event::{Event, JsonMap};
use crate::adk::record::truncate_micros;
use crate::adk::scopes::{self, Split};
use crate::error::{Error, Result};
use crate::param::{AsParam, Param};
use crate::session::Context;
use crate::support::{check_id, check_text, retry_idempotent};
use crate::value::Value;

/// The longest `invocation_id` the events table holds (`VARCHAR(256)`).
const MAX_INVOCATION_ID: usize = 256;

/// The most parameters a PostgreSQL statement takes (the protocol counts them in 16 bits).
const MAX_BINDS: usize = u16::MAX as usize;

impl DatabaseSessionTables {
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
        self.relearning(|| self.create_once(app, user, id, split))
            .await
    }

    async fn create_once(&self, app: &str, user: &str, id: &str, split: &Split) -> Result<Loaded> {
        let now = truncate_micros(Utc::now());
        let (mut session, postgres, schema) = self.session().await?;
        let fresh;
        let id = match Self::resolve(&mut *session, &schema, app, user, id).await? {
            // Blank once trimmed: a fresh id, as google-adk's `SqliteSessionService` makes.
            "" => {
                fresh = uuid::Uuid::new_v4().to_string();
                fresh.as_str()
            }
            id => id,
        };
        let taken = || Error::AlreadyExists(format!("session `{id}` of {app}/{user}"));
        let (app_state, user_state) = if postgres {
            let t = schema.types;
            let app_delta = t.app.bound(Json::Object(split.app.clone()));
            let user_delta = t.user.bound(Json::Object(split.user.clone()));
            let state = t.sessions.bound(Json::Object(split.session.clone()));
            let params = [
                Param::Text(app),
                Param::Text(user),
                Param::Text(id),
                app_delta.param(),
                user_delta.param(),
                state.param(),
                Param::Timestamp(now),
            ];
            let rows = session
                .exec()
                .await?
                .map_rows(schema.create_pg.as_str(), &params, |r| {
                    Ok((r.get::<Option<bool>>(0)?, json_at(r, 1)?, json_at(r, 2)?))
                })
                .await?;
            match rows.into_iter().next() {
                Some((Some(true), a, u)) => (scopes::stored(a), scopes::stored(u)),
                _ => return Err(taken()),
            }
        } else {
            let at = SqliteTime::of(now, schema.epoch);
            let state = json_text(&split.session);
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
                        Param::Text(&state),
                        at.param(),
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

    /// Deletes the session and its events; whether it existed.
    pub(crate) async fn delete(&self, app: &str, user: &str, id: &str) -> Result<bool> {
        check_id("app_name", app)?;
        check_id("user_id", user)?;
        check_id("session_id", id)?;
        retry_idempotent(|| async {
            let (mut session, postgres, schema) = self.session().await?;
            let id = Self::resolve(&mut *session, &schema, app, user, id).await?;
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

    /// Appends `events` in order, all or none (their state deltas already merged into
    /// `split`, `temp:` keys gone), to the session if it is still at `expected`; returns
    /// the session's new update time, the last event's timestamp to the microsecond (each
    /// event is stored at its own, truncated so). An event id the session has already is
    /// [`Error::AlreadyExists`].
    pub(crate) async fn append(
        &self,
        app: &str,
        user: &str,
        id: &str,
        expected: DateTime<Utc>,
        events: &[Event],
        split: &Split,
    ) -> Result<DateTime<Utc>> {
        check_id("app_name", app)?;
        check_id("user_id", user)?;
        check_id("session_id", id)?;
        if events.is_empty() {
            return Err(Error::invalid("an append needs at least one event"));
        }
        for event in events {
            check_id("event id", &event.id)?;
            if let Some(inv) = &event.invocation_id {
                check_text("invocation_id", inv, MAX_INVOCATION_ID)?;
            }
        }
        self.relearning(|| self.append_once(app, user, id, expected, events, split))
            .await
            .map_err(|e| {
                // The events' key is the only one an append can collide with.
                if !e.is_unique_violation() {
                    return e;
                }
                let ids: Vec<_> = events.iter().map(|e| format!("`{}`", e.id)).collect();
                Error::AlreadyExists(format!(
                    "session `{id}` of {app}/{user} already has an event with id {}",
                    ids.join(" or ")
                ))
            })
    }

    async fn append_once(
        &self,
        app: &str,
        user: &str,
        id: &str,
        expected: DateTime<Utc>,
        events: &[Event],
        split: &Split,
    ) -> Result<DateTime<Utc>> {
        let at = |event: &Event| truncate_micros(event.timestamp);
        let expected = truncate_micros(expected);
        // Not empty: `append` said so.
        let last = at(&events[events.len() - 1]);
        let (mut session, postgres, schema) = self.session().await?;
        let epoch = schema.epoch;
        if postgres && 8 + events.len() * schema.append_width() > MAX_BINDS {
            return Err(Error::invalid(format!(
                "{} events are more than one append takes on these tables ({}): append \
                 them in smaller batches",
                events.len(),
                (MAX_BINDS - 8) / schema.append_width()
            )));
        }
        // Each event's own columns: `event_data`, or version 0's one per field.
        let mut columns = Vec::with_capacity(events.len());
        for event in events {
            columns.push(match &schema.legacy {
                Some(legacy) => legacy.values(event)?,
                None => vec![Value::Json(event_data::to_json(event, at(event)))],
            });
        }
        let swapped = if postgres {
            let t = schema.types;
            // Each JSON value as its column's type takes it (see `Bound`).
            for value in columns.iter_mut().flatten() {
                if let Value::Json(j) = value {
                    *value = t.events.bound(j.take()).into_value();
                }
            }
            let delta = t.sessions.bound(Json::Object(split.session.clone()));
            let app_delta = t.app.bound(Json::Object(split.app.clone()));
            let user_delta = t.user.bound(Json::Object(split.user.clone()));
            let mut params = vec![
                Param::Text(app),
                Param::Text(user),
                Param::Text(id),
                delta.param(),
                Param::Timestamp(expected),
                Param::Timestamp(last),
                app_delta.param(),
                user_delta.param(),
            ];
            for (event, values) in events.iter().zip(&columns) {
                params.extend([
                    Param::Text(&event.id),
                    Param::Text(event.invocation_id.as_deref().unwrap_or("")),
                    Param::Timestamp(at(event)),
                ]);
                params.extend(values.iter().map(AsParam::as_param));
            }
            let rows = session
                .exec()
                .await?
                .map_rows(&*schema.append_pg(events.len()), &params, |r| {
                    r.get::<Option<bool>>(0)
                })
                .await?;
            rows.first().copied().flatten().unwrap_or(false)
        } else {
            let last_sqlite = SqliteTime::of(last, epoch);
            let key = [Param::Text(app), Param::Text(user), Param::Text(id)];
            let mut tx = session.transaction().await?;
            let current = tx
                .exec()
                .await?
                .map_rows(sql::SESSION_SQLITE, &key, |r| {
                    Ok((state_at(r, 0)?, time_at(r, 1, epoch)?))
                })
                .await?;
            match current.into_iter().next() {
                Some((mut state, version)) if version == expected => {
                    state.extend(split.session.iter().map(|(k, v)| (k.clone(), v.clone())));
                    let state = Json::Object(state).to_string();
                    let mut params = key.to_vec();
                    params.extend([Param::Text(&state), last_sqlite.param()]);
                    tx.exec()
                        .await?
                        .execute(sql::UPDATE_SESSION_SQLITE, &params)
                        .await?;
                    if !split.app.is_empty() {
                        merge_sqlite(&mut tx, &[app], &split.app, &last_sqlite).await?;
                    }
                    if !split.user.is_empty() {
                        merge_sqlite(&mut tx, &[app, user], &split.user, &last_sqlite).await?;
                    }
                    for (event, values) in events.iter().zip(&columns) {
                        let at = SqliteTime::of(at(event), epoch);
                        let mut params = vec![
                            Param::Text(&event.id),
                            Param::Text(app),
                            Param::Text(user),
                            Param::Text(id),
                            Param::Text(event.invocation_id.as_deref().unwrap_or("")),
                            at.param(),
                        ];
                        params.extend(values.iter().map(AsParam::as_param));
                        tx.exec()
                            .await?
                            .execute(schema.insert_sqlite.as_str(), &params)
                            .await?;
                    }
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
            return Ok(last);
        }
        // Not swapped: tell a missing session from a moved one.
        let key = [Param::Text(app), Param::Text(user), Param::Text(id)];
        let now = session
            .exec()
            .await?
            .map_rows(sql::version(postgres), &key, |r| time_at(r, 0, epoch))
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

/// An object's JSON text.
fn json_text(map: &JsonMap) -> String {
    // A map of JSON values always serializes.
    serde_json::to_string(map).unwrap_or_else(|_| "{}".to_owned())
}

/// SQLite: merges `delta` into the app's (`key` = app) or user's (`key` = app, user) row,
/// making it when missing (as Python's `create_session` does); returns the state after.
/// Inside the caller's `BEGIN IMMEDIATE` transaction, so no other writer comes between the
/// read and the write.
async fn merge_sqlite(
    ctx: &mut impl Context,
    key: &[&str],
    delta: &JsonMap,
    at: &SqliteTime,
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
    let mut state = scopes::stored(current.into_iter().next().flatten());
    if found && delta.is_empty() {
        return Ok(state);
    }
    state.extend(delta.iter().map(|(k, v)| (k.clone(), v.clone())));
    let text = Json::Object(state.clone()).to_string();
    params.extend([Param::Text(&text), at.param()]);
    ctx.exec().await?.execute(write, &params).await?;
    Ok(state)
}

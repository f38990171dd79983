//! The store's events: append (alone, or with the session's state in one statement),
//! read back, and the checks that keep a duplicate or a mismatched layout out.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{AdkStore, Deltas, not_found};
use crate::adk::record::{EventRecord, Form, SessionRecord, time_param};
use crate::adk::scopes::{self, Scope};
use crate::adk::sql::{self, Stmt};
use crate::conn::{CachedSql, ExecResult, RowRef};
use crate::error::{Error, Result};
use crate::param::Param;
use crate::session::Context;
use crate::session::Session;
use crate::support::{Binds, check_id, check_object, checkout, is_postgres, read_rows};
use crate::transaction::Transaction;

/// The most events PostgreSQL appends in one statement (the statement's text is kept per
/// count); more take a transaction. ADK's `BufferedSessionService` sends 50 at most.
const ONE_STATEMENT_EVENTS: usize = 64;

impl AdkStore {
    /// Appends an event to its session. The session must exist with the event's
    /// `app_name` and `user_id` (and the store's owner): otherwise [`Error::NotFound`].
    /// A duplicate event id is [`Error::AlreadyExists`].
    pub async fn append_event(&self, event: &EventRecord) -> Result<()> {
        self.relearning(|| self.append_event_once(event)).await
    }

    async fn append_event_once(&self, event: &EventRecord) -> Result<()> {
        event.check()?;
        let mut session = checkout(&self.pool).await?;
        let postgres = is_postgres(session.database().dialect());
        let form = self.form(&mut *session, postgres).await?;
        check_actions(event, form)?;
        let mut b = Binds::default();
        event.bind(&mut b, postgres);
        let owner = self.owner_bind(&mut b);
        let key = Stmt::Append {
            postgres,
            scoped: owner.is_some(),
            form,
        };
        let sql = self
            .sql
            .get(key, || sql::append(&self.tables, postgres, owner, form));
        let n = session
            .exec()
            .await?
            .execute(sql, &b.0)
            .await
            .map_err(|e| duplicate_event(e, event))?;
        if n == 0 {
            // Boxed: a miss's round trips would otherwise sit in every append's future.
            return Err(Box::pin(self.explain_miss(&mut session, event, None)).await);
        }
        Ok(())
    }

    /// Appends `event` and replaces its session's state with `state` in one atomic step:
    /// one statement (one round trip) on PostgreSQL, one `BEGIN IMMEDIATE` transaction on
    /// SQLite. Returns the updated session.
    ///
    /// With `expected_update_time`, this is a compare-and-swap on the session's update
    /// time: if another writer changed the session since that version was read, nothing is
    /// written and the error is [`Error::StaleSession`]. Of two writers starting from the
    /// same version, exactly one succeeds.
    pub async fn append_event_and_update_state(
        &self,
        event: &EventRecord,
        state: &serde_json::Value,
        expected_update_time: Option<DateTime<Utc>>,
    ) -> Result<SessionRecord> {
        self.append_and_update::<SessionRecord>(
            event,
            state,
            expected_update_time,
            &Deltas::default(),
        )
        .await
        .map(|(record, _)| record)
    }

    /// [`append_event_and_update_state`](AdkStore::append_event_and_update_state), also
    /// saying whether the database is PostgreSQL (which fixes the stored time precision).
    ///
    /// `deltas` are merged into the app's and the user's state (ADK's `app:` and `user:`
    /// keys, without their prefix) in the same atomic step, only when the update matched.
    /// `T` says what is read back: the whole session, or (the service) only its version.
    pub(crate) async fn append_and_update<T: Readback>(
        &self,
        event: &EventRecord,
        state: &serde_json::Value,
        expected_update_time: Option<DateTime<Utc>>,
        deltas: &Deltas,
    ) -> Result<(T, bool)> {
        self.relearning(|| self.append_and_update_once(event, state, expected_update_time, deltas))
            .await
    }

    async fn append_and_update_once<T: Readback>(
        &self,
        event: &EventRecord,
        state: &serde_json::Value,
        expected_update_time: Option<DateTime<Utc>>,
        deltas: &Deltas,
    ) -> Result<(T, bool)> {
        event.check()?;
        check_object("state", state)?;
        let mut session = checkout(&self.pool).await?;
        let postgres = is_postgres(session.database().dialect());
        let form = self.form(&mut *session, postgres).await?;
        check_actions(event, form)?;
        let append = Append {
            event,
            more: &[],
            state,
            expected: expected_update_time,
            deltas,
        };
        let updated = if postgres {
            self.append_in::<T>(&mut *session, true, form, &append)
                .await?
        } else {
            // SQLite's statements share one transaction.
            let mut tx = session.transaction().await?;
            let updated = self.append_in::<T>(&mut tx, false, form, &append).await?;
            if updated.is_some() {
                tx.commit().await?;
            } else {
                tx.rollback().await?;
            }
            updated
        };
        match updated {
            Some(record) => Ok((record, postgres)),
            // Boxed, as in `append_event_once`.
            None => {
                Err(Box::pin(self.explain_miss(&mut session, event, expected_update_time)).await)
            }
        }
    }

    /// Appends several events (at least one) to one session in order, all or none, setting
    /// its state to `state` (the state after them all) and merging `deltas` (all the
    /// events' app and user keys, in order), at `expected`. Returns the session's new
    /// version and whether the database is PostgreSQL.
    ///
    /// On PostgreSQL one statement, as one event takes (up to [`ONE_STATEMENT_EVENTS`]
    /// events); otherwise one transaction, each event as
    /// [`append_and_update`](AdkStore::append_and_update) appends it, each at the version
    /// the one before made.
    pub(crate) async fn append_many(
        &self,
        events: &[EventRecord],
        state: &serde_json::Value,
        expected: DateTime<Utc>,
        deltas: &Deltas,
    ) -> Result<(DateTime<Utc>, bool)> {
        self.relearning(|| self.append_many_once(events, state, expected, deltas))
            .await
    }

    async fn append_many_once(
        &self,
        events: &[EventRecord],
        state: &serde_json::Value,
        expected: DateTime<Utc>,
        deltas: &Deltas,
    ) -> Result<(DateTime<Utc>, bool)> {
        let Some((first, more)) = events.split_first() else {
            return Err(Error::invalid("an append needs at least one event"));
        };
        check_object("state", state)?;
        for event in events {
            event.check()?;
        }
        let mut session = checkout(&self.pool).await?;
        let postgres = is_postgres(session.database().dialect());
        let form = self.form(&mut *session, postgres).await?;
        for event in events {
            check_actions(event, form)?;
        }
        if postgres && events.len() <= ONE_STATEMENT_EVENTS {
            let append = Append {
                event: first,
                more,
                state,
                expected: Some(expected),
                deltas,
            };
            return match self
                .append_in::<Version>(&mut *session, true, form, &append)
                .await?
            {
                Some(Version(version)) => Ok((version, true)),
                None => {
                    let miss = self.explain_many(&mut session, events, expected);
                    Err(Box::pin(miss).await)
                }
            };
        }
        // READ COMMITTED on PostgreSQL, as each statement alone runs: the scopes' upsert
        // waits for a concurrent writer's row and merges into what it left, where
        // SERIALIZABLE would abort. (SQLite: `BEGIN IMMEDIATE`.)
        let mut tx = Transaction::begin_read_committed(&mut session).await?;
        let mut version = expected;
        let none = Deltas::default();
        for (i, event) in events.iter().enumerate() {
            // The scopes merge with the last event: the same keys, in the same order.
            let append = Append {
                event,
                more: &[],
                state,
                expected: Some(version),
                deltas: if i + 1 == events.len() { deltas } else { &none },
            };
            match self
                .append_in::<Version>(&mut tx, postgres, form, &append)
                .await?
            {
                Some(Version(next)) => version = next,
                None => {
                    tx.rollback().await?;
                    let miss = self.explain_many(&mut session, events, expected);
                    return Err(Box::pin(miss).await);
                }
            }
        }
        tx.commit().await?;
        Ok((version, postgres))
    }

    /// Why a write of `events` at `expected` matched nothing: one of them stored already (on
    /// a table whose ids live in the JSON), no such session, or a newer version.
    async fn explain_many(
        &self,
        session: &mut Session,
        events: &[EventRecord],
        expected: DateTime<Utc>,
    ) -> Error {
        for event in &events[1..] {
            match self.duplicate_in_json(session, event).await {
                Ok(false) => {}
                Ok(true) => return event_already_exists(event),
                Err(e) => return e,
            }
        }
        self.explain_miss(session, &events[0], Some(expected)).await
    }

    /// Runs one append's statements in `ctx`: PostgreSQL's one statement, or SQLite's
    /// update, insert and scope merges, which the caller's transaction holds together.
    /// `None` when the update matched no session (at the version expected).
    async fn append_in<T: Readback>(
        &self,
        ctx: &mut impl Context,
        postgres: bool,
        form: Form,
        append: &Append<'_>,
    ) -> Result<Option<T>> {
        let Append {
            event,
            more,
            state,
            expected,
            deltas,
        } = *append;
        // SQLSpec's whole-event tables hold app and user keys with their prefix (PostgreSQL
        // binds the deltas here; SQLite's `merge_scope` adds the prefix itself).
        let prefixed = postgres && form.scopes_prefixed();
        let app_delta =
            (deltas.app.as_ref()).map(|d| scopes::stored_delta(d, Scope::App, prefixed));
        let user_delta =
            (deltas.user.as_ref()).map(|d| scopes::stored_delta(d, Scope::User, prefixed));
        let mut b = Binds::default();
        event.bind(&mut b, postgres);
        let set = self.state_binds(&mut b, state, postgres);
        let cas = expected.map(|t| b.push(time_param(t, postgres)));
        let owner = self.owner_bind(&mut b);
        // PostgreSQL merges the deltas in the same statement; SQLite in the transaction.
        let scope_binds = if postgres {
            sql::ScopeDeltas {
                app: app_delta.as_deref().map(|d| b.push(d)),
                user: user_delta.as_deref().map(|d| b.push(d)),
            }
        } else {
            sql::ScopeDeltas::default()
        };
        // Further events' values follow every other bind (PostgreSQL only).
        let firsts: Vec<_> = more.iter().map(|e| e.bind_more(&mut b, postgres)).collect();
        let key = Stmt::AppendUpdate {
            postgres,
            scoped: owner.is_some(),
            cas: cas.is_some(),
            app: scope_binds.app.is_some(),
            user: scope_binds.user.is_some(),
            form,
            version_only: T::VERSION_ONLY,
            more: more.len(),
        };
        let update = self.sql.get(key, || {
            let back = sql::Returning {
                version_only: T::VERSION_ONLY,
                form,
            };
            let binds = sql::AppendBinds {
                set,
                cas,
                owner,
                deltas: scope_binds,
                more: &firsts,
            };
            sql::append_update(&self.tables, postgres, &binds, back)
        });
        let has_owner = self.tables.owner.is_some();
        if postgres {
            let rows = ctx
                .exec()
                .await?
                .map_rows(update, &b.0, |r| T::decode(r, has_owner))
                .await
                .map_err(|e| duplicate_event(e, event))?;
            return Ok(rows.into_iter().next());
        }
        let insert = self.sql.get(Stmt::SqliteInsert { form }, || {
            sql::sqlite_insert(&self.tables, form)
        });
        let scopes = SqliteScopes {
            store: self,
            app: &event.app_name,
            user: &event.user_id,
            deltas,
        };
        Ok(
            sqlite_append_and_update(ctx, update, insert, &b.0, has_owner, scopes)
                .await
                .map_err(|e| duplicate_event(e, event))?
                .map(T::from_record),
        )
    }

    /// Why an update matched nothing: no such session, or a newer version.
    async fn explain_miss(
        &self,
        session: &mut Session,
        event: &EventRecord,
        expected: Option<DateTime<Utc>>,
    ) -> Error {
        match self.duplicate_in_json(session, event).await {
            Ok(false) => {}
            Ok(true) => return event_already_exists(event),
            Err(e) => return e,
        }
        let mut b = Binds::default();
        let (id, app, user) = (
            b.push(event.session_id.as_str()),
            b.push(event.app_name.as_str()),
            b.push(event.user_id.as_str()),
        );
        let owner = self.owner_bind(&mut b);
        // Only on a miss: not worth a cached text.
        let sql = sql::get_for(&self.tables, [id, app, user], owner);
        let rows = match session.exec().await {
            Ok(exec) => exec.map_rows(&sql, &b.0, self.session_decoder()).await,
            Err(e) => Err(e),
        };
        let found = match rows {
            Ok(rows) => rows.into_iter().next(),
            Err(e) => return e,
        };
        match (found, expected) {
            (Some(current), Some(expected)) => {
                tracing::debug!(target: "session_pool::adk", session = %event.session_id,
                    %expected, actual = %current.update_time, "stale session rejected");
                Error::StaleSession {
                    session_id: event.session_id.clone(),
                    expected,
                    actual: current.update_time,
                }
            }
            _ => not_found(&event.session_id),
        }
    }

    /// Whether the event's session already has this event (its id at its timestamp), on a
    /// table whose ids live in the JSON (no index refuses a duplicate there, so the write's
    /// guard did); `false` on every other table.
    async fn duplicate_in_json(&self, session: &mut Session, event: &EventRecord) -> Result<bool> {
        let Some(form) = self.form.get().filter(|f| f.id_in_json()) else {
            return Ok(false);
        };
        let postgres = is_postgres(session.database().dialect());
        let sql = sql::event_exists(&self.tables, form, postgres);
        let params = [
            Param::Text(event.session_id.as_str()),
            Param::Text(event.id.as_str()),
            time_param(event.timestamp, postgres),
        ];
        let rows = session
            .exec()
            .await?
            .map_rows(&sql, &params, |_| Ok(()))
            .await?;
        Ok(!rows.is_empty())
    }

    /// The session's events in chronological order (ties broken by id): those after
    /// `after_timestamp` when given, and only the newest `limit` of them when given.
    /// An unknown session has no events.
    pub async fn get_events(
        &self,
        session_id: &str,
        after_timestamp: Option<DateTime<Utc>>,
        limit: Option<usize>,
    ) -> Result<Vec<EventRecord>> {
        self.relearning(|| self.get_events_once(session_id, after_timestamp, limit))
            .await
    }

    async fn get_events_once(
        &self,
        session_id: &str,
        after_timestamp: Option<DateTime<Utc>>,
        limit: Option<usize>,
    ) -> Result<Vec<EventRecord>> {
        check_id("session_id", session_id)?;
        if limit == Some(0) {
            return Ok(Vec::new());
        }
        let mut session = checkout(&self.pool).await?;
        let postgres = is_postgres(session.database().dialect());
        let form = self.form(&mut *session, postgres).await?;
        let mut b = Binds::default();
        let sid = b.push(session_id);
        let after = after_timestamp.map(|t| b.push(time_param(t, postgres)));
        let owner = self.owner_bind(&mut b);
        let limit = limit.map(|n| b.push(i64::try_from(n).unwrap_or(i64::MAX)));
        let key = Stmt::Events {
            after: after.is_some(),
            scoped: owner.is_some(),
            limit: limit.is_some(),
            form,
        };
        let sql = self.sql.get(key, || {
            sql::events(&self.tables, sid, after, owner, limit, form, postgres)
        });
        read_rows(
            &self.pool,
            session,
            self.staleness,
            sql,
            &b.0,
            EventRecord::decode,
        )
        .await
    }
}

/// What SQLite's atomic append merges into the app and user state, in its transaction.
struct SqliteScopes<'a> {
    store: &'a AdkStore,
    app: &'a str,
    user: &'a str,
    deltas: &'a Deltas,
}

/// SQLite's append: the session's update, then (when it matched) the event's insert and
/// the scopes' merges, in the caller's transaction.
async fn sqlite_append_and_update(
    ctx: &mut impl Context,
    update: Arc<CachedSql>,
    insert: Arc<CachedSql>,
    binds: &[Param<'_>],
    has_owner: bool,
    scopes: SqliteScopes<'_>,
) -> Result<Option<SessionRecord>> {
    let rows = ctx
        .exec()
        .await?
        .map_rows(update, binds, |r| SessionRecord::decode(r, has_owner))
        .await?;
    let Some(record) = rows.into_iter().next() else {
        return Ok(None);
    };
    ctx.exec().await?.execute(insert, binds).await?;
    let SqliteScopes {
        store,
        app,
        user,
        deltas,
    } = scopes;
    for (scope, delta) in [(Scope::App, &deltas.app), (Scope::User, &deltas.user)] {
        if let Some(delta) = delta {
            store
                .merge_scope(ctx, false, scope, app, user, delta)
                .await?;
        }
    }
    Ok(Some(record))
}

/// An append with its session's state: what [`AdkStore::append_in`] writes.
#[derive(Clone, Copy)]
struct Append<'a> {
    event: &'a EventRecord,
    /// Further events after `event`, in the same statement (PostgreSQL only).
    more: &'a [EventRecord],
    state: &'a serde_json::Value,
    expected: Option<DateTime<Utc>>,
    deltas: &'a Deltas,
}

/// What an atomic append reads back of the session it updated.
pub(crate) trait Readback: Sized + Send {
    /// Only the new update time is selected (PostgreSQL), not the whole row.
    const VERSION_ONLY: bool;
    /// The statement's row.
    fn decode(row: RowRef<'_>, has_owner: bool) -> ExecResult<Self>;
    /// SQLite's read-back, which is always the whole row.
    fn from_record(record: SessionRecord) -> Self;
}

impl Readback for SessionRecord {
    const VERSION_ONLY: bool = false;
    fn decode(row: RowRef<'_>, has_owner: bool) -> ExecResult<Self> {
        SessionRecord::decode(row, has_owner)
    }
    fn from_record(record: SessionRecord) -> Self {
        record
    }
}

/// The session's new update time, its version: all the service keeps of an append, so
/// the state is neither sent back by the server nor parsed again.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Version(pub(crate) DateTime<Utc>);

impl Readback for Version {
    const VERSION_ONLY: bool = true;
    fn decode(row: RowRef<'_>, _: bool) -> ExecResult<Self> {
        crate::adk::record::time_at(row, 0).map(Version)
    }
    fn from_record(record: SessionRecord) -> Self {
        Version(record.update_time)
    }
}

fn event_already_exists(event: &EventRecord) -> Error {
    Error::AlreadyExists(format!("event `{}` already exists", event.id))
}

fn duplicate_event(e: Error, event: &EventRecord) -> Error {
    if e.is_unique_violation() {
        event_already_exists(event)
    } else {
        e
    }
}

/// In a whole-event column (SQLSpec 0.42's layouts and later) an event's actions are
/// JSON: a record whose actions are not (a pickle, from
/// [`ActionsCodec::Pickle`](crate::adk::ActionsCodec::Pickle)) cannot be stored there.
fn check_actions(event: &EventRecord, form: Form) -> Result<()> {
    let Some(actions) = event.actions.as_deref().filter(|a| !a.is_empty()) else {
        return Ok(());
    };
    let Some(whole) = form.whole() else {
        return Ok(());
    };
    if serde_json::from_slice::<serde::de::IgnoredAny>(actions).is_ok() {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "event {}: its actions are not JSON (a pickle?), and the events table keeps each \
         event as JSON in `{}` (SQLSpec's layout): use ActionsCodec::Json",
        event.id, whole.column
    )))
}

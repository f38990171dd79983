//! The store's reads and writes of ADK's state scopes: sessions with their app and user
//! state, and app or user deltas merged in.

use chrono::{DateTime, Utc};

use super::AdkStore;
use super::sessions::NewSession;
use crate::adk::event::{Event, JsonMap};
use crate::adk::record::{EventBody, Form, SessionRecord, time_param};
use crate::adk::scopes::{self, Scope};
use crate::adk::sql::{self, Stmt};
use crate::conn::{ExecResult, RowRef};
use crate::error::Result;
use crate::param::Param;
use crate::row::only;
use crate::session::Context;
use crate::support::{Binds, check_id, checkout, is_postgres, read_rows};

/// A session with its app's and user's state (ADK's scopes, keys without their prefix).
#[derive(Debug, Clone)]
pub(crate) struct Scoped {
    pub(crate) record: SessionRecord,
    pub(crate) app: JsonMap,
    pub(crate) user: JsonMap,
}

/// Deltas of app and user state to merge (JSON objects, keys without their prefix);
/// `None` writes nothing.
#[derive(Debug, Clone, Default)]
pub(crate) struct Deltas {
    pub(crate) app: Option<serde_json::Value>,
    pub(crate) user: Option<serde_json::Value>,
}

impl Deltas {
    /// The app and user parts of a split state or delta; empty parts write nothing.
    pub(crate) fn of(split: &scopes::Split) -> Deltas {
        let part = |m: &JsonMap| (!m.is_empty()).then(|| serde_json::Value::Object(m.clone()));
        Deltas {
            app: part(&split.app),
            user: part(&split.user),
        }
    }
}

impl AdkStore {
    /// [`get_session`](AdkStore::get_session) with its app's and user's state (ADK's
    /// scopes), in the same statement.
    pub(crate) async fn get_session_scoped(&self, session_id: &str) -> Result<Option<Scoped>> {
        self.form_now().await?;
        let rows = self
            .get_with(session_id, true, self.scoped_decoder())
            .await?;
        Ok(rows.into_iter().next())
    }

    /// [`list_sessions`](AdkStore::list_sessions) with each session's app and user state
    /// (ADK's scopes), in the same statement.
    pub(crate) async fn list_sessions_scoped(
        &self,
        app_name: &str,
        user_id: Option<&str>,
    ) -> Result<Vec<Scoped>> {
        self.form_now().await?;
        self.list(app_name, user_id, None, None, true, self.scoped_decoder())
            .await
    }

    /// The service's read: the session with its app's and user's state, and its events,
    /// in one statement (one snapshot, one round trip). Events at or after `after` (ADK's
    /// service is inclusive), the newest `limit` of them (the oldest with `oldest`), in
    /// chronological order, decoded as the service's events (no copies of the session's id,
    /// app and user per event).
    pub(crate) async fn read_session(
        &self,
        session_id: &str,
        after: Option<DateTime<Utc>>,
        limit: Option<usize>,
        oldest: bool,
    ) -> Result<Option<(Scoped, Vec<Event>)>> {
        self.relearning(|| self.read_session_once(session_id, after, limit, oldest))
            .await
    }

    async fn read_session_once(
        &self,
        session_id: &str,
        after: Option<DateTime<Utc>>,
        limit: Option<usize>,
        oldest: bool,
    ) -> Result<Option<(Scoped, Vec<Event>)>> {
        check_id("session_id", session_id)?;
        let mut session = checkout(&self.pool).await?;
        let postgres = is_postgres(session.database().dialect());
        let form = self.form(&mut *session, postgres).await?;
        let mut b = Binds::default();
        let id = b.push(session_id);
        let owner = self.owner_bind(&mut b);
        let after = after.map(|t| b.push(time_param(t, postgres)));
        let limit = limit.map(|n| b.push(i64::try_from(n).unwrap_or(i64::MAX)));
        let key = Stmt::Read {
            scoped: owner.is_some(),
            after: after.is_some(),
            limit: limit.is_some(),
            oldest: oldest && limit.is_some(),
            form,
        };
        let binds = sql::ReadBinds {
            id,
            owner,
            after,
            limit,
            oldest,
            form,
            postgres,
        };
        let sql = self
            .sql
            .get(key, || sql::session_with_events(&self.tables, &binds));
        let has_owner = self.tables.owner.is_some();
        let prefixed = form.scopes_prefixed();
        // The session's row (its id not NULL) comes first, then a row per event.
        let decode = move |r: RowRef<'_>| {
            if !r.is_null(0)? {
                // Boxed: one row has it, and every row is as large as its largest.
                let head = Scoped::decode(r, has_owner, prefixed)?;
                return Ok((Some(Box::new(head)), None));
            }
            let ev = r.shifted(Scoped::columns(has_owner));
            let event = EventBody::decode(ev.shifted(1))?.into_event(ev.get(0)?);
            Ok((None, Some(event)))
        };
        let rows = read_rows(&self.pool, session, self.staleness, sql, &b.0, decode).await?;
        // Sized once (an event is large, and a vector grown by `collect` would copy them),
        // with room for the events a runner's turn appends next (two or more), which the
        // service pushes onto the session it returns.
        const APPEND_ROOM: usize = 4;
        let mut events = Vec::with_capacity(rows.len() + APPEND_ROOM);
        let mut rows = rows.into_iter();
        // No session (or another owner's): no rows at all.
        let Some((Some(head), _)) = rows.next() else {
            return Ok(None);
        };
        events.extend(rows.filter_map(|(_, e)| e));
        Ok(Some((*head, events)))
    }

    /// Creates a session from a state split by scope: the session's keys in its row, the
    /// app's and the user's merged into theirs, all in one transaction (none is needed when
    /// the state has no app or user keys); returns the session with the app's and user's
    /// state as they now are.
    pub(crate) async fn create_session_scoped(
        &self,
        session_id: &str,
        app_name: &str,
        user_id: &str,
        split: &scopes::Split,
    ) -> Result<Scoped> {
        check_id("session_id", session_id)?;
        check_id("app_name", app_name)?;
        check_id("user_id", user_id)?;
        let owner_id = self.owner_for_create(None)?;
        let deltas = Deltas::of(split);
        let mut session = checkout(&self.pool).await?;
        let postgres = is_postgres(session.database().dialect());
        // Whether app and user keys are stored with their prefix, and in the row too.
        let form = self.form(&mut *session, postgres).await?;
        let state = if form.state_in_row() {
            scopes::merge(split.session.clone(), &split.app, &split.user)
        } else {
            split.session.clone()
        };
        let state = serde_json::Value::Object(state);
        let new = NewSession {
            id: session_id,
            app: app_name,
            user: user_id,
            state: &state,
            owner: owner_id.as_ref(),
        };
        if postgres {
            return self.create_scoped_pg(&mut session, new, &deltas).await;
        }
        if deltas.app.is_none() && deltas.user.is_none() {
            // Nothing to write but the session: its insert, then a read of the app's and
            // user's state (two round trips, no transaction).
            let record = self.create_in(&mut *session, postgres, new).await?;
            let (app, user) = self.read_scopes(&mut *session, app_name, user_id).await?;
            return Ok(Scoped { record, app, user });
        }
        // SQLite: `BEGIN IMMEDIATE`, which no other writer can enter, so the scope rows are
        // read and written back whole.
        let mut tx = session.transaction().await?;
        let record = self.create_in(&mut tx, postgres, new).await?;
        for (scope, delta) in [(Scope::App, &deltas.app), (Scope::User, &deltas.user)] {
            if let Some(delta) = delta {
                self.merge_scope(&mut tx, postgres, scope, app_name, user_id, delta)
                    .await?;
            }
        }
        let (app, user) = self.read_scopes(&mut tx, app_name, user_id).await?;
        tx.commit().await?;
        Ok(Scoped { record, app, user })
    }

    /// PostgreSQL's create: the session, its app's and user's deltas merged, and their
    /// state read back, all in one statement (one round trip, no transaction: creates of
    /// one app at once each merge under the row lock, and a pooler in statement mode
    /// takes it too).
    async fn create_scoped_pg(
        &self,
        session: &mut crate::Session,
        new: NewSession<'_>,
        deltas: &Deltas,
    ) -> Result<Scoped> {
        let prefixed = self.prefixed();
        let app_delta = deltas
            .app
            .as_ref()
            .map(|d| scopes::stored_delta(d, Scope::App, prefixed));
        let user_delta = deltas
            .user
            .as_ref()
            .map(|d| scopes::stored_delta(d, Scope::User, prefixed));
        let mut b = Binds::default();
        let binds = self.create_binds(&mut b, new, true);
        let app = app_delta.as_deref().map(|d| b.push(d));
        let user = user_delta.as_deref().map(|d| b.push(d));
        let key = Stmt::CreateScoped {
            owner: binds.owner.is_some(),
            app: app.is_some(),
            user: user.is_some(),
        };
        let sql = self.sql.get(key, || {
            sql::create_scoped_pg(&self.tables, &binds, app, user)
        });
        let rows = session
            .exec()
            .await?
            .map_rows(sql, &b.0, self.scoped_decoder())
            .await
            .map_err(|e| super::sessions::taken(e, new.id))?;
        only(rows)
    }

    /// Merges `delta` (an object) into the app's or the user's state, top-level keys
    /// replaced as ADK's `dict.update` does; the row is created if missing. PostgreSQL
    /// merges in the statement (`||`, under the row lock); SQLite reads and writes inside
    /// the caller's `BEGIN IMMEDIATE` transaction, which no other writer can enter.
    pub(crate) async fn merge_scope(
        &self,
        ctx: &mut impl Context,
        postgres: bool,
        scope: Scope,
        app: &str,
        user: &str,
        delta: &serde_json::Value,
    ) -> Result<()> {
        let t = &self.tables;
        let mut b = Binds::default();
        let a = b.push(app);
        let u = match scope {
            Scope::App => a,
            Scope::User => b.push(user),
        };
        let delta = scopes::stored_delta(delta, scope, self.prefixed());
        let delta = &*delta;
        if postgres {
            let d = b.push(delta);
            let sql = scopes::upsert_pg(t, scope, a, u, d, None);
            ctx.exec().await?.execute(sql, &b.0).await?;
            return Ok(());
        }
        let read = scopes::select_sqlite(t, scope);
        let current = ctx
            .exec()
            .await?
            .map_rows(read, &b.0, |r| r.get::<Option<serde_json::Value>>(0))
            .await?;
        let mut state = scopes::stored(current.into_iter().next().flatten());
        if let serde_json::Value::Object(delta) = delta {
            state.extend(delta.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        let state = serde_json::Value::Object(state);
        b.push(&state);
        let write = scopes::replace_sqlite(t, scope);
        ctx.exec().await?.execute(write, &b.0).await?;
        Ok(())
    }

    /// The app's and the user's state, as they are.
    async fn read_scopes(
        &self,
        ctx: &mut impl Context,
        app: &str,
        user: &str,
    ) -> Result<(JsonMap, JsonMap)> {
        let sql = scopes::select_both(&self.tables);
        let rows = ctx
            .exec()
            .await?
            .map_rows(sql, &[Param::Text(app), Param::Text(user)], |r| {
                Ok((
                    r.get::<Option<serde_json::Value>>(0)?,
                    r.get::<Option<serde_json::Value>>(1)?,
                ))
            })
            .await?;
        let (a, u) = rows.into_iter().next().unwrap_or_default();
        Ok(stored_scopes(a, u, self.prefixed()))
    }

    /// The user's state (ADK's `user:` scope, keys without their prefix); empty when the
    /// user has none.
    pub(crate) async fn user_state(&self, app: &str, user: &str) -> Result<JsonMap> {
        check_id("app_name", app)?;
        check_id("user_id", user)?;
        let mut session = checkout(&self.pool).await?;
        let postgres = is_postgres(session.database().dialect());
        // Whether the keys are stored with their prefix.
        self.form(&mut *session, postgres).await?;
        let (_, user) = self.read_scopes(&mut *session, app, user).await?;
        Ok(user)
    }

    /// Whether app and user keys are stored with their prefix (SQLSpec's whole-event
    /// tables), once the events table's form is known.
    pub(crate) fn prefixed(&self) -> bool {
        self.form.get().is_some_and(Form::scopes_prefixed)
    }

    /// The events table's form, asking the catalog on a session of its own the first time.
    pub(crate) async fn form_now(&self) -> Result<Form> {
        if let Some(form) = self.form.get() {
            return Ok(form);
        }
        // Boxed: once per store, and its checkout would otherwise enlarge every caller's
        // future (the service's append among them).
        Box::pin(async {
            let mut session = checkout(&self.pool).await?;
            let postgres = is_postgres(session.database().dialect());
            self.form(&mut *session, postgres).await
        })
        .await
    }

    /// Reads a session row followed by its app's and user's state.
    fn scoped_decoder(&self) -> impl Fn(RowRef<'_>) -> ExecResult<Scoped> + Clone + use<> {
        let has_owner = self.tables.owner.is_some();
        let prefixed = self.prefixed();
        move |r| Scoped::decode(r, has_owner, prefixed)
    }
}

impl Scoped {
    /// Columns of a session row (with the owner, when there is one), then its app's and
    /// user's state.
    fn columns(has_owner: bool) -> usize {
        6 + usize::from(has_owner) + 2
    }

    fn decode(r: RowRef<'_>, has_owner: bool, prefixed: bool) -> ExecResult<Scoped> {
        let n = Scoped::columns(has_owner) - 2;
        let record = SessionRecord::decode(r, has_owner)?;
        let (app, user) = stored_scopes(r.get(n)?, r.get(n + 1)?, prefixed);
        Ok(Scoped { record, app, user })
    }
}

/// An app's and a user's stored state as this crate holds them: without the prefix.
fn stored_scopes(
    app: Option<serde_json::Value>,
    user: Option<serde_json::Value>,
    prefixed: bool,
) -> (JsonMap, JsonMap) {
    let (app, user) = (scopes::stored(app), scopes::stored(user));
    if prefixed {
        (
            scopes::unprefixed(app, Scope::App),
            scopes::unprefixed(user, Scope::User),
        )
    } else {
        (app, user)
    }
}

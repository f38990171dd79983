//! The store's session rows: create, read, update the state, delete, list and page,
//! and delete the idle ones.

use chrono::{DateTime, Utc};

use super::{AdkStore, SessionCursor, SessionPage, not_found};
use crate::adk::record::{SessionRecord, time_param};
use crate::adk::sql::{self, Stmt};
use crate::conn::{ExecResult, RowRef};
use crate::error::{Error, Result};
use crate::row::only;
use crate::session::Context;
use crate::support::{
    Binds, check_id, check_object, checkout, is_postgres, read_rows, retry_idempotent,
};
use crate::value::Value;

impl AdkStore {
    /// Creates a session with the initial `state` (a JSON object). `owner_id` fills the
    /// owner-id column; a scoped store fills it with its owner. An id in use is
    /// [`Error::AlreadyExists`].
    pub async fn create_session(
        &self,
        session_id: &str,
        app_name: &str,
        user_id: &str,
        state: &serde_json::Value,
        owner_id: Option<Value>,
    ) -> Result<SessionRecord> {
        check_id("session_id", session_id)?;
        check_id("app_name", app_name)?;
        check_id("user_id", user_id)?;
        check_object("state", state)?;
        let owner_id = self.owner_for_create(owner_id)?;
        let mut session = checkout(&self.pool).await?;
        let postgres = is_postgres(session.database().dialect());
        let new = NewSession {
            id: session_id,
            app: app_name,
            user: user_id,
            state,
            owner: owner_id.as_ref(),
        };
        self.create_in(&mut *session, postgres, new).await
    }

    /// Inserts a session through `ctx` (a session, or a transaction); arguments checked.
    pub(super) async fn create_in(
        &self,
        ctx: &mut impl Context,
        postgres: bool,
        new: NewSession<'_>,
    ) -> Result<SessionRecord> {
        let mut b = Binds::default();
        let binds = self.create_binds(&mut b, new, postgres);
        let key = Stmt::Create {
            postgres,
            owner: binds.owner.is_some(),
        };
        let sql = self.sql.get(key, || sql::create(&self.tables, &binds));
        let has_owner = self.tables.owner.is_some();
        let rows = ctx
            .exec()
            .await?
            .map_rows(sql, &b.0, |r| SessionRecord::decode(r, has_owner))
            .await
            .map_err(|e| taken(e, new.id))?;
        only(rows)
    }

    /// A new session's parameters, pushed onto `b`: id, app, user, state, then the owner
    /// when the table has one and, on SQLite, the time.
    pub(super) fn create_binds<'v>(
        &self,
        b: &mut Binds<'v>,
        new: NewSession<'v>,
        postgres: bool,
    ) -> sql::CreateBinds {
        let (id, app, user, state) = (
            b.push(new.id),
            b.push(new.app),
            b.push(new.user),
            b.push(new.state),
        );
        let owner = match (&self.tables.owner, new.owner) {
            (Some(_), Some(value)) => Some(b.push(value)),
            _ => None,
        };
        // SQLite: the client's clock, as a Julian day the REAL holds exactly.
        let now = (!postgres).then(|| b.push(time_param(Utc::now(), false)));
        sql::CreateBinds {
            id,
            app,
            user,
            state,
            owner,
            now,
        }
    }

    /// The session with this id, or `None` (also when it belongs to another owner).
    pub async fn get_session(&self, session_id: &str) -> Result<Option<SessionRecord>> {
        let rows = self
            .get_with(session_id, false, self.session_decoder())
            .await?;
        Ok(rows.into_iter().next())
    }

    pub(super) async fn get_with<T>(
        &self,
        session_id: &str,
        scopes: bool,
        decode: impl FnMut(RowRef<'_>) -> ExecResult<T> + Clone,
    ) -> Result<Vec<T>> {
        check_id("session_id", session_id)?;
        let mut b = Binds::default();
        let id = b.push(session_id);
        let owner = self.owner_bind(&mut b);
        let key = Stmt::Get {
            scoped: owner.is_some(),
            scopes,
        };
        let sql = self
            .sql
            .get(key, || sql::get(&self.tables, id, owner, scopes));
        let session = checkout(&self.pool).await?;
        read_rows(&self.pool, session, self.staleness, sql, &b.0, decode).await
    }

    /// Replaces the whole state (a JSON object) and moves the update time forward. An
    /// unknown session is [`Error::NotFound`].
    pub async fn update_session_state(
        &self,
        session_id: &str,
        state: &serde_json::Value,
    ) -> Result<SessionRecord> {
        check_id("session_id", session_id)?;
        check_object("state", state)?;
        let mut session = checkout(&self.pool).await?;
        let postgres = is_postgres(session.database().dialect());
        let mut b = Binds::default();
        let set = self.state_binds(&mut b, state, postgres);
        let id = b.push(session_id);
        let owner = self.owner_bind(&mut b);
        let key = Stmt::Update {
            postgres,
            scoped: owner.is_some(),
        };
        let sql = self
            .sql
            .get(key, || sql::update(&self.tables, set, id, owner));
        let rows = session
            .exec()
            .await?
            .map_rows(sql, &b.0, self.session_decoder())
            .await?;
        rows.into_iter().next().ok_or_else(|| not_found(session_id))
    }

    /// Deletes the session and, by the cascading foreign key, its events. Returns whether
    /// a session was deleted.
    pub async fn delete_session(&self, session_id: &str) -> Result<bool> {
        retry_idempotent(|| self.delete_session_once(session_id)).await
    }

    async fn delete_session_once(&self, session_id: &str) -> Result<bool> {
        check_id("session_id", session_id)?;
        let mut b = Binds::default();
        let id = b.push(session_id);
        let owner = self.owner_bind(&mut b);
        let key = Stmt::Delete {
            scoped: owner.is_some(),
        };
        let sql = self.sql.get(key, || sql::delete(&self.tables, id, owner));
        let mut session = checkout(&self.pool).await?;
        Ok(session.exec().await?.execute(sql, &b.0).await? > 0)
    }

    /// Deletes session `session_id` only if it belongs to `app_name` and `user_id`.
    pub(crate) async fn delete_for(
        &self,
        app_name: &str,
        user_id: &str,
        session_id: &str,
    ) -> Result<bool> {
        retry_idempotent(|| self.delete_for_once(app_name, user_id, session_id)).await
    }

    async fn delete_for_once(
        &self,
        app_name: &str,
        user_id: &str,
        session_id: &str,
    ) -> Result<bool> {
        check_id("app_name", app_name)?;
        check_id("user_id", user_id)?;
        check_id("session_id", session_id)?;
        let mut b = Binds::default();
        let (id, app, user) = (b.push(session_id), b.push(app_name), b.push(user_id));
        let owner = self.owner_bind(&mut b);
        let key = Stmt::DeleteFor {
            scoped: owner.is_some(),
        };
        let sql = self.sql.get(key, || {
            sql::delete_for(&self.tables, [id, app, user], owner)
        });
        let mut session = checkout(&self.pool).await?;
        Ok(session.exec().await?.execute(sql, &b.0).await? > 0)
    }

    /// The sessions of an app, of one user when `user_id` is given, newest update first.
    pub async fn list_sessions(
        &self,
        app_name: &str,
        user_id: Option<&str>,
    ) -> Result<Vec<SessionRecord>> {
        self.list(app_name, user_id, None, None, false, self.session_decoder())
            .await
    }

    /// One page of [`list_sessions`](AdkStore::list_sessions): at most `limit` sessions
    /// after `after` (the previous page's [`next`](SessionPage::next)).
    pub async fn list_sessions_page(
        &self,
        app_name: &str,
        user_id: Option<&str>,
        limit: usize,
        after: Option<&SessionCursor>,
    ) -> Result<SessionPage> {
        if limit == 0 {
            return Err(Error::invalid("a page must hold at least one session"));
        }
        let mut sessions = self
            .list(
                app_name,
                user_id,
                Some(limit + 1),
                after,
                false,
                self.session_decoder(),
            )
            .await?;
        let next = if sessions.len() > limit {
            sessions.truncate(limit);
            sessions.last().map(|s| SessionCursor {
                update_time: s.update_time,
                id: s.id.clone(),
            })
        } else {
            None
        };
        Ok(SessionPage { sessions, next })
    }

    pub(super) async fn list<T>(
        &self,
        app_name: &str,
        user_id: Option<&str>,
        limit: Option<usize>,
        after: Option<&SessionCursor>,
        scopes: bool,
        decode: impl FnMut(RowRef<'_>) -> ExecResult<T> + Clone,
    ) -> Result<Vec<T>> {
        check_id("app_name", app_name)?;
        if let Some(user_id) = user_id {
            check_id("user_id", user_id)?;
        }
        if let Some(after) = after {
            check_id("cursor id", &after.id)?;
        }
        let session = checkout(&self.pool).await?;
        let postgres = is_postgres(session.database().dialect());
        let mut b = Binds::default();
        let app = b.push(app_name);
        let user = user_id.map(|u| b.push(u));
        let owner = self.owner_bind(&mut b);
        let after = after.map(|a| {
            (
                b.push(time_param(a.update_time, postgres)),
                b.push(a.id.as_str()),
            )
        });
        let limit = limit.map(|n| b.push(i64::try_from(n).unwrap_or(i64::MAX)));
        let key = Stmt::List {
            user: user.is_some(),
            scoped: owner.is_some(),
            after: after.is_some(),
            limit: limit.is_some(),
            scopes,
        };
        let binds = sql::ListBinds {
            app,
            user,
            owner,
            after,
            limit,
            scopes,
        };
        let sql = self.sql.get(key, || sql::list(&self.tables, &binds));
        read_rows(&self.pool, session, self.staleness, sql, &b.0, decode).await
    }

    /// Deletes the sessions (and their events) not written since `updated_before`; returns
    /// how many were deleted.
    pub async fn delete_idle_sessions(&self, updated_before: DateTime<Utc>) -> Result<u64> {
        retry_idempotent(|| self.delete_idle_once(updated_before)).await
    }

    async fn delete_idle_once(&self, updated_before: DateTime<Utc>) -> Result<u64> {
        let mut session = checkout(&self.pool).await?;
        let postgres = is_postgres(session.database().dialect());
        let mut b = Binds::default();
        let before = b.push(time_param(updated_before, postgres));
        let owner = self.owner_bind(&mut b);
        let sql = sql::delete_idle(&self.tables, before, owner);
        let n = session.exec().await?.execute(sql, &b.0).await?;
        tracing::debug!(target: "session_pool::adk", deleted = n, %updated_before,
            "idle sessions deleted");
        Ok(n)
    }
}

/// A create's error: a session id in use is [`Error::AlreadyExists`].
pub(super) fn taken(e: Error, session_id: &str) -> Error {
    if e.is_unique_violation() {
        Error::AlreadyExists(format!("session `{session_id}` already exists"))
    } else {
        e
    }
}

/// A new session's row, for [`AdkStore::create_in`].
#[derive(Clone, Copy)]
pub(super) struct NewSession<'a> {
    pub(super) id: &'a str,
    pub(super) app: &'a str,
    pub(super) user: &'a str,
    pub(super) state: &'a serde_json::Value,
    pub(super) owner: Option<&'a Value>,
}

//! The reads: a session with its scopes and events in one statement, a listing, the
//! owners of an id.

use chrono::{DateTime, Utc};

use super::decode::{SqliteTime, events_of, json_at, state_at, time_at};
use super::{DatabaseSessionTables, Loaded, sql};
use crate::adk::event::JsonMap;
use crate::adk::record::truncate_micros;
use crate::adk::scopes;
use crate::error::Result;
use crate::param::Param;
use crate::support::{check_id, read_rows};

impl DatabaseSessionTables {
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
        self.relearning(|| self.get_once(app, user, id, after, limit, oldest))
            .await
    }

    async fn get_once(
        &self,
        app: &str,
        user: &str,
        id: &str,
        after: Option<DateTime<Utc>>,
        limit: Option<usize>,
        oldest: bool,
    ) -> Result<Option<Loaded>> {
        let (mut session, postgres, schema) = self.session().await?;
        let id = Self::resolve(&mut *session, &schema, app, user, id).await?;
        let epoch = schema.epoch;
        let after_sqlite;
        let after = match after.map(truncate_micros) {
            None => Param::Null,
            Some(t) if postgres => Param::Timestamp(t),
            Some(t) => {
                after_sqlite = SqliteTime::of(t, epoch);
                after_sqlite.param()
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
            schema.get[usize::from(oldest)].as_str(),
            &params,
            |r| {
                Ok((
                    state_at(r, 0)?,
                    time_at(r, 1, epoch)?,
                    state_at(r, 2)?,
                    state_at(r, 3)?,
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
        let (session, postgres, schema) = self.session().await?;
        let epoch = schema.epoch;
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
                    state: state_at(r, 2)?,
                    update_time: time_at(r, 3, epoch)?,
                    app: state_at(r, 4)?,
                    user: state_at(r, 5)?,
                    events: Vec::new(),
                })
            },
        )
        .await
    }

    /// The user's state (keys without their prefix); empty when the user has none.
    pub(crate) async fn user_state(&self, app: &str, user: &str) -> Result<JsonMap> {
        check_id("app_name", app)?;
        check_id("user_id", user)?;
        let (session, _, _) = self.session().await?;
        let params = [Param::Text(app), Param::Text(user)];
        let rows = read_rows(
            &self.pool,
            session,
            crate::Staleness::Strong,
            sql::USER_STATE,
            &params,
            |r| json_at(r, 0),
        )
        .await?;
        Ok(scopes::stored(rows.into_iter().next().flatten()))
    }

    /// Each session with this id, of any app and user (ADK-Rust names a session by id
    /// alone), with its app's name: its own state and version, no scopes, no events (what
    /// an append needs), in one statement.
    #[cfg(feature = "adk-rust")]
    pub(crate) async fn by_id(&self, id: &str) -> Result<Vec<(String, Loaded)>> {
        check_id("session_id", id)?;
        let (session, postgres, schema) = self.session().await?;
        let epoch = schema.epoch;
        let params = [Param::Text(id)];
        read_rows(
            &self.pool,
            session,
            crate::Staleness::Strong,
            sql::by_id(postgres),
            &params,
            move |r| {
                let loaded = Loaded {
                    id: id.to_owned(),
                    user_id: r.get(1)?,
                    state: state_at(r, 2)?,
                    update_time: time_at(r, 3, epoch)?,
                    app: JsonMap::new(),
                    user: JsonMap::new(),
                    events: Vec::new(),
                };
                Ok((r.get(0)?, loaded))
            },
        )
        .await
    }
}

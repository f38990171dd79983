//! The rows of the ADK tables as Rust records, and how their values are bound and read.
//! `form.rs` says how the events table keeps an event and the SQL for each form;
//! `time.rs` how times are stored.

use chrono::{DateTime, Utc};

use crate::conn::{ExecResult, RowRef};
use crate::error::Result;
use crate::support::{Binds, Placeholder, check_id, check_opt};
use crate::value::Value;

mod form;
mod time;

pub(crate) use form::{
    EVENT_COLUMNS, EVENT_DATA_FIELDS, EVENT_OWN_COLUMNS, Form, Whole, event_id_expr, event_select,
    event_values, insert_columns, select_list,
};
pub use time::stored_time;
pub(crate) use time::{time_at, time_param, truncate_micros};

/// A row of the sessions table (the seed's `SessionRecord`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SessionRecord {
    /// The session's id (at most 128 characters).
    pub id: String,
    /// The application it belongs to.
    pub app_name: String,
    /// The user it belongs to.
    pub user_id: String,
    /// The owner-id column's value, when the store has one.
    pub owner_id: Option<Value>,
    /// The session state: always a JSON object.
    pub state: serde_json::Value,
    /// When it was created (UTC).
    pub create_time: DateTime<Utc>,
    /// When it was last written (UTC). It strictly increases with every write, so it is the
    /// session's version for [`append_event_and_update_state`](super::AdkStore::append_event_and_update_state).
    pub update_time: DateTime<Utc>,
}

/// A row of the events table (the seed's `EventRecord`), column for column.
///
/// `actions` holds bytes the store does not interpret; [`Event`](super::Event) writes its
/// [`EventActions`](super::EventActions) there as UTF-8 JSON.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct EventRecord {
    /// The event's id (at most 128 characters).
    pub id: String,
    /// The session it belongs to.
    pub session_id: String,
    /// The session's application.
    pub app_name: String,
    /// The session's user.
    pub user_id: String,
    /// The agent invocation that produced it (at most 256 characters).
    pub invocation_id: Option<String>,
    /// Who wrote it: `user` or an agent's name (at most 256 characters).
    pub author: Option<String>,
    /// Serialized actions (`BYTEA` / `BLOB`).
    pub actions: Option<Vec<u8>>,
    /// The ids of long-running tool calls, as JSON text.
    pub long_running_tool_ids_json: Option<String>,
    /// The agent branch, `root.child` style (at most 256 characters).
    pub branch: Option<String>,
    /// When it happened (UTC, microseconds on PostgreSQL; see the module docs for SQLite).
    pub timestamp: DateTime<Utc>,
    /// The message content (JSON).
    pub content: Option<serde_json::Value>,
    /// Grounding metadata (JSON).
    pub grounding_metadata: Option<serde_json::Value>,
    /// Application metadata (JSON).
    pub custom_metadata: Option<serde_json::Value>,
    /// True for a streaming chunk.
    pub partial: Option<bool>,
    /// True when the model's turn is complete.
    pub turn_complete: Option<bool>,
    /// True when the turn was interrupted.
    pub interrupted: Option<bool>,
    /// An error code (at most 256 characters).
    pub error_code: Option<String>,
    /// An error message (at most 1,024 characters).
    pub error_message: Option<String>,
}

impl EventRecord {
    /// An event of session `session_id` (of `app_name` and `user_id`), stamped now, with
    /// every optional column empty; set the others as fields.
    pub fn new(
        id: impl Into<String>,
        session_id: impl Into<String>,
        app_name: impl Into<String>,
        user_id: impl Into<String>,
    ) -> Self {
        EventRecord {
            id: id.into(),
            session_id: session_id.into(),
            app_name: app_name.into(),
            user_id: user_id.into(),
            timestamp: chrono::Utc::now(),
            ..EventRecord::default()
        }
    }

    /// Checks every length limit of the seed's columns before anything is sent.
    pub(crate) fn check(&self) -> Result<()> {
        check_id("event id", &self.id)?;
        check_id("session_id", &self.session_id)?;
        check_id("app_name", &self.app_name)?;
        check_id("user_id", &self.user_id)?;
        check_opt("invocation_id", self.invocation_id.as_deref(), 256)?;
        check_opt("author", self.author.as_deref(), 256)?;
        check_opt("branch", self.branch.as_deref(), 256)?;
        check_opt("error_code", self.error_code.as_deref(), 256)?;
        check_opt("error_message", self.error_message.as_deref(), 1024)?;
        check_opt(
            "long_running_tool_ids_json",
            self.long_running_tool_ids_json.as_deref(),
            usize::MAX,
        )?;
        Ok(())
    }

    /// Pushes the record's values in [`EVENT_COLUMNS`] order; `binds` must start empty, so
    /// they are `$1..$18` as [`event_values`] numbers them (the session id, app and user are
    /// `$2..$4`). The values are borrowed, not copied.
    pub(crate) fn bind<'a>(&'a self, binds: &mut Binds<'a>, postgres: bool) {
        debug_assert!(binds.0.is_empty(), "event values are numbered from $1");
        self.bind_more(binds, postgres);
    }

    /// Pushes the same values as [`bind`](EventRecord::bind) after those `binds` holds (a
    /// further event of a statement that inserts several); returns the first's placeholder.
    pub(crate) fn bind_more<'a>(&'a self, binds: &mut Binds<'a>, postgres: bool) -> Placeholder {
        let first = Placeholder::nth(binds.0.len() + 1);
        binds.0.extend([
            (&self.id).into(),
            (&self.session_id).into(),
            (&self.app_name).into(),
            (&self.user_id).into(),
            (&self.invocation_id).into(),
            (&self.author).into(),
            (&self.actions).into(),
            (&self.long_running_tool_ids_json).into(),
            (&self.branch).into(),
            time_param(self.timestamp, postgres),
            (&self.content).into(),
            (&self.grounding_metadata).into(),
            (&self.custom_metadata).into(),
            self.partial.into(),
            self.turn_complete.into(),
            self.interrupted.into(),
            (&self.error_code).into(),
            (&self.error_message).into(),
        ]);
        first
    }

    /// Reads a row of [`EVENT_COLUMNS`].
    pub(crate) fn decode(row: RowRef<'_>) -> ExecResult<EventRecord> {
        let (id, session_id, app_name, user_id) =
            (row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?);
        Ok(EventBody::decode(row.shifted(4))?.into_record(id, session_id, app_name, user_id))
    }
}

/// The columns of an event row after its id and owners (`invocation_id` on, in
/// [`EVENT_COLUMNS`] order): what a read of one session's events decodes, without three
/// strings per event that repeat the session's.
#[derive(Debug)]
pub(crate) struct EventBody {
    pub(crate) invocation_id: Option<String>,
    pub(crate) author: Option<String>,
    pub(crate) actions: Option<Vec<u8>>,
    pub(crate) long_running_tool_ids_json: Option<String>,
    pub(crate) branch: Option<String>,
    pub(crate) timestamp: DateTime<Utc>,
    pub(crate) content: Option<serde_json::Value>,
    pub(crate) grounding_metadata: Option<serde_json::Value>,
    pub(crate) custom_metadata: Option<serde_json::Value>,
    pub(crate) partial: Option<bool>,
    pub(crate) turn_complete: Option<bool>,
    pub(crate) interrupted: Option<bool>,
    pub(crate) error_code: Option<String>,
    pub(crate) error_message: Option<String>,
}

impl EventBody {
    /// Reads the columns from `invocation_id` to `error_message`, starting at column 0.
    pub(crate) fn decode(row: RowRef<'_>) -> ExecResult<EventBody> {
        // Written empty rather than NULL on SQLite (SQLSpec's layout has them NOT NULL).
        let text = |v: Option<String>| v.filter(|s| !s.is_empty());
        let bytes = |v: Option<Vec<u8>>| v.filter(|b| !b.is_empty());
        Ok(EventBody {
            invocation_id: text(row.get(0)?),
            author: text(row.get(1)?),
            actions: bytes(row.get(2)?),
            long_running_tool_ids_json: row.get(3)?,
            branch: row.get(4)?,
            timestamp: time_at(row, 5)?,
            content: row.get(6)?,
            grounding_metadata: row.get(7)?,
            custom_metadata: row.get(8)?,
            partial: row.get(9)?,
            turn_complete: row.get(10)?,
            interrupted: row.get(11)?,
            error_code: row.get(12)?,
            error_message: row.get(13)?,
        })
    }

    /// The event of a stored row's id and this body (see [`Event::from_record`](super::Event::from_record)); the
    /// owners it leaves empty allocate nothing.
    pub(crate) fn into_event(self, id: String) -> super::Event {
        super::Event::from_record(self.into_record(id, String::new(), String::new(), String::new()))
    }

    fn into_record(
        self,
        id: String,
        session_id: String,
        app_name: String,
        user_id: String,
    ) -> EventRecord {
        EventRecord {
            id,
            session_id,
            app_name,
            user_id,
            invocation_id: self.invocation_id,
            author: self.author,
            actions: self.actions,
            long_running_tool_ids_json: self.long_running_tool_ids_json,
            branch: self.branch,
            timestamp: self.timestamp,
            content: self.content,
            grounding_metadata: self.grounding_metadata,
            custom_metadata: self.custom_metadata,
            partial: self.partial,
            turn_complete: self.turn_complete,
            interrupted: self.interrupted,
            error_code: self.error_code,
            error_message: self.error_message,
        }
    }
}

impl SessionRecord {
    /// Reads `id, app_name, user_id, state, create_time, update_time[, owner]`.
    pub(crate) fn decode(row: RowRef<'_>, has_owner: bool) -> ExecResult<SessionRecord> {
        Ok(SessionRecord {
            id: row.get(0)?,
            app_name: row.get(1)?,
            user_id: row.get(2)?,
            state: row.get(3)?,
            create_time: time_at(row, 4)?,
            update_time: time_at(row, 5)?,
            owner_id: if has_owner { Some(row.value(6)?) } else { None },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn over_long_fields_are_rejected() {
        let ok = EventRecord {
            id: "e".into(),
            session_id: "s".into(),
            app_name: "a".into(),
            user_id: "u".into(),
            ..EventRecord::default()
        };
        assert!(ok.check().is_ok());
        let long_id = EventRecord {
            id: "e".repeat(129),
            ..ok.clone()
        };
        assert!(long_id.check().is_err());
        let long_msg = EventRecord {
            error_message: Some("m".repeat(1025)),
            ..ok
        };
        assert!(long_msg.check().is_err());
    }
}

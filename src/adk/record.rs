//! The rows of the ADK tables as Rust records, and how their values are bound and read.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use crate::conn::{ExecResult, RowRef, convert};
use crate::error::{Error, Result};
use crate::param::Param;
use crate::support::{Binds, check_id, check_opt};
use crate::value::Value;

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

/// The event columns in the order they are written and read.
pub(crate) const EVENT_COLUMNS: &str = "id, session_id, app_name, user_id, invocation_id, author, \
     actions, long_running_tool_ids_json, branch, timestamp, content, grounding_metadata, \
     custom_metadata, partial, turn_complete, interrupted, error_code, error_message";

/// An event's own columns: [`EVENT_COLUMNS`] without the session's id, app and user, which
/// a read of one session's events knows already (see [`EventBody`]).
pub(crate) const EVENT_OWN_COLUMNS: &str = "id, invocation_id, author, actions, \
     long_running_tool_ids_json, branch, timestamp, content, grounding_metadata, \
     custom_metadata, partial, turn_complete, interrupted, error_code, error_message";

/// PostgreSQL casts for [`EVENT_COLUMNS`], so untyped `NULL`s get the column's type.
const EVENT_CASTS: [&str; 18] = [
    "varchar",
    "varchar",
    "varchar",
    "varchar",
    "varchar",
    "varchar",
    "bytea",
    "text",
    "varchar",
    "timestamptz",
    "jsonb",
    "jsonb",
    "jsonb",
    "boolean",
    "boolean",
    "boolean",
    "varchar",
    "varchar",
];

/// How the events table keeps an event, as the store found it in the catalog. Rows are
/// bound and decoded in the seed's columns whatever the form: the statements translate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub(crate) enum Form {
    /// The seed's columns (`long_running_tool_ids_json` TEXT).
    #[default]
    Columns,
    /// SQLSpec 0.41's PostgreSQL columns: `long_running_tool_ids_json` is JSONB.
    JsonbToolIds,
    /// SQLSpec 0.42 and later: the whole event in one JSON column (ADK's
    /// `Event.model_dump(exclude_none=True, mode="json")`), beside a few of its fields.
    Whole(Whole),
}

/// An events table keeping each event whole in one JSON column, and which columns it has
/// beside it. SQLSpec made three generations of it:
///
/// | SQLSpec | PostgreSQL | SQLite |
/// |---|---|---|
/// | 0.42–0.50 | `event_json`; no id; `author` | `event_data`; `author` |
/// | 0.51–0.60 | `event_data` | `event_data`; `app_name`, `user_id` |
/// | 0.61 on | `event_data`; `app_name`, `user_id` | the same |
///
/// All have `session_id`, `invocation_id` and `timestamp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Whole {
    /// The JSON column: `event_data` or `event_json`.
    pub(crate) column: &'static str,
    /// An `id` column. Without it (`event_json`) the id is read from the JSON, and the
    /// same event appended again (its id at its timestamp) is looked for before writing,
    /// since no index refuses a duplicate.
    pub(crate) id: bool,
    /// `app_name` and `user_id` columns; without them they are the session's.
    pub(crate) owners: bool,
    /// An `author` column (NOT NULL on PostgreSQL). It marks SQLSpec 0.42–0.50, whose
    /// service keeps the whole state, `app:` and `user:` keys included, in the session's
    /// row: see [`Form::state_in_row`].
    pub(crate) author: bool,
}

impl Form {
    /// The whole-event JSON column, if the events table has one.
    pub(crate) fn whole(self) -> Option<Whole> {
        match self {
            Form::Whole(w) => Some(w),
            _ => None,
        }
    }

    /// Whether the table's own Python service reads a session's whole state from its row
    /// (SQLSpec 0.42–0.50, which has no app and user tables): this crate then writes its
    /// `app:` and `user:` keys there too, besides its app and user tables.
    pub(crate) fn state_in_row(self) -> bool {
        self.whole().is_some_and(|w| w.author)
    }

    /// Whether app and user keys are stored with their prefix: SQLSpec's whole-event
    /// tables keep them so.
    pub(crate) fn scopes_prefixed(self) -> bool {
        self.whole().is_some()
    }

    /// Whether an event's id is an expression on the JSON rather than a column.
    pub(crate) fn id_in_json(self) -> bool {
        self.whole().is_some_and(|w| !w.id)
    }
}

/// The columns an insert of an event writes, in the order of [`event_values`].
pub(crate) fn insert_columns(form: Form) -> std::borrow::Cow<'static, str> {
    let Some(w) = form.whole() else {
        return EVENT_COLUMNS.into();
    };
    let mut columns = Vec::with_capacity(8);
    if w.id {
        columns.push("id");
    }
    columns.push("session_id");
    if w.owners {
        columns.extend(["app_name", "user_id"]);
    }
    columns.push("invocation_id");
    if w.author {
        columns.push("author");
    }
    columns.extend(["timestamp", w.column]);
    columns.join(", ").into()
}

/// The ADK `Event` fields [`EventRecord`] has a column for; in the whole-event JSON, any
/// other top-level field travels in `custom_metadata` under [`EXTRA_FIELDS_KEY`](super::event::EXTRA_FIELDS_KEY), as with the
/// seed's columns.
pub(crate) const EVENT_DATA_FIELDS: [&str; 15] = [
    "id",
    "invocation_id",
    "author",
    "actions",
    "long_running_tool_ids",
    "branch",
    "timestamp",
    "content",
    "grounding_metadata",
    "custom_metadata",
    "partial",
    "turn_complete",
    "interrupted",
    "error_code",
    "error_message",
];

/// `$1, …, $18` for the values [`EventRecord::bind`] pushes, with a cast each on PostgreSQL
/// so untyped `NULL`s get the column's type.
///
/// [`Form::JsonbToolIds`]: SQLSpec's PostgreSQL layout, whose `long_running_tool_ids_json`
/// is JSONB holding a JSON *string* of the list's text (what asyncpg writes there); the
/// seed's is TEXT. On SQLite, `invocation_id`, `author` and `actions` are written non-null
/// (empty when unset), as SQLSpec's layout requires. [`Form::Whole`]: the values of
/// [`insert_columns`], the event's fields built into one JSON object.
pub(crate) fn event_values(postgres: bool, form: Form) -> String {
    if let Some(w) = form.whole() {
        return whole_values(postgres, w);
    }
    let mut list = String::with_capacity(18 * 16);
    for (i, cast) in EVENT_CASTS.iter().enumerate() {
        let sep = if i == 0 { "" } else { ", " };
        let n = i + 1;
        let _ = match (postgres, n) {
            (true, 8) if form == Form::JsonbToolIds => {
                write!(list, "{sep}to_jsonb(${n}::text)")
            }
            (true, _) => write!(list, "{sep}${n}::{cast}"),
            (false, 5 | 6) => write!(list, "{sep}COALESCE(${n}, '')"),
            (false, 7) => write!(list, "{sep}COALESCE(${n}, X'')"),
            (false, _) => write!(list, "{sep}${n}"),
        };
    }
    list
}

/// The values of a whole-event insert (the columns of [`insert_columns`]), from the same 18
/// binds: the JSON object has no null members (as `exclude_none` writes it),
/// `invocation_id` and `author` default to `''` (ADK's defaults, and NOT NULL columns in
/// SQLSpec 0.42–0.50), the timestamp is seconds since the epoch, and the fields kept in
/// `custom_metadata` under [`EXTRA_FIELDS_KEY`](super::event::EXTRA_FIELDS_KEY) go back
/// to the top level.
fn whole_values(postgres: bool, w: Whole) -> String {
    let extra = super::event::EXTRA_FIELDS_KEY;
    let mut columns = Vec::with_capacity(8);
    let (id, session, app, user, invocation, author, timestamp) = if postgres {
        (
            "$1::varchar",
            "$2::varchar",
            "$3::varchar",
            "$4::varchar",
            "COALESCE($5::varchar, '')",
            "COALESCE($6::varchar, '')",
            "$10::timestamptz",
        )
    } else {
        (
            "$1",
            "$2",
            "$3",
            "$4",
            "COALESCE($5, '')",
            "COALESCE($6, '')",
            "$10",
        )
    };
    if w.id {
        columns.push(id);
    }
    columns.push(session);
    if w.owners {
        columns.extend([app, user]);
    }
    columns.push(invocation);
    if w.author {
        columns.push(author);
    }
    columns.push(timestamp);
    let columns = columns.join(", ");
    if postgres {
        format!(
            "{columns}, (SELECT jsonb_object_agg(f.k, f.v) FROM jsonb_each(\
             jsonb_build_object('id', $1::text, 'invocation_id', COALESCE($5::text, ''), \
             'author', COALESCE($6::text, ''), \
             'actions', convert_from(NULLIF($7::bytea, ''::bytea), 'UTF8')::jsonb, \
             'long_running_tool_ids', $8::jsonb, 'branch', $9::text, \
             'timestamp', extract(epoch FROM $10::timestamptz), 'content', $11::jsonb, \
             'grounding_metadata', $12::jsonb, \
             'custom_metadata', NULLIF($13::jsonb - '{extra}', '{{}}'::jsonb), \
             'partial', $14::boolean, 'turn_complete', $15::boolean, \
             'interrupted', $16::boolean, 'error_code', $17::text, 'error_message', $18::text) \
             || COALESCE($13::jsonb -> '{extra}', '{{}}'::jsonb)) AS f(k, v) \
             WHERE f.v <> 'null'::jsonb)"
        )
    } else {
        let boolean =
            |n: usize| format!("CASE ${n} WHEN 1 THEN json('true') WHEN 0 THEN json('false') END");
        // A merge patch drops the members whose value is null.
        format!(
            "{columns}, json_patch(json_patch('{{}}', json_object(\
             'id', $1, 'invocation_id', COALESCE($5, ''), 'author', COALESCE($6, ''), \
             'actions', json(NULLIF(CAST($7 AS TEXT), '')), \
             'long_running_tool_ids', json($8), 'branch', $9, \
             'timestamp', ($10 - 2440587.5) * 86400.0, 'content', json($11), \
             'grounding_metadata', json($12), \
             'custom_metadata', json(NULLIF(json_remove($13, '$.{extra}'), '{{}}')), \
             'partial', {}, 'turn_complete', {}, 'interrupted', {}, \
             'error_code', $17, 'error_message', $18)), \
             COALESCE(json_extract($13, '$.{extra}'), '{{}}'))",
            boolean(14),
            boolean(15),
            boolean(16)
        )
    }
}

/// [`EVENT_COLUMNS`] as a select list; see [`select_list`].
pub(crate) fn event_select(
    form: Form,
    postgres: bool,
    sessions: &str,
) -> std::borrow::Cow<'static, str> {
    select_list(EVENT_COLUMNS, form, postgres, sessions)
}

/// `columns` (event columns) as a select list. On SQLSpec's PostgreSQL layout, the JSONB
/// `long_running_tool_ids_json` is read back as the list's text, whether it holds a JSON
/// string of it (asyncpg's) or the list itself; from a whole-event column, each column is
/// the field's value in the seed column's type, and `app_name` and `user_id`, when the
/// table has no such columns, the session's (from `sessions`).
pub(crate) fn select_list(
    columns: &'static str,
    form: Form,
    postgres: bool,
    sessions: &str,
) -> std::borrow::Cow<'static, str> {
    match form {
        Form::Columns => columns.into(),
        Form::JsonbToolIds => columns
            .replace(
                "long_running_tool_ids_json",
                "CASE jsonb_typeof(long_running_tool_ids_json) \
                 WHEN 'string' THEN long_running_tool_ids_json #>> '{}' \
                 ELSE long_running_tool_ids_json::text END AS long_running_tool_ids_json",
            )
            .into(),
        Form::Whole(w) => columns
            .split(',')
            .map(|c| whole_column(c.trim(), w, postgres, sessions))
            .collect::<Vec<_>>()
            .join(", ")
            .into(),
    }
}

/// One seed column, read from a whole-event table.
fn whole_column(name: &str, w: Whole, postgres: bool, sessions: &str) -> String {
    let extra = super::event::EXTRA_FIELDS_KEY;
    let data = w.column;
    match (name, postgres) {
        ("session_id" | "invocation_id" | "timestamp", _) => name.to_owned(),
        ("id", _) if w.id => name.to_owned(),
        ("app_name" | "user_id", _) if w.owners => name.to_owned(),
        // The subquery's table has no `session_id`: it is the event's.
        ("app_name" | "user_id", _) => {
            format!(
                "(SELECT own.{name} FROM {sessions} AS own WHERE own.id = session_id) AS {name}"
            )
        }
        ("actions", true) => format!("convert_to(({data} -> 'actions')::text, 'UTF8') AS actions"),
        ("actions", false) => format!("CAST(json_extract({data}, '$.actions') AS BLOB) AS actions"),
        ("long_running_tool_ids_json", true) => {
            format!("({data} -> 'long_running_tool_ids')::text AS long_running_tool_ids_json")
        }
        ("long_running_tool_ids_json", false) => {
            format!("json_extract({data}, '$.long_running_tool_ids') AS long_running_tool_ids_json")
        }
        ("custom_metadata", true) => {
            let known = format!("'{{{}}}'::text[]", EVENT_DATA_FIELDS.join(","));
            format!(
                "CASE WHEN ({data} - {known}) = '{{}}'::jsonb \
                 THEN {data} -> 'custom_metadata' \
                 ELSE COALESCE({data} -> 'custom_metadata', '{{}}'::jsonb) \
                 || jsonb_build_object('{extra}', {data} - {known}) END AS custom_metadata"
            )
        }
        ("custom_metadata", false) => {
            let paths: Vec<String> = EVENT_DATA_FIELDS
                .iter()
                .map(|f| format!("'$.{f}'"))
                .collect();
            let rest = format!("json_remove({data}, {})", paths.join(", "));
            format!(
                "CASE WHEN {rest} = '{{}}' THEN json_extract({data}, '$.custom_metadata') \
                 ELSE json_set(COALESCE(json_extract({data}, '$.custom_metadata'), '{{}}'), \
                 '$.{extra}', json({rest})) END AS custom_metadata"
            )
        }
        ("content" | "grounding_metadata", true) => format!("{data} -> '{name}' AS {name}"),
        ("partial" | "turn_complete" | "interrupted", true) => {
            // Through text: a JSON null reads as NULL rather than failing the cast.
            format!("({data} ->> '{name}')::boolean AS {name}")
        }
        (_, true) => format!("{data} ->> '{name}' AS {name}"),
        (_, false) => format!("json_extract({data}, '$.{name}') AS {name}"),
    }
}

/// An event's id in a whole-event table's row: its column, or the JSON's member.
pub(crate) fn event_id_expr(form: Form, postgres: bool) -> String {
    match form.whole() {
        Some(w) if !w.id && postgres => format!("({} ->> 'id')", w.column),
        Some(w) if !w.id => format!("json_extract({}, '$.id')", w.column),
        _ => "id".to_owned(),
    }
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

const UNIX_EPOCH_JULIAN_DAY: f64 = 2_440_587.5;
const MICROS_PER_DAY: f64 = 86_400_000_000.0;

/// A UTC time as a Julian day, SQLite's `julianday()`.
pub(crate) fn to_julian(t: DateTime<Utc>) -> f64 {
    t.timestamp_micros() as f64 / MICROS_PER_DAY + UNIX_EPOCH_JULIAN_DAY
}

/// A Julian day back to UTC, rounded to the microsecond. For every stored day `x`,
/// `to_julian(from_julian(x)) == x`, so a time read back compares equal to the stored one.
pub(crate) fn from_julian(day: f64) -> Result<DateTime<Utc>> {
    let micros = ((day - UNIX_EPOCH_JULIAN_DAY) * MICROS_PER_DAY).round();
    if !micros.is_finite() || micros.abs() > 9.0e18 {
        return Err(Error::invalid(format!("{day} is not a Julian day")));
    }
    DateTime::from_timestamp_micros(micros as i64)
        .ok_or_else(|| Error::invalid(format!("Julian day {day} is out of range")))
}

/// The value a time is stored as: `TIMESTAMPTZ` (microseconds) or a REAL Julian day.
pub(crate) fn time_param(t: DateTime<Utc>, postgres: bool) -> Param<'static> {
    if postgres {
        Param::Timestamp(truncate_micros(t))
    } else {
        Param::Float(to_julian(t))
    }
}

/// `t` as the store will give it back: microseconds on PostgreSQL, the nearest Julian day
/// that a REAL holds on SQLite (about 40 µs apart today).
pub fn stored_time(t: DateTime<Utc>, postgres: bool) -> DateTime<Utc> {
    if postgres {
        truncate_micros(t)
    } else {
        from_julian(to_julian(t)).unwrap_or(t)
    }
}

/// `t` truncated to the microsecond, as PostgreSQL (and SQLAlchemy's text) keep times.
pub(crate) fn truncate_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

/// Reads a time column: `TIMESTAMPTZ`, a REAL Julian day, or text.
pub(super) fn time_at(row: RowRef<'_>, i: usize) -> ExecResult<DateTime<Utc>> {
    if row.is_postgres() {
        return row.get(i);
    }
    match row.value(i)? {
        Value::Float(day) => Ok(from_julian(day)?),
        Value::Int(day) => Ok(from_julian(day as f64)?),
        other => convert(i, other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn julian_days_round_trip_exactly() {
        let base = DateTime::parse_from_rfc3339("2026-11-21T10:00:00.123456Z")
            .unwrap()
            .to_utc();
        assert!((to_julian(base) - 2_461_365.916_668).abs() < 1e-5);
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..100_000 {
            let t = base + chrono::Duration::microseconds(rng.i64(-10i64.pow(15)..10i64.pow(15)));
            let day = to_julian(t);
            let back = from_julian(day).unwrap();
            assert_eq!(to_julian(back), day, "{t}");
            assert!(
                (back - t).num_microseconds().unwrap().abs() <= 50,
                "{t} {back}"
            );
            assert_eq!(stored_time(back, false), back);
        }
    }

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

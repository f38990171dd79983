//! How the events table keeps an event (its form), and the column lists and SQL each
//! form is written and read with.

use std::fmt::Write as _;

#[cfg(doc)]
use super::{EventBody, EventRecord};

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
/// other top-level field travels in `custom_metadata` under [`EXTRA_FIELDS_KEY`](crate::adk::event::EXTRA_FIELDS_KEY), as with the
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
/// `custom_metadata` under [`EXTRA_FIELDS_KEY`](crate::adk::event::EXTRA_FIELDS_KEY) go back
/// to the top level.
fn whole_values(postgres: bool, w: Whole) -> String {
    let extra = crate::adk::event::EXTRA_FIELDS_KEY;
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
    let extra = crate::adk::event::EXTRA_FIELDS_KEY;
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

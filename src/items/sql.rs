//! The items store's statement texts, apart from its API. `$1` is always the
//! conversation's id.

use super::schema::Tables;
use crate::conn::{ExecResult, RowRef};
use crate::error::Result;
use crate::value::FromValue;

/// A stored row: its id (when it reads as one) and its text.
pub(super) type Row = (Option<i64>, Result<String>);

/// A row of `id, message_data`; a text that does not read as one is kept as its error.
pub(super) fn row_of(r: RowRef<'_>) -> ExecResult<Row> {
    Ok((
        i64::from_owned(r.value(0)?).ok(),
        String::from_owned(r.value(1)?),
    ))
}

/// The conversation's items, oldest first; with `limit` (`$2`), the newest ones, newest first.
/// In the order of their ids, as the SDK reads them from 0.25 on (before, by `created_at`
/// first, which is the time each adding transaction began, not the order the adds took).
/// With `probe` (SQLite), each row also says whether the structure tables are there.
pub(super) fn get_items(t: &Tables, limit: bool, probe: Option<&str>) -> String {
    let m = &t.messages;
    let probe = probe.map(|p| format!(", {p}")).unwrap_or_default();
    if limit {
        format!(
            "SELECT id, message_data{probe} FROM {m} WHERE session_id = $1 \
             ORDER BY id DESC LIMIT $2"
        )
    } else {
        format!(
            "SELECT id, message_data{probe} FROM {m} WHERE session_id = $1 \
             ORDER BY id ASC"
        )
    }
}

/// Creates the conversation's parent row, or touches its `updated_at`; returning its id
/// (`returning`), or nothing, or `returning` itself (an expression, on SQLite).
pub(super) fn upsert_parent(t: &Tables, returning: Option<&str>) -> String {
    format!(
        "INSERT INTO {} (session_id) VALUES ($1) ON CONFLICT (session_id) \
         DO UPDATE SET updated_at = CURRENT_TIMESTAMP{}",
        t.sessions,
        returning
            .map(|r| format!(" RETURNING {r}"))
            .unwrap_or_default()
    )
}

/// PostgreSQL: the parent upsert and every item (`$2`, a JSON array) in one statement.
/// `json` (not `jsonb`) keeps each element's text as it was written.
pub(super) fn add_items_pg(t: &Tables) -> String {
    format!(
        "WITH parent AS ({}) INSERT INTO {} (session_id, message_data) \
         SELECT parent.session_id, item.value::text \
         FROM parent, json_array_elements($2::json) WITH ORDINALITY AS item(value, n) \
         ORDER BY item.n",
        upsert_parent(t, Some("session_id")),
        t.messages
    )
}

/// SQLite: one item (`$2`).
pub(super) fn add_item(t: &Tables) -> String {
    format!(
        "INSERT INTO {} (session_id, message_data) VALUES ($1, $2)",
        t.messages
    )
}

/// Removes the newest item and returns it (SQLite, or PostgreSQL with the parent row
/// already locked). With `unless` (SQLite), only when that condition is false.
pub(super) fn pop_item(t: &Tables, unless: Option<&str>) -> String {
    let m = &t.messages;
    let unless = unless.map(|c| format!(" AND NOT {c}")).unwrap_or_default();
    format!(
        "DELETE FROM {m} WHERE id = (SELECT id FROM {m} WHERE session_id = $1 \
         ORDER BY id DESC LIMIT 1){unless} RETURNING id, message_data"
    )
}

/// PostgreSQL, in one statement: locks the parent row, if no one holds it, and removes the
/// newest item. When the parent is locked it removes nothing (the tail this statement's
/// snapshot sees may be changing), and the caller waits in a transaction instead; skipping
/// rather than `NOWAIT` leaves no error in the server's log.
pub(super) fn pop_item_unless_locked(t: &Tables) -> String {
    let m = &t.messages;
    format!(
        "WITH parent AS (SELECT session_id FROM {} WHERE session_id = $1 \
         FOR UPDATE SKIP LOCKED) \
         DELETE FROM {m} WHERE id = (SELECT id FROM {m} \
         WHERE session_id = (SELECT session_id FROM parent) \
         ORDER BY id DESC LIMIT 1) RETURNING id, message_data",
        t.sessions
    )
}

/// PostgreSQL: locks the conversation's parent row, waiting for its holder, as the SDK does
/// before any change to a conversation's items.
pub(super) fn lock_parent(t: &Tables) -> String {
    format!(
        "SELECT 1 FROM {} WHERE session_id = $1 FOR UPDATE",
        t.sessions
    )
}

/// PostgreSQL: the conversation's items and parent row in one statement.
pub(super) fn clear_pg(t: &Tables) -> String {
    format!(
        "WITH items AS (DELETE FROM {} WHERE session_id = $1) \
         DELETE FROM {} WHERE session_id = $1",
        t.messages, t.sessions
    )
}

/// SQLite: the conversation's items, then (a second statement) its parent row.
pub(super) fn clear_sqlite(t: &Tables) -> [String; 2] {
    [
        format!("DELETE FROM {} WHERE session_id = $1", t.messages),
        format!("DELETE FROM {} WHERE session_id = $1", t.sessions),
    ]
}

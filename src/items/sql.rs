//! The items store's statement texts, apart from its API. `$1` is always the
//! conversation's id.

use super::schema::Tables;

/// The conversation's items, oldest first; with `limit` (`$2`), the newest ones, newest first.
pub(super) fn get_items(t: &Tables, limit: bool) -> String {
    let m = &t.messages;
    if limit {
        format!(
            "SELECT id, message_data FROM {m} WHERE session_id = $1 \
             ORDER BY created_at DESC, id DESC LIMIT $2"
        )
    } else {
        format!(
            "SELECT id, message_data FROM {m} WHERE session_id = $1 \
             ORDER BY created_at ASC, id ASC"
        )
    }
}

/// Creates the conversation's parent row, or touches its `updated_at`.
pub(super) fn upsert_parent(t: &Tables, returning: bool) -> String {
    format!(
        "INSERT INTO {} (session_id) VALUES ($1) ON CONFLICT (session_id) \
         DO UPDATE SET updated_at = CURRENT_TIMESTAMP{}",
        t.sessions,
        if returning {
            " RETURNING session_id"
        } else {
            ""
        }
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
        upsert_parent(t, true),
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

/// Removes the newest item and returns it. On PostgreSQL, SKIP LOCKED lets concurrent pops
/// take different items instead of one of them finding its row gone and returning nothing.
pub(super) fn pop_item(t: &Tables, postgres: bool) -> String {
    let m = &t.messages;
    let lock = if postgres {
        " FOR UPDATE SKIP LOCKED"
    } else {
        ""
    };
    format!(
        "DELETE FROM {m} WHERE id = (SELECT id FROM {m} WHERE session_id = $1 \
         ORDER BY created_at DESC, id DESC LIMIT 1{lock}) RETURNING id, message_data"
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

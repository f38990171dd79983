//! openai-agents' `AdvancedSQLiteSession` tables beside the items table (SQLite only).
//!
//! That store gives each item a row in `message_structure` (its branch, order and turn)
//! and keeps per-turn usage in `turn_usage`. Where those tables belong to this store's
//! items table, Python reads a conversation only through them and deletes items that
//! have no structure row as orphans, so this store writes, reads, pops and clears
//! through them too, on one branch (`main` unless
//! [`ItemsSession::on_branch`](super::ItemsSession::on_branch) names another). The
//! statements and the item classification follow openai-agents 0.24's
//! `advanced_sqlite_session.py` (the same in 0.25).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use serde_json::Value;

use super::schema::Tables;
use crate::ident::Ident;

/// The branch a conversation uses unless told otherwise (the SDK's default).
pub(super) const MAIN: &str = "main";

/// How often, at most, a read on plain tables also asks whether the structure tables
/// have appeared (the question costs about 4 µs of a 64 µs read; BENCHMARKS §2b).
const READ_PROBE_EVERY_MS: u64 = 1_000;

/// Whether the structure tables were seen beside the items table, and how to ask. Once
/// seen, calls go straight to the structured statements. Until then every write learns it
/// from a column or a condition of its plain statement (no extra round trip), so no item
/// is written without its structure row; reads ask at most once a second.
#[derive(Debug)]
pub(super) struct Presence {
    seen: AtomicBool,
    born: Instant,
    /// When (ms after `born`) a read next asks.
    next_read_probe: AtomicU64,
    /// The question, an SQL condition (built once: each write on plain tables asks it).
    probe: String,
}

impl Presence {
    /// Nothing seen yet, beside the items table `messages`.
    pub(super) fn new(messages: &Ident) -> Self {
        Presence {
            seen: AtomicBool::new(false),
            born: Instant::now(),
            next_read_probe: AtomicU64::new(0),
            probe: probe(messages),
        }
    }

    pub(super) fn get(&self) -> bool {
        self.seen.load(Ordering::Acquire)
    }

    /// The question: true (1) when the tables are there.
    pub(super) fn probe(&self) -> &str {
        &self.probe
    }

    /// True for one read a second (the first read included): it asks as well.
    pub(super) fn read_probe_due(&self) -> bool {
        let now = u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX);
        let next = self.next_read_probe.load(Ordering::Relaxed);
        now >= next
            && self
                .next_read_probe
                .compare_exchange(
                    next,
                    now.saturating_add(READ_PROBE_EVERY_MS),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
    }

    /// Remembers that the tables are there.
    pub(super) fn set(&self) {
        if !self.seen.swap(true, Ordering::AcqRel) {
            tracing::debug!(target: "session_pool::items",
                "AdvancedSQLiteSession's tables found beside the items table; following them");
        }
    }

    /// Forgets them; true if they had been seen.
    pub(super) fn forget(&self) -> bool {
        self.seen.swap(false, Ordering::AcqRel)
    }
}

/// True (1) when `turn_usage` exists and `message_structure` refers to the items table
/// `messages`, as the SDK's `AdvancedSQLiteSession` creates them (its DDL says `REFERENCES
/// <messages>(id)`). Read from `sqlite_master`: the foreign-key pragmas say the same
/// more generally but cost 35 µs inside a write where this costs 10 (BENCHMARKS §2b).
fn probe(messages: &Ident) -> String {
    // The name is a validated identifier (letters, digits, `_`): safe as a literal, and
    // ASCII, so `lower` compares it as SQLite compares names.
    format!(
        "((SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND \
         ((name = 'message_structure' AND instr(lower(sql), 'references {}(id)') > 0) \
         OR name = 'turn_usage')) = 2)",
        messages.as_str().to_ascii_lowercase()
    )
}

/// The conversation's items on branch `$2`, in the branch's order; with `limit` (`$3`),
/// the newest ones, newest first.
pub(super) fn get_items(t: &Tables, limit: bool) -> String {
    let m = &t.messages;
    let base = format!(
        "SELECT m.id, m.message_data FROM {m} m JOIN message_structure s ON m.id = s.message_id \
         WHERE m.session_id = $1 AND s.branch_id = $2"
    );
    if limit {
        format!("{base} ORDER BY s.sequence_number DESC LIMIT $3")
    } else {
        format!("{base} ORDER BY s.sequence_number ASC")
    }
}

/// One item (`$2`), returning its id.
pub(super) fn add_item(t: &Tables) -> String {
    format!(
        "INSERT INTO {} (session_id, message_data) VALUES ($1, $2) RETURNING id",
        t.messages
    )
}

/// The conversation's last sequence number (over all branches), and branch `$2`'s last
/// user turn and branch turn.
pub(super) const NUMBERS: &str = "SELECT \
     (SELECT COALESCE(MAX(sequence_number), 0) FROM message_structure WHERE session_id = $1), \
     COALESCE(MAX(user_turn_number), 0), COALESCE(MAX(branch_turn_number), 0) \
     FROM message_structure WHERE session_id = $1 AND branch_id = $2";

/// One structure row: session, message id, branch, type, sequence, user turn, branch
/// turn, tool name.
pub(super) const INSERT: &str = "INSERT INTO message_structure \
     (session_id, message_id, branch_id, message_type, sequence_number, user_turn_number, \
     branch_turn_number, tool_name) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

/// Before a pop or a clear, as the SDK does: every branch the conversation has used stays
/// reserved (then [`RESERVE`]), so a branch a Python session creates later cannot take a
/// removed one's name.
pub(super) const RESERVATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS branch_reservations \
     (session_id TEXT NOT NULL, branch_id TEXT NOT NULL, PRIMARY KEY (session_id, branch_id))";

/// Reserves every branch of conversation `$1`.
pub(super) const RESERVE: &str = "INSERT OR IGNORE INTO branch_reservations \
     (session_id, branch_id) SELECT DISTINCT session_id, branch_id FROM message_structure \
     WHERE session_id = $1";

/// Removes branch `$2`'s newest structure row, returning its message id and user turn.
pub(super) const POP: &str = "DELETE FROM message_structure WHERE id = (SELECT id FROM \
     message_structure WHERE session_id = $1 AND branch_id = $2 \
     ORDER BY sequence_number DESC LIMIT 1) RETURNING message_id, user_turn_number";

/// Message `$1`'s stored text.
pub(super) fn message_text(t: &Tables) -> String {
    format!("SELECT message_data FROM {} WHERE id = $1", t.messages)
}

/// Message `$1`, unless another branch still refers to it (branches share messages).
pub(super) fn drop_unreferenced(t: &Tables) -> String {
    format!(
        "DELETE FROM {} WHERE id = $1 AND NOT EXISTS \
         (SELECT 1 FROM message_structure WHERE message_id = $1)",
        t.messages
    )
}

/// Turn `$3`'s usage on branch `$2`, once the turn has no items left there.
pub(super) const DROP_EMPTY_TURN: &str = "DELETE FROM turn_usage WHERE session_id = $1 \
     AND branch_id = $2 AND user_turn_number = $3 AND NOT EXISTS (SELECT 1 FROM \
     message_structure WHERE session_id = $1 AND branch_id = $2 AND user_turn_number = $3)";

/// Before a clear (then [`clear`]): the table of clear generations, as the SDK makes it.
pub(super) const GENERATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS \
     session_clear_generations (session_id TEXT PRIMARY KEY, \
     generation INTEGER NOT NULL DEFAULT 0)";

/// A clear of conversation `$1`, after [`RESERVE`]: the items, the parent row, the
/// structure and usage rows, and one more clear generation (which tells Python sessions
/// pointing at another branch to go back to `main`).
pub(super) fn clear(t: &Tables) -> [String; 6] {
    [
        "INSERT OR IGNORE INTO session_clear_generations (session_id, generation) \
         VALUES ($1, 0)"
            .into(),
        format!("DELETE FROM {} WHERE session_id = $1", t.messages),
        format!("DELETE FROM {} WHERE session_id = $1", t.sessions),
        "DELETE FROM message_structure WHERE session_id = $1".into(),
        "DELETE FROM turn_usage WHERE session_id = $1".into(),
        "UPDATE session_clear_generations SET generation = generation + 1 \
         WHERE session_id = $1"
            .into(),
    ]
}

/// What the SDK records of an item in its structure row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Meta {
    /// `message_type`: `user`, `assistant`, the item's `type`, or `other`.
    pub(super) message_type: String,
    /// `tool_name`, for tool calls and their outputs.
    pub(super) tool_name: Option<String>,
    /// A user message starts a turn.
    pub(super) user: bool,
}

impl Meta {
    /// As the SDK's `_classify_message_type`, `_extract_tool_name` and `_is_user_message`.
    pub(super) fn of(item: &Value) -> Meta {
        let Some(map) = item.as_object() else {
            return Meta {
                message_type: "other".into(),
                tool_name: None,
                user: false,
            };
        };
        let role = map.get("role").and_then(Value::as_str);
        let kind = map.get("type");
        let message_type = match (role, kind) {
            (Some("user"), _) => "user".into(),
            (Some("assistant"), _) => "assistant".into(),
            (_, Some(kind)) if truthy(kind) => py_str(kind),
            _ => "other".into(),
        };
        Meta {
            message_type,
            tool_name: tool_name(map),
            user: role == Some("user"),
        }
    }
}

fn tool_name(map: &serde_json::Map<String, Value>) -> Option<String> {
    let kind = map.get("type").and_then(Value::as_str);
    match kind {
        Some("mcp_call" | "mcp_approval_request") if map.contains_key("server_label") => {
            let label = map.get("server_label").filter(|v| truthy(v));
            let name = map.get("name").filter(|v| truthy(v));
            match (label, name) {
                (Some(label), Some(name)) => Some(format!("{}.{}", py_str(label), py_str(name))),
                (Some(label), None) => Some(py_str(label)),
                (None, Some(name)) => Some(py_str(name)),
                (None, None) => None,
            }
        }
        Some("tool_search_call" | "tool_search_output") => Some("tool_search".into()),
        Some(
            kind @ ("computer_call"
            | "file_search_call"
            | "web_search_call"
            | "code_interpreter_call"
            | "shell_call"
            | "apply_patch_call"),
        ) => Some(kind.into()),
        _ => {
            let name = map.get("name")?;
            if name.is_null() {
                return None;
            }
            let name = py_str(name);
            let namespace = map
                .get("namespace")
                .filter(|v| !v.is_null())
                .map(py_str)
                .filter(|ns| !ns.is_empty());
            // A namespace equal to the name is the SDK's synthetic one: the name alone.
            Some(match namespace {
                Some(ns) if !name.is_empty() && ns != name => format!("{ns}.{name}"),
                _ => name,
            })
        }
    }
}

/// Python's truth value of a JSON value.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// Python's `str()` of a JSON value, for the scalars that occur; arrays and objects as
/// JSON text.
fn py_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta(item: Value) -> (String, Option<String>, bool) {
        let m = Meta::of(&item);
        (m.message_type, m.tool_name, m.user)
    }

    #[test]
    fn classifies_as_the_sdk() {
        let s = |v: &str| v.to_owned();
        assert_eq!(
            meta(json!({"role": "user", "content": "hi"})),
            (s("user"), None, true)
        );
        assert_eq!(
            meta(json!({"role": "assistant", "type": "message"})),
            (s("assistant"), None, false)
        );
        assert_eq!(
            meta(json!({"type": "function_call", "name": "get_weather", "call_id": "c"})),
            (s("function_call"), Some(s("get_weather")), false)
        );
        assert_eq!(
            meta(json!({"type": "function_call", "name": "f", "namespace": "ns"})),
            (s("function_call"), Some(s("ns.f")), false)
        );
        assert_eq!(
            meta(json!({"type": "function_call", "name": "f", "namespace": "f"})),
            (s("function_call"), Some(s("f")), false)
        );
        assert_eq!(
            meta(json!({"type": "mcp_call", "server_label": "srv", "name": "t"})),
            (s("mcp_call"), Some(s("srv.t")), false)
        );
        assert_eq!(
            meta(json!({"type": "mcp_call", "server_label": "", "name": "t"})),
            (s("mcp_call"), Some(s("t")), false)
        );
        assert_eq!(
            meta(json!({"type": "web_search_call", "id": "w"})),
            (s("web_search_call"), Some(s("web_search_call")), false)
        );
        assert_eq!(
            meta(json!({"type": "tool_search_output"})),
            (s("tool_search_output"), Some(s("tool_search")), false)
        );
        assert_eq!(
            meta(json!({"type": "function_call_output", "call_id": "c"})),
            (s("function_call_output"), None, false)
        );
        assert_eq!(meta(json!("plain")), (s("other"), None, false));
        assert_eq!(meta(json!({"type": ""})), (s("other"), None, false));
        assert_eq!(meta(json!({"type": 5})), (s("5"), None, false));
        assert_eq!(
            meta(json!({"name": true})),
            (s("other"), Some(s("True")), false)
        );
        // Each as openai-agents 0.24 answers it (checked in Python).
        assert_eq!(
            meta(json!({"type": "mcp_call", "server_label": null, "name": null})),
            (s("mcp_call"), None, false)
        );
        assert_eq!(
            meta(json!({"role": "system", "type": "message"})),
            (s("message"), None, false)
        );
        assert_eq!(
            meta(json!({"type": "x", "name": ""})),
            (s("x"), Some(s("")), false)
        );
        assert_eq!(
            meta(json!({"type": "x", "name": "n", "namespace": ""})),
            (s("x"), Some(s("n")), false)
        );
        assert_eq!(meta(json!({"type": 1.5})), (s("1.5"), None, false));
        assert_eq!(
            meta(json!({"name": 3, "namespace": 4})),
            (s("other"), Some(s("4.3")), false)
        );
    }
}

//! ADK's state scopes. A key's prefix says where it lives:
//!
//! - `app:` keys are shared by every session of the app (the app-state table),
//! - `user:` keys by every session of one user of the app (the user-state table),
//! - `temp:` keys last for the invocation and are never stored,
//! - the rest belong to the session (its `state` column).
//!
//! App and user rows hold their keys without the prefix, as ADK's `DatabaseSessionService`
//! stores them; a session's state as the agent sees it is the three merged, with the
//! prefixes back on.

use super::config::Tables;
use super::event::JsonMap;
use crate::support::Placeholder;

/// Keys shared by every session of an app.
pub const APP_PREFIX: &str = "app:";
/// Keys shared by every session of one user.
pub const USER_PREFIX: &str = "user:";
/// Keys that last one invocation and are never stored.
pub const TEMP_PREFIX: &str = "temp:";

/// A state or a delta, split by scope: app and user keys without their prefix, `temp:`
/// keys dropped.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Split {
    pub(crate) session: JsonMap,
    pub(crate) app: JsonMap,
    pub(crate) user: JsonMap,
}

/// Splits `state` by its keys' prefixes.
pub(crate) fn split(state: &JsonMap) -> Split {
    let mut out = Split::default();
    for (key, value) in state {
        if let Some(k) = key.strip_prefix(APP_PREFIX) {
            out.app.insert(k.to_owned(), value.clone());
        } else if let Some(k) = key.strip_prefix(USER_PREFIX) {
            out.user.insert(k.to_owned(), value.clone());
        } else if !key.starts_with(TEMP_PREFIX) {
            out.session.insert(key.clone(), value.clone());
        }
    }
    out
}

/// The state as the agent sees it: the session's keys, then the app's and the user's with
/// their prefixes.
pub(crate) fn merge(mut session: JsonMap, app: &JsonMap, user: &JsonMap) -> JsonMap {
    for (k, v) in app {
        session.insert(format!("{APP_PREFIX}{k}"), v.clone());
    }
    for (k, v) in user {
        session.insert(format!("{USER_PREFIX}{k}"), v.clone());
    }
    session
}

/// The keys of `state` that are stored with the session: none of `app:`, `user:`,
/// `temp:`.
pub(crate) fn session_part(state: &JsonMap) -> JsonMap {
    state
        .iter()
        .filter(|(k, _)| {
            !(k.starts_with(APP_PREFIX) || k.starts_with(USER_PREFIX) || k.starts_with(TEMP_PREFIX))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

impl Scope {
    /// The prefix of the scope's keys.
    pub(crate) fn prefix(self) -> &'static str {
        match self {
            Scope::App => APP_PREFIX,
            Scope::User => USER_PREFIX,
        }
    }
}

/// A delta (an object) as its scope's row stores it: as it is, or, where the keys are
/// stored with their prefix (SQLSpec's whole-event tables), with the prefix back on each key.
pub(crate) fn stored_delta(
    delta: &serde_json::Value,
    scope: Scope,
    prefixed: bool,
) -> std::borrow::Cow<'_, serde_json::Value> {
    match delta {
        serde_json::Value::Object(map) if prefixed => {
            std::borrow::Cow::Owned(serde_json::Value::Object(
                map.iter()
                    .map(|(k, v)| (format!("{}{k}", scope.prefix()), v.clone()))
                    .collect(),
            ))
        }
        other => std::borrow::Cow::Borrowed(other),
    }
}

/// A state stored with prefixed keys, as this crate holds it: the scope's keys without
/// their prefix (a key without it is not the scope's, and is left out).
pub(crate) fn unprefixed(state: JsonMap, scope: Scope) -> JsonMap {
    state
        .into_iter()
        .filter_map(|(k, v)| k.strip_prefix(scope.prefix()).map(|k| (k.to_owned(), v)))
        .collect()
}

/// Reads a stored app or user state: an object, or empty.
pub(crate) fn stored(value: Option<serde_json::Value>) -> JsonMap {
    match value {
        Some(serde_json::Value::Object(map)) => map,
        _ => JsonMap::new(),
    }
}

/// The two columns a scoped read adds after the session's: its app's state and its
/// user's, by correlated subqueries (NULL when there is no row).
pub(crate) fn state_columns(t: &Tables) -> String {
    let s = &t.sessions;
    format!(
        ", (SELECT state FROM {a} WHERE {a}.app_name = {s}.app_name), \
         (SELECT state FROM {u} WHERE {u}.app_name = {s}.app_name \
         AND {u}.user_id = {s}.user_id)",
        a = t.app_states,
        u = t.user_states
    )
}

/// The state of app `$1` and of user `$2` of it, as one row of two columns (NULL when
/// there is no row).
pub(crate) fn select_both(t: &Tables) -> String {
    format!(
        "SELECT (SELECT state FROM {} WHERE app_name = $1), \
         (SELECT state FROM {} WHERE app_name = $1 AND user_id = $2)",
        t.app_states, t.user_states
    )
}

/// Which scope table a statement writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Scope {
    App,
    User,
}

/// PostgreSQL: a condition on the user row's upsert in a statement that also upserts the
/// app's row (CTE `a`), true once that one has run. Unreferenced data-modifying CTEs run in
/// no set order (PostgreSQL runs them last first), and every writer must lock the app's row
/// before the user's, as creates and google-adk's own service do, or two writers of one
/// user deadlock.
pub(crate) const AFTER_APP: &str = "(SELECT count(*) FROM a) >= 0";

/// PostgreSQL: merges the delta `delta` (a JSON object, top-level keys replaced as
/// `dict.update` does) into the row of app `app` (and user `user`), creating it if
/// missing; concurrent writers each keep their keys, the row lock ordering them.
/// `source` is what the values are selected from (a CTE, so that nothing is written when
/// it yields no row), or `None` for a plain `VALUES`.
pub(crate) fn upsert_pg(
    t: &Tables,
    scope: Scope,
    app: Placeholder,
    user: Placeholder,
    delta: Placeholder,
    source: Option<&str>,
) -> String {
    let (table, columns, values, key) = match scope {
        Scope::App => (&t.app_states, "app_name", format!("{app}"), "app_name"),
        Scope::User => (
            &t.user_states,
            "app_name, user_id",
            format!("{app}, {user}"),
            "app_name, user_id",
        ),
    };
    let rows = match source {
        Some(from) => format!("SELECT {values}, {delta}::jsonb FROM {from}"),
        None => format!("VALUES ({values}, {delta}::jsonb)"),
    };
    format!(
        "INSERT INTO {table} ({columns}, state) {rows} ON CONFLICT ({key}) DO UPDATE \
         SET state = {table}.state || EXCLUDED.state, update_time = CURRENT_TIMESTAMP"
    )
}

/// SQLite: the stored state of a scope's row (`$1` app, then `$2` user for a user row).
pub(crate) fn select_sqlite(t: &Tables, scope: Scope) -> String {
    match scope {
        Scope::App => format!("SELECT state FROM {} WHERE app_name = $1", t.app_states),
        Scope::User => format!(
            "SELECT state FROM {} WHERE app_name = $1 AND user_id = $2",
            t.user_states
        ),
    }
}

/// SQLite: writes a scope's whole state (`$1` app, then `$2` user for a user row, then the
/// state), inside the `BEGIN IMMEDIATE` transaction that read it, so no other writer comes
/// between.
pub(crate) fn replace_sqlite(t: &Tables, scope: Scope) -> String {
    match scope {
        Scope::App => format!(
            "INSERT INTO {} (app_name, state, update_time) \
             VALUES ($1, $2, julianday('now')) \
             ON CONFLICT (app_name) DO UPDATE SET state = excluded.state, \
             update_time = excluded.update_time",
            t.app_states
        ),
        Scope::User => format!(
            "INSERT INTO {} (app_name, user_id, state, update_time) \
             VALUES ($1, $2, $3, julianday('now')) \
             ON CONFLICT (app_name, user_id) DO UPDATE SET state = excluded.state, \
             update_time = excluded.update_time",
            t.user_states
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: serde_json::Value) -> JsonMap {
        match v {
            serde_json::Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn splits_by_prefix_and_merges_back() {
        let state = map(json!({"a": 1, "app:b": 2, "user:c": 3, "temp:d": 4}));
        let s = split(&state);
        assert_eq!(s.session, map(json!({"a": 1})));
        assert_eq!(s.app, map(json!({"b": 2})));
        assert_eq!(s.user, map(json!({"c": 3})));
        let merged = merge(s.session.clone(), &s.app, &s.user);
        assert_eq!(merged, map(json!({"a": 1, "app:b": 2, "user:c": 3})));
        assert_eq!(session_part(&state), map(json!({"a": 1})));
    }
}

//! PostgreSQL's type of ADK's JSON columns: JSONB as google-adk made them before 2.15,
//! JSON from 2.15 on (which keeps each value's text as written: key order, `1e23`, `-0.0`).
//! The statements cast, build and merge in the type each column has.

use serde_json::Value as Json;

use crate::param::Param;
use crate::value::Value;

/// The type of one JSON column on PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum JsonType {
    /// `JSONB` (google-adk before 2.15, and its legacy schema version 0 before then).
    #[default]
    Jsonb,
    /// `JSON` (google-adk 2.15 and later; what `create_tables` makes).
    Json,
}

impl JsonType {
    /// The type the catalog names (`information_schema.columns.data_type`).
    pub(super) fn of(data_type: &str) -> JsonType {
        if data_type.eq_ignore_ascii_case("json") {
            JsonType::Json
        } else {
            JsonType::Jsonb
        }
    }

    /// The type's name in SQL.
    pub(super) fn name(self) -> &'static str {
        match self {
            JsonType::Jsonb => "jsonb",
            JsonType::Json => "json",
        }
    }

    /// Placeholder `$n`, bound as [`Bound`] binds it for this type, as this type.
    pub(super) fn bind(self, n: usize) -> String {
        format!("${n}::{}", self.name())
    }

    /// `value` as a column of this type takes it (see [`Bound`]).
    pub(super) fn bound(self, value: Json) -> Bound {
        match self {
            JsonType::Jsonb => Bound::Jsonb(value),
            JsonType::Json => Bound::Text(value.to_string()),
        }
    }

    /// This type's `…_build_array`, `…_build_object` or `…_agg` function: `suffix` is
    /// `build_array`, `build_object` or `agg`.
    pub(super) fn function(self, suffix: &str) -> String {
        format!("{}_{suffix}", self.name())
    }

    /// `state` with `delta`'s keys set, as Python's `dict.update` leaves it (both
    /// expressions of this type). JSONB's `||`; on JSON, where there is no such operator, the
    /// same merge keeping Python's order: the state's keys where they were, with the
    /// delta's values, then the delta's new keys in the delta's order, every value's text
    /// as stored. A state that is not an object counts as empty, as the reads take it.
    pub(super) fn merge(self, state: &str, delta: &str) -> String {
        match self {
            JsonType::Jsonb => format!("{state} || {delta}"),
            JsonType::Json => {
                let object = |e: &str| {
                    format!("CASE json_typeof({e}) WHEN 'object' THEN {e} ELSE '{{}}'::json END")
                };
                let (state, delta) = (object(state), object(delta));
                format!(
                    "(SELECT COALESCE(json_object_agg(m.k, m.v ORDER BY m.p, m.o), '{{}}'::json) \
                     FROM (SELECT s.key AS k, COALESCE(d.value, s.value) AS v, 0 AS p, s.o \
                     FROM json_each({state}) WITH ORDINALITY AS s(key, value, o) \
                     LEFT JOIN json_each({delta}) AS d ON d.key = s.key \
                     UNION ALL SELECT d.key, d.value, 1, d.o \
                     FROM json_each({delta}) WITH ORDINALITY AS d(key, value, o) \
                     WHERE NOT EXISTS (SELECT 1 FROM json_each({state}) AS s \
                     WHERE s.key = d.key)) AS m)"
                )
            }
        }
    }
}

/// A JSON value bound for a column: to a JSONB column as JSONB (sqlx's binary form, which
/// the server takes without a cast), to a JSON one as its text, which the column then keeps
/// as written (bound as JSONB, it would be rewritten on the way).
#[derive(Debug)]
pub(super) enum Bound {
    /// For a JSONB column.
    Jsonb(Json),
    /// For a JSON column.
    Text(String),
}

impl Bound {
    /// The parameter.
    pub(super) fn param(&self) -> Param<'_> {
        match self {
            Bound::Jsonb(j) => Param::Json(j),
            Bound::Text(t) => Param::Text(t),
        }
    }

    /// As a [`Value`], for the lists of values the events' columns take.
    pub(super) fn into_value(self) -> Value {
        match self {
            Bound::Jsonb(j) => Value::Json(j),
            Bound::Text(t) => Value::Text(t),
        }
    }
}

/// The types of the JSON columns ADK's statements write or build from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct JsonTypes {
    /// `sessions.state`.
    pub(super) sessions: JsonType,
    /// `app_states.state`.
    pub(super) app: JsonType,
    /// `user_states.state`.
    pub(super) user: JsonType,
    /// `events.event_data` (version 1), or version 0's JSON columns.
    pub(super) events: JsonType,
}

impl JsonTypes {
    /// The types the catalog's `(table, column, data_type)` rows give; a column not there
    /// (or on SQLite, where nothing is cast) is JSONB's.
    pub(super) fn of<'a>(columns: impl Iterator<Item = (&'a str, &'a str, &'a str)>) -> Self {
        let mut types = JsonTypes::default();
        for (table, column, data_type) in columns {
            let slot = match (table, column) {
                ("sessions", "state") => &mut types.sessions,
                ("app_states", "state") => &mut types.app,
                ("user_states", "state") => &mut types.user,
                // Version 1's one column, or any of version 0's JSON ones (made together).
                ("events", "event_data" | "content") => &mut types.events,
                _ => continue,
            };
            *slot = JsonType::of(data_type);
        }
        types
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_names_map_to_types() {
        let rows = [
            ("sessions", "state", "json"),
            ("app_states", "state", "jsonb"),
            ("user_states", "state", "JSON"),
            ("events", "event_data", "json"),
            ("events", "id", "character varying"),
        ];
        let t = JsonTypes::of(rows.into_iter());
        assert_eq!(t.sessions, JsonType::Json);
        assert_eq!(t.app, JsonType::Jsonb);
        assert_eq!(t.user, JsonType::Json);
        assert_eq!(t.events, JsonType::Json);
        assert_eq!(JsonType::Json.bind(4), "$4::json");
        assert_eq!(JsonType::Jsonb.merge("a", "b"), "a || b");
    }
}

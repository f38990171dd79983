//! ADK's legacy schema version 0 (google-adk before 1.22, and databases not migrated
//! since): one column per event field, `actions` pickled. Read and written as google-adk
//! does, through the columns the table has: older ADK versions made fewer.

use super::json_type::JsonType;
use crate::adk::codec::ActionsCodec;
use crate::adk::event::Event;
use crate::error::Result;
use crate::support::check_text;
use crate::value::Value;

/// How an events column holds its field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Json,
    Text,
    Bool,
    Bytes,
}

/// The events columns beyond the ones every version has (`id`, `app_name`, `user_id`,
/// `session_id`, `invocation_id`, `author`, `actions`, `timestamp`), in google-adk 2.13's
/// order.
const OPTIONAL: [(&str, Kind); 14] = [
    ("long_running_tool_ids_json", Kind::Text),
    ("branch", Kind::Text),
    ("content", Kind::Json),
    ("grounding_metadata", Kind::Json),
    ("custom_metadata", Kind::Json),
    ("usage_metadata", Kind::Json),
    ("citation_metadata", Kind::Json),
    ("partial", Kind::Bool),
    ("turn_complete", Kind::Bool),
    ("error_code", Kind::Text),
    ("error_message", Kind::Text),
    ("interrupted", Kind::Bool),
    ("input_transcription", Kind::Json),
    ("output_transcription", Kind::Json),
];

/// The columns an insert writes after the ones the append's statement binds itself.
const WRITTEN: [(&str, Kind); 2] = [("author", Kind::Text), ("actions", Kind::Bytes)];

/// `VARCHAR(256)` columns of version 0.
const MAX_SHORT_TEXT: usize = 256;

/// One version-0 events table: the optional columns it has, which its statements (built
/// once, by [`Schema`](super::Schema)) and its values follow.
#[derive(Debug)]
pub(super) struct Legacy {
    postgres: bool,
    columns: Vec<(&'static str, Kind)>,
}

impl Legacy {
    /// The table with the columns `has` says it has.
    pub(super) fn new(postgres: bool, has: impl Fn(&str) -> bool) -> Legacy {
        Legacy {
            postgres,
            columns: OPTIONAL.iter().copied().filter(|(c, _)| has(c)).collect(),
        }
    }

    /// One event of a read, `[id, invocation_id, time, fields, actions as hex]`, from the
    /// columns of event `e` (built in `json`, the type of the table's JSON columns).
    pub(super) fn element(&self, json: JsonType) -> String {
        let mut fields = vec!["'author', e.author".to_owned()];
        for (c, kind) in &self.columns {
            fields.push(match (kind, self.postgres) {
                (Kind::Json, false) => {
                    format!("'{c}', CASE WHEN json_valid(e.{c}) THEN json(e.{c}) END")
                }
                (Kind::Bool, false) => format!(
                    "'{c}', CASE e.{c} WHEN 1 THEN json('true') WHEN 0 THEN json('false') END"
                ),
                _ => format!("'{c}', e.{c}"),
            });
        }
        let fields = fields.join(", ");
        if self.postgres {
            format!(
                "{}(e.id, e.invocation_id, extract(epoch FROM e.timestamp), \
                 {}({fields}), encode(e.actions, 'hex'))",
                json.function("build_array"),
                json.function("build_object"),
            )
        } else {
            format!(
                "json_array(e.id, e.invocation_id, e.timestamp, json_object({fields}), \
                 hex(e.actions))"
            )
        }
    }

    fn written(&self) -> impl Iterator<Item = &(&'static str, Kind)> {
        WRITTEN.iter().chain(&self.columns)
    }

    /// How many columns an insert writes after the ones every version has.
    pub(super) fn written_count(&self) -> usize {
        self.written().count()
    }

    /// The insert's column list, after the ones every version has.
    pub(super) fn insert_columns(&self) -> String {
        let names: Vec<_> = self.written().map(|(c, _)| *c).collect();
        names.join(", ")
    }

    /// The insert's values, their placeholders numbered from `first` (JSON ones cast to
    /// `json`, the type of the table's JSON columns, which `Bound` binds them for).
    pub(super) fn insert_values(&self, first: usize, json: JsonType) -> String {
        let values: Vec<_> = self
            .written()
            .enumerate()
            .map(|(i, (_, kind))| {
                let n = first + i;
                match (self.postgres, kind) {
                    (false, _) => format!("${n}"),
                    (true, Kind::Text) => format!("${n}::text"),
                    (true, Kind::Json) => json.bind(n),
                    (true, Kind::Bool) => format!("${n}::boolean"),
                    (true, Kind::Bytes) => format!("${n}::bytea"),
                }
            })
            .collect();
        values.join(", ")
    }

    /// The values of the insert's columns for `event`, `actions` pickled as google-adk
    /// writes them. A field too long for its `VARCHAR(256)` is
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument).
    pub(super) fn values(&self, event: &Event) -> Result<Vec<Value>> {
        check_text("author", &event.author, MAX_SHORT_TEXT)?;
        let mut out = vec![
            Value::Text(event.author.clone()),
            Value::Bytes(ActionsCodec::pickle_state(&event.actions)?),
        ];
        let text = |t: &Option<String>| t.clone().map_or(Value::Null, Value::Text);
        let json = |j: Option<&serde_json::Value>| {
            j.filter(|j| !j.is_null())
                .map_or(Value::Null, |j| Value::Json(j.clone()))
        };
        let flag = |b: Option<bool>| b.map_or(Value::Null, Value::Bool);
        for (c, _) in &self.columns {
            out.push(match *c {
                "long_running_tool_ids_json" => match &event.long_running_tool_ids {
                    Some(ids) => Value::Text(serde_json::to_string(ids).unwrap_or_default()),
                    None => Value::Null,
                },
                "branch" => {
                    if let Some(b) = &event.branch {
                        check_text("branch", b, MAX_SHORT_TEXT)?;
                    }
                    text(&event.branch)
                }
                "error_code" => {
                    if let Some(code) = &event.error_code {
                        check_text("error_code", code, MAX_SHORT_TEXT)?;
                    }
                    text(&event.error_code)
                }
                "error_message" => text(&event.error_message),
                "content" => json(event.content.as_ref()),
                "grounding_metadata" => json(event.grounding_metadata.as_ref()),
                "custom_metadata" => json(event.custom_metadata.as_ref()),
                "partial" => flag(event.partial),
                "turn_complete" => flag(event.turn_complete),
                "interrupted" => flag(event.interrupted),
                // Fields `Event` keeps in `extra`, by their ADK name.
                other => json(event.extra.get(other)),
            });
        }
        Ok(out)
    }
}

/// The fields of a version-0 row as read: `long_running_tool_ids_json` (a JSON list as
/// text) becomes `long_running_tool_ids`, and the pickled actions (hex) are decoded; a
/// pickle that does not decode reads as no actions, with a warning.
pub(super) fn fields(mut data: serde_json::Value, actions_hex: Option<&str>) -> serde_json::Value {
    if let Some(map) = data.as_object_mut() {
        if let Some(serde_json::Value::String(ids)) = map.remove("long_running_tool_ids_json")
            && let Ok(list) = serde_json::from_str::<serde_json::Value>(&ids)
        {
            map.insert("long_running_tool_ids".into(), list);
        }
        let actions = actions_hex
            .and_then(unhex)
            .map(|bytes| ActionsCodec::decode(&bytes));
        match actions {
            Some(Ok(actions)) => {
                if let Ok(v) = serde_json::to_value(actions) {
                    map.insert("actions".into(), v);
                }
            }
            Some(Err(e)) => {
                tracing::warn!(target: "session_pool::adk", error = %e,
                    "a legacy event's pickled actions do not decode; reading them as empty");
            }
            None => {}
        }
    }
    data
}

fn unhex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_shift_past_the_statements_own() {
        let all = Legacy::new(true, |_| true);
        let values = all.insert_values(11, JsonType::Jsonb);
        assert!(
            values.starts_with("$11::text, $12::bytea, $13::text"),
            "{values}"
        );
        assert!(values.ends_with("$26::jsonb"), "{values}");
        let few = Legacy::new(false, |c| c == "content");
        assert_eq!(few.insert_columns(), "author, actions, content");
        assert_eq!(few.insert_values(7, JsonType::Json), "$7, $8, $9");
        assert!(
            Legacy::new(true, |_| true)
                .insert_values(11, JsonType::Json)
                .ends_with("$26::json")
        );
    }

    #[test]
    fn hex_decodes_and_rejects_garbage() {
        assert_eq!(unhex("00ff10"), Some(vec![0, 255, 16]));
        assert_eq!(unhex("0"), None);
        assert_eq!(unhex("zz"), None);
    }
}

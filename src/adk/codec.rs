//! `ActionsCodec`: the bytes of the events table's `actions` column, as JSON or as Python's pickle.

use super::event::EventActions;
use super::pickle;
use crate::error::{Error, Result};

/// The Python module and class a pickle of [`EventActions`] names.
const PY_MODULE: &str = "google.adk.events.event_actions";
const PY_CLASS: &str = "EventActions";

/// How [`EventActions`] are written into the events table's `actions` column.
///
/// Reading never needs to be told: each row's format is detected (a pickle starts with
/// byte `0x80`, JSON with `{`), so a table holding both reads as one.
///
/// - [`Json`](ActionsCodec::Json) (the default): compact UTF-8 JSON with ADK's
///   snake_case field names, for example `{"state_delta":{"topic":"rust"}}`. Python's
///   stores cannot read it.
/// - [`Pickle`](ActionsCodec::Pickle): what SQLSpec's Python stores write and read
///   (`pickle.dumps(event.actions)`). Choose it when a Python `SQLSpecSessionService`
///   shares the tables. The bytes are a pickle (protocol 4) of the call
///   `EventActions.model_validate({...})` from `google.adk.events.event_actions`, holding
///   only dicts, lists, strings, numbers, booleans and None: `pickle.loads` builds a real
///   `EventActions`, and fields a later ADK adds take their defaults. ADK's model forbids
///   fields it does not know, so extra fields Python should read must be ones its ADK has.
///
/// Reading a pickle runs no Python and no code: it accepts only the data opcodes protocols
/// 2 to 5 use for these models, and takes classes as names. A pydantic model reads as the
/// fields it had set (plus its extra fields), so nested objects (an `AuthConfig`, a genai
/// `Content`) become JSON objects; enums read as their value, sets and tuples as lists,
/// bytes as text (or a list of numbers when not UTF-8), integers beyond 64 bits as floats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ActionsCodec {
    /// UTF-8 JSON (this crate's format).
    #[default]
    Json,
    /// A Python pickle that `pickle.loads` turns into ADK's `EventActions` (the Python
    /// stores' format).
    Pickle,
}

impl ActionsCodec {
    /// `actions` in this format.
    pub fn encode(self, actions: &EventActions) -> Result<Vec<u8>> {
        let invalid =
            |e: serde_json::Error| Error::invalid(format!("event actions do not serialize: {e}"));
        if self == ActionsCodec::Json && actions.extra.is_empty() {
            // Straight to text. With extra fields, the map below keeps one of each key when
            // an extra one repeats a field's name (written twice, it would not read back).
            return serde_json::to_vec(actions).map_err(invalid);
        }
        let json = serde_json::to_value(actions).map_err(invalid)?;
        match self {
            ActionsCodec::Json => serde_json::to_vec(&json).map_err(invalid),
            ActionsCodec::Pickle => {
                let serde_json::Value::Object(fields) = json else {
                    unreachable!("EventActions serializes as a JSON object")
                };
                Ok(pickle::write_model_validate(PY_MODULE, PY_CLASS, &fields))
            }
        }
    }

    /// `actions` as the pickle `pickle.dumps(actions)` makes (no `model_validate` in it),
    /// which google-adk's restricted unpickler loads: version 0 of its
    /// `DatabaseSessionService` tables.
    pub(crate) fn pickle_state(actions: &EventActions) -> Result<Vec<u8>> {
        match serde_json::to_value(actions) {
            Ok(serde_json::Value::Object(fields)) => {
                Ok(pickle::write_pydantic_state(PY_MODULE, PY_CLASS, &fields))
            }
            Ok(_) => unreachable!("EventActions serializes as a JSON object"),
            Err(e) => Err(Error::invalid(format!(
                "event actions do not serialize: {e}"
            ))),
        }
    }

    /// The format `bytes` are in: a pickle when they start with the `PROTO` opcode
    /// (`0x80`), JSON otherwise; `None` for no bytes.
    pub fn detect(bytes: &[u8]) -> Option<ActionsCodec> {
        match bytes.first()? {
            0x80 => Some(ActionsCodec::Pickle),
            _ => Some(ActionsCodec::Json),
        }
    }

    /// Actions written in either format (see [`detect`](ActionsCodec::detect)); no bytes
    /// are empty actions.
    ///
    /// Bytes that are neither are [`Error::ColumnDecode`] on column `actions`, with the
    /// reason as its source.
    pub fn decode(bytes: &[u8]) -> Result<EventActions> {
        let undecodable =
            |found: &str, e: Box<dyn std::error::Error + Send + Sync>| Error::ColumnDecode {
                column: "actions".into(),
                expected: "EventActions".into(),
                found: found.into(),
                source: Some(e),
            };
        match ActionsCodec::detect(bytes) {
            None => Ok(EventActions::default()),
            Some(ActionsCodec::Json) => {
                serde_json::from_slice(bytes).map_err(|e| undecodable("JSON", Box::new(e)))
            }
            Some(ActionsCodec::Pickle) => {
                let value =
                    pickle::read(bytes).map_err(|e| undecodable("a pickle", Box::new(e)))?;
                let serde_json::Value::Object(mut fields) = value else {
                    return Err(undecodable(
                        "a pickle",
                        format!("it holds {value}, not an object's fields").into(),
                    ));
                };
                // A field pickled as None is the field's default.
                fields.retain(|_, v| !v.is_null());
                serde_json::from_value(serde_json::Value::Object(fields))
                    .map_err(|e| undecodable("a pickle", Box::new(e)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_formats_round_trip_and_are_detected() {
        let mut actions = EventActions::default();
        actions.state_delta.insert("user:name".into(), "Ann".into());
        actions.artifact_delta.insert("report.pdf".into(), 2);
        actions.transfer_to_agent = Some("billing".into());
        actions.escalate = Some(false);
        actions
            .extra
            .insert("end_of_agent".into(), serde_json::Value::Bool(true));
        for codec in [ActionsCodec::Json, ActionsCodec::Pickle] {
            let bytes = codec.encode(&actions).unwrap();
            assert_eq!(ActionsCodec::detect(&bytes), Some(codec));
            assert_eq!(ActionsCodec::decode(&bytes).unwrap(), actions, "{codec:?}");
        }
        assert_eq!(ActionsCodec::decode(b"").unwrap(), EventActions::default());
    }

    #[test]
    fn json_with_and_without_extra_fields_reads_back() {
        let mut actions = EventActions::default();
        actions.state_delta.insert("topic".into(), "rust".into());
        actions.escalate = Some(false);
        let plain = ActionsCodec::Json.encode(&actions).unwrap();
        assert_eq!(ActionsCodec::decode(&plain).unwrap(), actions);
        // An extra field named like a model field is written once (the extra value wins),
        // so the bytes still read back.
        actions
            .extra
            .insert("escalate".into(), serde_json::Value::Bool(true));
        let bytes = ActionsCodec::Json.encode(&actions).unwrap();
        let text = std::str::from_utf8(&bytes).unwrap();
        assert_eq!(text.matches("\"escalate\"").count(), 1, "{text}");
        let back = ActionsCodec::decode(&bytes).unwrap();
        assert_eq!(back.escalate, Some(true));
        assert_eq!(back.state_delta["topic"], "rust");
    }

    #[test]
    fn a_real_adk_pickle_decodes_with_unknown_fields_kept() {
        let bytes = include_bytes!("pickle/fixtures/adk_2_13_event_actions.pickle");
        let actions = ActionsCodec::decode(bytes).unwrap();
        assert_eq!(actions.state_delta["topic"], "rust");
        assert_eq!(actions.artifact_delta["x.txt"], 3);
        assert_eq!(actions.transfer_to_agent.as_deref(), Some("billing"));
        assert_eq!(actions.escalate, Some(false));
        assert_eq!(actions.extra["compaction"]["end_timestamp"], 2.0);
        assert!(actions.extra.contains_key("requested_tool_confirmations"));
        // Written back as a pickle, it reads the same.
        let again = ActionsCodec::Pickle.encode(&actions).unwrap();
        assert_eq!(ActionsCodec::decode(&again).unwrap(), actions);
    }

    #[test]
    fn nested_models_and_enums_read_as_pythons_json_dump() {
        // EventActions(requested_auth_configs={"call_7": AuthConfig(OAuth2 scheme,
        // AuthCredential(auth_type=AuthCredentialTypes.OAUTH2, ...))}): fastapi models and
        // an enum inside; expected is Python's `model_dump(mode="json", exclude_unset=True)`.
        let bytes = include_bytes!("pickle/fixtures/adk_2_13_auth_config.pickle");
        let actions = ActionsCodec::decode(bytes).unwrap();
        assert_eq!(actions.state_delta["when"], "x");
        assert_eq!(
            serde_json::Value::Object(actions.requested_auth_configs),
            serde_json::json!({"call_7": {
                "auth_scheme": {"flows": {"authorizationCode": {"scopes": {"read": "r"},
                    "authorizationUrl": "https://a/auth", "tokenUrl": "https://a/token"}}},
                "raw_auth_credential": {"auth_type": "oauth2",
                    "oauth2": {"client_id": "cid", "client_secret": "s"}},
                "credential_key": "adk_oauth2_be570532078b8948_oauth2_f7eb2813ae07e841"}})
        );
    }

    #[test]
    fn garbage_is_a_decode_error_naming_the_column() {
        for bad in [&b"\x80\x04\x82\x01."[..], b"{not json", b"\x80\x04K\x01."] {
            let err = ActionsCodec::decode(bad).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::Decode, "{err}");
            assert!(err.to_string().contains("actions"), "{err}");
        }
    }
}

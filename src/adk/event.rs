//! The ADK `Event` and `EventActions` model, and how it maps onto the seed's columns.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::codec::ActionsCodec;
use super::record::EventRecord;
use crate::error::{Error, Result};

/// JSON object, as used for state and deltas.
pub type JsonMap = serde_json::Map<String, serde_json::Value>;

/// What an event does besides carrying content (ADK's `EventActions`).
///
/// **Encoding.** The events table's `actions` column holds this struct in the format an
/// [`ActionsCodec`] chooses: UTF-8 JSON by default, with ADK's snake_case field names and
/// empty fields left out (`{"state_delta":{"topic":"rust"},"transfer_to_agent":"billing"}`),
/// or the pickle Python's stores write. Either is read back, row by row. Fields this model
/// does not know are kept in `extra`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct EventActions {
    /// Do not summarize the function response this event carries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_summarization: Option<bool>,
    /// Changes to the session state: merged into it when the event is appended.
    /// Keys starting with `temp:` are never stored.
    #[serde(skip_serializing_if = "JsonMap::is_empty")]
    pub state_delta: JsonMap,
    /// Artifact name → new version.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub artifact_delta: BTreeMap<String, i64>,
    /// Hand the conversation to this agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfer_to_agent: Option<String>,
    /// The agent escalates to its parent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub escalate: Option<bool>,
    /// Authentication requests, by function call id.
    #[serde(skip_serializing_if = "JsonMap::is_empty")]
    pub requested_auth_configs: JsonMap,
    /// Fields of newer ADK versions, kept as they are.
    #[serde(flatten)]
    pub extra: JsonMap,
}

/// One step of a conversation (ADK's `Event`): a user message, a model reply, a tool call.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Event {
    /// Unique id; [`Event::new`] makes a time-ordered UUIDv7, so ids sort like creation.
    pub id: String,
    /// The invocation (one user turn through the agents) that produced it. Stored as `''`
    /// when `None` (ADK's default, which Python can read), and read back as `None`.
    pub invocation_id: Option<String>,
    /// `user` or the name of the agent that wrote it.
    pub author: String,
    /// The agent branch, `root.child` style.
    pub branch: Option<String>,
    /// When it happened (UTC).
    pub timestamp: DateTime<Utc>,
    /// The message content, `{"role": …, "parts": [{"text": …}]}` in ADK's shape.
    pub content: Option<serde_json::Value>,
    /// State changes, transfers, escalation…
    pub actions: EventActions,
    /// Ids of long-running tool calls.
    pub long_running_tool_ids: Option<Vec<String>>,
    /// Grounding metadata from the model.
    pub grounding_metadata: Option<serde_json::Value>,
    /// Application metadata.
    pub custom_metadata: Option<serde_json::Value>,
    /// True for a streaming chunk: the session service does not store partial events.
    pub partial: Option<bool>,
    /// True when the model's turn is complete.
    pub turn_complete: Option<bool>,
    /// True when the turn was interrupted.
    pub interrupted: Option<bool>,
    /// An error code from the model.
    pub error_code: Option<String>,
    /// An error message from the model.
    pub error_message: Option<String>,
    /// Event fields the seed's columns have no place for (`usage_metadata`,
    /// `citation_metadata`, and whatever a later ADK adds), by their ADK name. Stored in
    /// the `custom_metadata` column under the key [`EXTRA_FIELDS_KEY`], and moved back here
    /// when read, so they round-trip through the store and the service.
    pub extra: JsonMap,
}

/// The key of `custom_metadata` under which [`Event::extra`] is stored.
pub const EXTRA_FIELDS_KEY: &str = "_session_pool_event_fields";

impl Event {
    /// An empty event by `author`, with a fresh UUIDv7 id and the current time.
    pub fn new(author: impl Into<String>) -> Event {
        Event {
            id: uuid::Uuid::now_v7().to_string(),
            invocation_id: None,
            author: author.into(),
            branch: None,
            timestamp: Utc::now(),
            content: None,
            actions: EventActions::default(),
            long_running_tool_ids: None,
            grounding_metadata: None,
            custom_metadata: None,
            partial: None,
            turn_complete: None,
            interrupted: None,
            error_code: None,
            error_message: None,
            extra: JsonMap::new(),
        }
    }

    /// A text message by `author` in `role` (`user` or `model`), in ADK's content shape.
    pub fn text(author: impl Into<String>, role: &str, text: &str) -> Event {
        Event::new(author).with_content(serde_json::json!({
            "role": role,
            "parts": [{ "text": text }],
        }))
    }

    /// Sets the content.
    #[must_use]
    pub fn with_content(mut self, content: serde_json::Value) -> Event {
        self.content = Some(content);
        self
    }

    /// Sets the invocation id.
    #[must_use]
    pub fn with_invocation_id(mut self, id: impl Into<String>) -> Event {
        self.invocation_id = Some(id.into());
        self
    }

    /// Adds one state change.
    #[must_use]
    pub fn with_state_delta(mut self, key: impl Into<String>, value: serde_json::Value) -> Event {
        self.actions.state_delta.insert(key.into(), value);
        self
    }

    /// The first text part of the content, if any.
    pub fn first_text(&self) -> Option<&str> {
        self.content
            .as_ref()?
            .get("parts")?
            .as_array()?
            .iter()
            .find_map(|p| p.get("text")?.as_str())
    }

    /// The row for this event in session `session_id` of `app_name`/`user_id`, with its
    /// actions as JSON ([`ActionsCodec::Json`]).
    pub fn to_record(
        &self,
        app_name: &str,
        user_id: &str,
        session_id: &str,
    ) -> Result<EventRecord> {
        self.to_record_with(ActionsCodec::Json, app_name, user_id, session_id)
    }

    /// [`to_record`](Event::to_record), with the actions in `codec`'s format.
    pub fn to_record_with(
        &self,
        codec: ActionsCodec,
        app_name: &str,
        user_id: &str,
        session_id: &str,
    ) -> Result<EventRecord> {
        let actions = codec.encode(&self.actions)?;
        let long_running_tool_ids_json = self
            .long_running_tool_ids
            .as_ref()
            .map(|ids| serde_json::to_string(ids).expect("a list of strings serializes"));
        let custom_metadata = match (&self.custom_metadata, self.extra.is_empty()) {
            (custom, true) => custom.clone(),
            (None, false) => Some(serde_json::json!({ EXTRA_FIELDS_KEY: self.extra })),
            (Some(serde_json::Value::Object(custom)), false) => {
                let mut custom = custom.clone();
                custom.insert(
                    EXTRA_FIELDS_KEY.to_owned(),
                    serde_json::Value::Object(self.extra.clone()),
                );
                Some(serde_json::Value::Object(custom))
            }
            (Some(_), false) => {
                return Err(Error::invalid(
                    "an event with extra fields needs custom_metadata to be a JSON object \
                     (or none): the extra fields are stored in it",
                ));
            }
        };
        Ok(EventRecord {
            id: self.id.clone(),
            session_id: session_id.to_owned(),
            app_name: app_name.to_owned(),
            user_id: user_id.to_owned(),
            // ADK's model has no "no invocation": Python reads NULL as invalid, '' as unset.
            invocation_id: Some(self.invocation_id.clone().unwrap_or_default()),
            author: Some(self.author.clone()),
            actions: Some(actions),
            long_running_tool_ids_json,
            branch: self.branch.clone(),
            timestamp: self.timestamp,
            content: self.content.clone(),
            grounding_metadata: self.grounding_metadata.clone(),
            custom_metadata,
            partial: self.partial,
            turn_complete: self.turn_complete,
            interrupted: self.interrupted,
            error_code: self.error_code.clone(),
            error_message: self.error_message.clone(),
        })
    }

    /// The event a row holds. Its actions may be JSON or a pickle (see [`ActionsCodec`]);
    /// actions or tool ids that do not decode are left empty with a warning.
    pub fn from_record(record: EventRecord) -> Event {
        let id = record.id;
        let actions = ActionsCodec::decode(record.actions.as_deref().unwrap_or_default())
            .unwrap_or_else(|e| {
                tracing::warn!(target: "session_pool::adk", event = %id, error = %e,
                    "event actions do not decode; reading them as empty");
                EventActions::default()
            });
        let long_running_tool_ids = record.long_running_tool_ids_json.as_deref().and_then(|s| {
            serde_json::from_str(s)
                .map_err(|e| {
                    tracing::warn!(target: "session_pool::adk", event = %id, error = %e,
                        "long_running_tool_ids_json is not a JSON list of strings; ignored");
                })
                .ok()
        });
        // The extra fields come back out of custom_metadata; one that held nothing else
        // was made for them, and reads as none.
        let mut custom_metadata = record.custom_metadata;
        let mut extra = JsonMap::new();
        if let Some(serde_json::Value::Object(custom)) = &mut custom_metadata
            && let Some(fields) = custom.remove(EXTRA_FIELDS_KEY)
        {
            match fields {
                serde_json::Value::Object(fields) => extra = fields,
                other => {
                    custom.insert(EXTRA_FIELDS_KEY.to_owned(), other);
                }
            }
            if custom.is_empty() {
                custom_metadata = None;
            }
        }
        Event {
            id,
            invocation_id: record.invocation_id.filter(|id| !id.is_empty()),
            author: record.author.unwrap_or_default(),
            branch: record.branch,
            timestamp: record.timestamp,
            content: record.content,
            actions,
            long_running_tool_ids,
            grounding_metadata: record.grounding_metadata,
            custom_metadata,
            partial: record.partial,
            turn_complete: record.turn_complete,
            interrupted: record.interrupted,
            error_code: record.error_code,
            error_message: record.error_message,
            extra,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_encode_as_compact_json_and_round_trip() {
        let mut e = Event::text("user", "user", "hi").with_state_delta("topic", "rust".into());
        e.actions.transfer_to_agent = Some("billing".into());
        e.actions
            .extra
            .insert("end_of_agent".into(), serde_json::Value::Bool(true));
        e.long_running_tool_ids = Some(vec!["call_1".into()]);
        let record = e.to_record("app", "u", "s").unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(record.actions.as_ref().unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"state_delta": {"topic": "rust"},
                "transfer_to_agent": "billing", "end_of_agent": true})
        );
        assert_eq!(Event::from_record(record), e);
        assert_eq!(e.first_text(), Some("hi"));
    }

    #[test]
    fn extra_fields_round_trip_through_custom_metadata() {
        let mut e = Event::text("model", "model", "hi");
        e.extra.insert(
            "usage_metadata".into(),
            serde_json::json!({"prompt_token_count": 12, "candidates_token_count": 3}),
        );
        e.extra
            .insert("a_future_field".into(), serde_json::json!([1, 2]));
        // With no custom metadata of its own.
        let record = e.to_record("app", "u", "s").unwrap();
        assert!(record.custom_metadata.as_ref().unwrap()[EXTRA_FIELDS_KEY].is_object());
        assert_eq!(Event::from_record(record), e);
        // Beside the application's.
        e.custom_metadata = Some(serde_json::json!({"trace": "t1"}));
        let record = e.to_record("app", "u", "s").unwrap();
        assert_eq!(Event::from_record(record), e);
        // Custom metadata that is not an object cannot carry them.
        e.custom_metadata = Some(serde_json::json!("text"));
        assert!(e.to_record("app", "u", "s").is_err());
    }

    #[test]
    fn undecodable_actions_read_as_empty() {
        let mut record = Event::new("model").to_record("a", "u", "s").unwrap();
        record.actions = Some(b"\x80\x04\x82pickle".to_vec());
        record.long_running_tool_ids_json = Some("{not json".into());
        let e = Event::from_record(record);
        assert_eq!(e.actions, EventActions::default());
        assert_eq!(e.long_running_tool_ids, None);
    }

    #[test]
    fn uuid_v7_ids_sort_by_creation() {
        let ids: Vec<String> = (0..1000).map(|_| Event::new("x").id).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
    }
}

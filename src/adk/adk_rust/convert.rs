//! `adk_core::Event` to this crate's [`Event`] and back.
//!
//! The columns both models have are mapped field by field. Whatever else an ADK-Rust event
//! carries is kept as JSON under its own serde name: action fields (`tool_confirmation`,
//! `compaction`, `route`, …) in [`EventActions::extra`], event fields (`usage_metadata`,
//! `finish_reason`, `event_metadata`, …) in [`Event::extra`]. So an event reads back as
//! it was written.

use crate::adk::event::{Event, EventActions, JsonMap};

/// Fields of `adk_core::EventActions` with a place of their own in [`EventActions`].
const MAPPED_ACTIONS: [&str; 5] = [
    "state_delta",
    "artifact_delta",
    "skip_summarization",
    "transfer_to_agent",
    "escalate",
];

/// Fields of `adk_core::Event` (and its flattened `LlmResponse`) mapped onto columns.
const MAPPED_EVENT: [&str; 13] = [
    "id",
    "timestamp",
    "invocation_id",
    "branch",
    "author",
    "content",
    "partial",
    "turn_complete",
    "interrupted",
    "error_code",
    "error_message",
    "actions",
    "long_running_tool_ids",
];

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

fn object(value: serde_json::Value) -> JsonMap {
    match value {
        serde_json::Value::Object(map) => map,
        _ => JsonMap::new(),
    }
}

/// This crate's event for an ADK-Rust one.
pub(crate) fn from_adk(event: &adk_core::Event) -> Result<Event, serde_json::Error> {
    let a = &event.actions;
    let mut actions = EventActions {
        skip_summarization: a.skip_summarization.then_some(true),
        state_delta: a
            .state_delta
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        artifact_delta: a
            .artifact_delta
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect(),
        transfer_to_agent: a.transfer_to_agent.clone(),
        escalate: a.escalate.then_some(true),
        ..EventActions::default()
    };
    actions.extra = object(serde_json::to_value(a)?);
    actions
        .extra
        .retain(|k, v| !MAPPED_ACTIONS.contains(&k.as_str()) && !v.is_null());

    let r = &event.llm_response;
    let mut out = Event::new(event.author.clone());
    out.id = event.id.clone();
    out.timestamp = event.timestamp;
    out.invocation_id = non_empty(&event.invocation_id);
    out.branch = non_empty(&event.branch);
    out.content = r.content.as_ref().map(serde_json::to_value).transpose()?;
    out.actions = actions;
    out.long_running_tool_ids =
        (!event.long_running_tool_ids.is_empty()).then(|| event.long_running_tool_ids.clone());
    out.partial = Some(r.partial);
    out.turn_complete = Some(r.turn_complete);
    out.interrupted = Some(r.interrupted);
    out.error_code = r.error_code.clone();
    out.error_message = r.error_message.clone();
    out.extra = object(serde_json::to_value(event)?);
    out.extra
        .retain(|k, v| !MAPPED_EVENT.contains(&k.as_str()) && !v.is_null());
    Ok(out)
}

/// The ADK-Rust event for one of this crate's: exact for events [`from_adk`] made. An
/// event that does not fit ADK-Rust's model whole (say content a Python agent wrote in a
/// shape `adk_core::Content` has no variant for) is read without its content and extra
/// fields, with a warning.
pub(crate) fn to_adk(event: &Event) -> Result<adk_core::Event, serde_json::Error> {
    match serde_json::from_value(adk_json(event, true)) {
        Ok(e) => Ok(e),
        Err(e) => {
            tracing::warn!(target: "session_pool::adk", event = %event.id, error = %e,
                "event does not fit adk_core::Event; read without its content and extra fields");
            serde_json::from_value(adk_json(event, false))
        }
    }
}

fn adk_json(event: &Event, whole: bool) -> serde_json::Value {
    use serde_json::Value;
    let mut actions = if whole {
        event.actions.extra.clone()
    } else {
        JsonMap::new()
    };
    let a = &event.actions;
    actions.insert("state_delta".into(), Value::Object(a.state_delta.clone()));
    actions.insert("artifact_delta".into(), serde_json::json!(a.artifact_delta));
    actions.insert(
        "skip_summarization".into(),
        Value::Bool(a.skip_summarization.unwrap_or(false)),
    );
    actions.insert(
        "transfer_to_agent".into(),
        serde_json::json!(a.transfer_to_agent),
    );
    actions.insert("escalate".into(), Value::Bool(a.escalate.unwrap_or(false)));

    let mut map = if whole {
        event.extra.clone()
    } else {
        JsonMap::new()
    };
    let fields = [
        ("id", Value::String(event.id.clone())),
        ("timestamp", serde_json::json!(event.timestamp)),
        (
            "invocation_id",
            Value::String(event.invocation_id.clone().unwrap_or_default()),
        ),
        (
            "branch",
            Value::String(event.branch.clone().unwrap_or_default()),
        ),
        ("author", Value::String(event.author.clone())),
        (
            "content",
            if whole {
                serde_json::json!(event.content)
            } else {
                Value::Null
            },
        ),
        ("partial", Value::Bool(event.partial.unwrap_or(false))),
        (
            "turn_complete",
            Value::Bool(event.turn_complete.unwrap_or(false)),
        ),
        (
            "interrupted",
            Value::Bool(event.interrupted.unwrap_or(false)),
        ),
        ("error_code", serde_json::json!(event.error_code)),
        ("error_message", serde_json::json!(event.error_message)),
        ("actions", Value::Object(actions)),
        (
            "long_running_tool_ids",
            serde_json::json!(event.long_running_tool_ids.clone().unwrap_or_default()),
        ),
    ];
    for (k, v) in fields {
        map.insert(k.into(), v);
    }
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use adk_core::{Content, Part};

    #[test]
    fn an_adk_rust_event_round_trips() {
        let mut e = adk_core::Event::new("inv-1");
        e.author = "assistant".into();
        e.branch = "root.helper".into();
        e.llm_response.content = Some(Content {
            role: "model".into(),
            parts: vec![Part::Text { text: "hi".into() }],
        });
        e.llm_response.turn_complete = true;
        e.llm_response.error_code = Some("E1".into());
        e.llm_response.provider_metadata = Some(serde_json::json!({"cost": 3}));
        e.actions
            .state_delta
            .insert("user:name".into(), "Ann".into());
        e.actions.artifact_delta.insert("a.txt".into(), 2);
        e.actions.escalate = true;
        e.actions.route = Some(vec!["next".into()]);
        e.long_running_tool_ids = vec!["call_1".into()];
        e.provider_metadata.insert("k".into(), "v".into());

        let ours = from_adk(&e).unwrap();
        assert_eq!(ours.invocation_id.as_deref(), Some("inv-1"));
        assert_eq!(ours.first_text(), Some("hi"));
        assert_eq!(ours.actions.escalate, Some(true));
        assert_eq!(ours.actions.skip_summarization, None);
        assert_eq!(ours.actions.extra["route"], serde_json::json!(["next"]));
        assert_eq!(ours.extra["event_metadata"], serde_json::json!({"k": "v"}));
        assert_eq!(
            ours.extra["provider_metadata"],
            serde_json::json!({"cost": 3})
        );

        let back = to_adk(&ours).unwrap();
        assert_eq!(
            serde_json::to_value(&back).unwrap(),
            serde_json::to_value(&e).unwrap()
        );
    }

    #[test]
    fn content_adk_rust_cannot_hold_is_dropped_not_fatal() {
        let mut ours = Event::new("model").with_content(serde_json::json!({"role": 7}));
        ours.actions.state_delta.insert("k".into(), 1.into());
        let back = to_adk(&ours).unwrap();
        assert!(back.llm_response.content.is_none());
        assert_eq!(back.actions.state_delta["k"], 1);
        assert_eq!(back.author, "model");
    }
}

//! An [`Event`] as google-adk's `DatabaseSessionService` keeps it in `events.event_data`:
//! pydantic's `model_dump(exclude_none=True, mode="json")`, ADK's field names at the top
//! level, no null members, the timestamp in seconds since the epoch.

use chrono::{DateTime, Utc};
use serde_json::Value as Json;

use crate::adk::event::{Event, EventActions, JsonMap};

// The top-level fields `Event` has a place for; any other member goes to `Event::extra`
// and back.
use crate::adk::record::EVENT_DATA_FIELDS as KNOWN;

/// Seconds since the epoch, as Python's `Event.timestamp` float (microseconds kept).
pub(super) fn seconds(t: DateTime<Utc>) -> f64 {
    t.timestamp_micros() as f64 / 1e6
}

/// A float of seconds back to a time, to the microsecond as Python's
/// `datetime.fromtimestamp` rounds it (google-adk 1.22 to 2.6 write the `timestamp` column
/// so and read it back): the fraction apart from the whole seconds, then half to even. Rounding
/// `secs * 1e6` instead is a microsecond off now and then, since that product is only
/// exact to a quarter of one. `None` when out of range.
pub(super) fn from_seconds(secs: f64) -> Option<DateTime<Utc>> {
    if !secs.is_finite() || secs.abs() > 9.0e12 {
        return None;
    }
    let whole = secs.floor();
    let micros = ((secs - whole) * 1e6).round_ties_even();
    DateTime::from_timestamp_micros(whole as i64 * 1_000_000 + micros as i64)
}

/// The `event_data` object of `event`, whose timestamp is `at` (the event's own, to the
/// microsecond, as the `timestamp` column holds it).
pub(super) fn to_json(event: &Event, at: DateTime<Utc>) -> Json {
    let mut map = JsonMap::new();
    // Unknown fields first, so a known one of the same name cannot be shadowed.
    for (k, v) in &event.extra {
        if !v.is_null() && !KNOWN.contains(&k.as_str()) {
            map.insert(k.clone(), v.clone());
        }
    }
    let mut put = |k: &str, v: Option<Json>| {
        if let Some(v) = v.filter(|v| !v.is_null()) {
            map.insert(k.to_owned(), v);
        }
    };
    put("id", Some(Json::from(event.id.as_str())));
    put(
        "invocation_id",
        Some(Json::from(event.invocation_id.as_deref().unwrap_or(""))),
    );
    put("author", Some(Json::from(event.author.as_str())));
    put("branch", event.branch.as_deref().map(Json::from));
    put("timestamp", Some(Json::from(seconds(at))));
    put("content", event.content.clone());
    put("actions", serde_json::to_value(&event.actions).ok());
    put(
        "long_running_tool_ids",
        event
            .long_running_tool_ids
            .as_ref()
            .map(|ids| Json::from(ids.clone())),
    );
    put("grounding_metadata", event.grounding_metadata.clone());
    put("custom_metadata", event.custom_metadata.clone());
    put("partial", event.partial.map(Json::from));
    put("turn_complete", event.turn_complete.map(Json::from));
    put("interrupted", event.interrupted.map(Json::from));
    put("error_code", event.error_code.as_deref().map(Json::from));
    put(
        "error_message",
        event.error_message.as_deref().map(Json::from),
    );
    Json::Object(map)
}

/// The event a row holds: `id`, `invocation_id` and the `timestamp` column win over
/// `event_data` as in ADK's `to_event`, except that `event_data`'s own timestamp (exact
/// seconds) is preferred to the column's when present. A member of the wrong type is
/// dropped with a warning rather than failing the whole session's read.
pub(super) fn from_json(
    id: String,
    invocation_id: String,
    column_time: DateTime<Utc>,
    data: Option<Json>,
) -> Event {
    let mut map = match data {
        Some(Json::Object(map)) => map,
        Some(other) => {
            tracing::warn!(target: "session_pool::adk", event = %id,
                "event_data is not a JSON object ({}); reading the event's columns only",
                kind(&other));
            JsonMap::new()
        }
        None => JsonMap::new(),
    };
    let mut event = Event::new("");
    event.timestamp = map
        .remove("timestamp")
        .and_then(|t| t.as_f64())
        .and_then(from_seconds)
        .unwrap_or(column_time);
    map.remove("id");
    map.remove("invocation_id");
    event.invocation_id = (!invocation_id.is_empty()).then_some(invocation_id);
    event.id = id;
    let text = |map: &mut JsonMap, k: &str| match map.remove(k) {
        Some(Json::String(s)) => Some(s),
        _ => None,
    };
    let flag = |map: &mut JsonMap, k: &str| map.remove(k).and_then(|v| v.as_bool());
    event.author = text(&mut map, "author").unwrap_or_default();
    event.branch = text(&mut map, "branch");
    event.error_code = text(&mut map, "error_code");
    event.error_message = text(&mut map, "error_message");
    event.partial = flag(&mut map, "partial");
    event.turn_complete = flag(&mut map, "turn_complete");
    event.interrupted = flag(&mut map, "interrupted");
    event.content = map.remove("content").filter(|v| !v.is_null());
    event.grounding_metadata = map.remove("grounding_metadata").filter(|v| !v.is_null());
    event.custom_metadata = map.remove("custom_metadata").filter(|v| !v.is_null());
    event.long_running_tool_ids = match map.remove("long_running_tool_ids") {
        Some(Json::Array(ids)) => Some(
            ids.into_iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
        ),
        _ => None,
    };
    event.actions = match map.remove("actions") {
        None | Some(Json::Null) => EventActions::default(),
        Some(actions) => serde_json::from_value(actions).unwrap_or_else(|e| {
            tracing::warn!(target: "session_pool::adk", event = %event.id, error = %e,
                "event_data.actions does not decode; reading them as empty");
            EventActions::default()
        }),
    };
    // As `exclude_none` writes them, no null members (version 0's empty columns).
    map.retain(|_, v| !v.is_null());
    event.extra = map;
    event
}

fn kind(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_round_trips_with_unknown_fields_at_the_top_level() {
        let mut event = Event::text("agent", "model", "hi")
            .with_invocation_id("inv-1")
            .with_state_delta("k", Json::from(1));
        event.turn_complete = Some(true);
        event.long_running_tool_ids = Some(vec!["t1".into()]);
        event.extra.insert(
            "usage_metadata".into(),
            serde_json::json!({"total_token_count": 7}),
        );
        let at = DateTime::from_timestamp_micros(event.timestamp.timestamp_micros()).unwrap();
        let json = to_json(&event, at);
        assert_eq!(json["usage_metadata"]["total_token_count"], 7);
        assert_eq!(json["invocation_id"], "inv-1");
        assert!(json.get("branch").is_none(), "no null members: {json}");
        let back = from_json(event.id.clone(), "inv-1".into(), Utc::now(), Some(json));
        let mut want = event;
        want.timestamp = at;
        assert_eq!(back, want);
    }

    #[test]
    fn columns_win_and_bad_members_are_dropped() {
        let data = serde_json::json!({
            "id": "other", "author": 3, "actions": "nope", "partial": "yes",
            "long_running_tool_ids": ["a", 1],
        });
        let at = DateTime::from_timestamp(1_700_000_000, 123_456_000).unwrap();
        let e = from_json("e1".into(), String::new(), at, Some(data));
        assert_eq!(e.id, "e1");
        assert_eq!(e.invocation_id, None);
        assert_eq!(e.author, "");
        assert_eq!(e.timestamp, at);
        assert_eq!(e.partial, None);
        assert_eq!(e.actions, EventActions::default());
        assert_eq!(e.long_running_tool_ids, Some(vec!["a".to_owned()]));
    }

    #[test]
    fn seconds_keep_microseconds() {
        let t = DateTime::from_timestamp(1_765_000_000, 999_999_000).unwrap();
        assert_eq!(from_seconds(seconds(t)), Some(t));
        assert_eq!(from_seconds(f64::NAN), None);
    }

    #[test]
    fn seconds_round_as_python_datetimes_do() {
        // `datetime.fromtimestamp(t).microsecond` for these is 723 and 347; rounding
        // `t * 1e6` gives 724 and 348.
        for (secs, micros) in [
            (1796559518.7887235, 1_796_559_518_788_723),
            (1796559518.0283475, 1_796_559_518_028_347),
        ] {
            let t = from_seconds(secs).unwrap();
            assert_eq!(t.timestamp_micros(), micros, "{secs}");
        }
    }
}

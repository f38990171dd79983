//! Values as ADK's tables hold them: naive UTC times (read as the crate reads any
//! timestamp text), JSON as JSONB or text, events as an aggregated array.

use chrono::{DateTime, Utc};
use serde_json::Value as Json;

use super::{event_data, legacy};
use crate::adk::event::{Event, JsonMap};
use crate::adk::scopes;
use crate::conn::{ExecResult, RowRef};
use crate::param::Param;
use crate::value::parse_timestamp;

/// A time as SQLAlchemy writes a naive UTC `DATETIME` on SQLite.
pub(super) fn naive_text(t: DateTime<Utc>) -> String {
    t.naive_utc().format("%Y-%m-%d %H:%M:%S%.6f").to_string()
}

/// A time as the SQLite tables hold it: SQLAlchemy's naive UTC text
/// (`DatabaseSessionService`), or `REAL` Unix seconds (google-adk's
/// `SqliteSessionService`, whose `time.time()` floats they are).
#[derive(Debug)]
pub(super) enum SqliteTime {
    Text(String),
    Seconds(f64),
}

impl SqliteTime {
    /// `t` in the tables' form (`epoch`: `REAL` seconds).
    pub(super) fn of(t: DateTime<Utc>, epoch: bool) -> Self {
        if epoch {
            SqliteTime::Seconds(seconds(t))
        } else {
            SqliteTime::Text(naive_text(t))
        }
    }

    pub(super) fn param(&self) -> Param<'_> {
        match self {
            SqliteTime::Text(t) => Param::Text(t),
            SqliteTime::Seconds(s) => Param::Float(*s),
        }
    }
}

/// `t` as Unix seconds, the float Python's `datetime.timestamp()` gives for it.
pub(super) fn seconds(t: DateTime<Utc>) -> f64 {
    t.timestamp() as f64 + f64::from(t.timestamp_subsec_micros()) / 1e6
}

/// A time column: a timestamp, or (`epoch`, SQLite) `REAL` Unix seconds.
pub(super) fn time_at(r: RowRef<'_>, i: usize, epoch: bool) -> ExecResult<DateTime<Utc>> {
    if !epoch {
        return r.get(i);
    }
    let secs = r.get::<f64>(i)?;
    event_data::from_seconds(secs).ok_or_else(|| {
        crate::Error::invalid(format!(
            "column {i} holds {secs}, not a time in Unix seconds"
        ))
        .into()
    })
}

/// A JSON column: JSONB on PostgreSQL, JSON text on SQLite (unparseable text reads as
/// `None`, with a warning).
pub(super) fn json_at(r: RowRef<'_>, i: usize) -> ExecResult<Option<Json>> {
    if r.is_postgres() {
        return r.get(i);
    }
    let Some(text) = r.get::<Option<String>>(i)? else {
        return Ok(None);
    };
    Ok(serde_json::from_str(&text)
        .inspect_err(|e| {
            tracing::warn!(target: "session_pool::adk", column = i, error = %e,
                "stored state is not JSON; reading it as empty");
        })
        .ok())
}

/// A state column (see [`json_at`]) as an object; anything else reads as empty.
pub(super) fn state_at(r: RowRef<'_>, i: usize) -> ExecResult<JsonMap> {
    Ok(scopes::stored(json_at(r, i)?))
}

/// The events of a read's array (`[id, invocation_id, time, event_data]` each, or
/// version 0's `[id, invocation_id, time, fields, actions]`), in chronological order, ties
/// broken by id.
pub(super) fn events_of(array: Option<Json>) -> Vec<Event> {
    let Some(Json::Array(items)) = array else {
        return Vec::new();
    };
    let mut events: Vec<(DateTime<Utc>, Event)> = items
        .into_iter()
        .filter_map(|item| {
            let Json::Array(mut fields) = item else {
                return None;
            };
            // Version 0 adds its pickled actions, as hex.
            let actions = match fields.len() {
                4 => None,
                5 => match fields.pop() {
                    Some(Json::String(hex)) => Some(hex),
                    _ => Some(String::new()),
                },
                _ => return None,
            };
            let data = fields.pop().map(|d| match &actions {
                Some(hex) => legacy::fields(d, Some(hex)),
                None => d,
            });
            let time = match fields.pop() {
                Some(Json::Number(n)) => n.as_f64().and_then(event_data::from_seconds),
                Some(Json::String(s)) => parse_timestamp(&s),
                _ => None,
            }?;
            let invocation = match fields.pop() {
                Some(Json::String(s)) => s,
                _ => String::new(),
            };
            let Some(Json::String(id)) = fields.pop() else {
                return None;
            };
            let data = data.filter(|d| !d.is_null());
            if data.is_none() {
                tracing::warn!(target: "session_pool::adk", event = %id,
                    "event_data is missing or not JSON; reading the event's columns only");
            }
            Some((time, event_data::from_json(id, invocation, time, data)))
        })
        .collect();
    events.sort_by(|(ta, a), (tb, b)| ta.cmp(tb).then_with(|| a.id.cmp(&b.id)));
    events.into_iter().map(|(_, e)| e).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlalchemy_times_parse_and_format_alike() {
        let t = parse_timestamp("2026-12-06 10:00:00.123456").unwrap();
        assert_eq!(naive_text(t), "2026-12-06 10:00:00.123456");
        assert_eq!(
            parse_timestamp("2026-12-06 10:00:00"),
            DateTime::from_timestamp(t.timestamp(), 0)
        );
        assert!(parse_timestamp("2026-12-06T10:00:00.5").is_some());
        assert!(parse_timestamp("yesterday").is_none());
    }
}

//! The `adk_session::Session` a read returns: a copy, with its state and events.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::adk::service::AgentSession;

/// A session as ADK-Rust sees it: a snapshot taken when it was read or created. Writing
/// to its state changes this copy only; state reaches the database through events'
/// `state_delta`, as in ADK.
#[derive(Debug, Clone)]
pub(crate) struct AdkRustSession {
    id: String,
    app_name: String,
    user_id: String,
    state: StateMap,
    events: EventList,
    last_update_time: DateTime<Utc>,
}

#[derive(Debug, Clone)]
struct StateMap(HashMap<String, Value>);

#[derive(Debug, Clone)]
struct EventList(Vec<adk_core::Event>);

impl AdkRustSession {
    pub(crate) fn new(session: AgentSession, events: Vec<adk_core::Event>) -> Self {
        AdkRustSession {
            id: session.id,
            app_name: session.app_name,
            user_id: session.user_id,
            state: StateMap(session.state.into_iter().collect()),
            events: EventList(events),
            last_update_time: session.last_update_time,
        }
    }
}

impl adk_session::Session for AdkRustSession {
    fn id(&self) -> &str {
        &self.id
    }

    fn app_name(&self) -> &str {
        &self.app_name
    }

    fn user_id(&self) -> &str {
        &self.user_id
    }

    fn state(&self) -> &dyn adk_session::State {
        &self.state
    }

    fn events(&self) -> &dyn adk_session::Events {
        &self.events
    }

    fn last_update_time(&self) -> DateTime<Utc> {
        self.last_update_time
    }
}

impl adk_session::State for StateMap {
    fn get(&self, key: &str) -> Option<Value> {
        self.0.get(key).cloned()
    }

    fn set(&mut self, key: String, value: Value) {
        self.0.insert(key, value);
    }

    fn all(&self) -> HashMap<String, Value> {
        self.0.clone()
    }
}

impl adk_session::Events for EventList {
    fn all(&self) -> Vec<adk_core::Event> {
        self.0.clone()
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn at(&self, index: usize) -> Option<&adk_core::Event> {
        self.0.get(index)
    }
}

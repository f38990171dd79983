//! The ADK agent session and event store (seed `001`), and an ADK-style session service.
//!
//! [`AdkStore`] keeps sessions and events in the seed's tables, over any
//! [`AbstractSessionPool`](crate::AbstractSessionPool). On PostgreSQL,
//! [`create_tables`](AdkStore::create_tables) writes the seed's DDL column for column
//! (`FILLFACTOR 80`, the app/user, update-time and partial GIN state indexes, the events
//! index and the cascading foreign key), so Python stores can share the tables. On SQLite
//! it writes the companion layout: TEXT ids and JSON, BLOB actions, INTEGER 0/1 booleans and
//! REAL Julian-day times.
//!
//! **Times** are UTC. PostgreSQL keeps microseconds. A REAL Julian day holds a time to
//! about 40 µs today, so SQLite gives back the nearest time it can hold; a time read from
//! the store always compares equal to the stored one (for `after_timestamp` and the
//! compare-and-swap).
//!
//! **Order.** Events come back in chronological order, ties broken by id; [`Event::new`]
//! makes UUIDv7 ids, which sort by creation.
//!
//! [`SessionService`] adds ADK's semantics on top: generated ids, partial events skipped,
//! state deltas merged, event and state saved atomically, and ADK's state scopes:
//! `user:` keys shared by a user's sessions and `app:` keys by the app's (in two more
//! tables, as ADK's `user_states` and `app_states`), `temp:` keys never stored.
//!
//! **Sharing tables with Python.** Python's SQLSpec stores read and write these tables too
//! (either side may create them). Their `actions` column holds pickles: set
//! [`AdkConfig::actions_codec`] to [`ActionsCodec::Pickle`] for Python to read what this
//! crate writes; this crate reads both formats, row by row, running no Python.
//!
//! **SQLSpec 0.42 and later** keep each event whole in one JSON column (default tables
//! `adk_session`, `adk_event`, `adk_app_state`, `adk_user_state`: name them in
//! [`AdkConfig`]), in three generations: 0.42–0.50 in `event_json` with no id column on
//! PostgreSQL (`event_data` on SQLite) and each session's whole state in its row; 0.51–0.60
//! in `event_data`, app and user keys with their prefix in tables of their own; 0.61 on
//! the same, with the app and user on each event. The store finds the layout in the
//! catalog and reads and writes it as that SQLSpec does, so both sides share the tables
//! SQLSpec created: on 0.42–0.50's, `app:` and `user:` keys go to the session's row as
//! well as to the scope tables (which [`create_tables`](AdkStore::create_tables) adds), and
//! with no index to refuse a duplicate event id there, the same event appended again (its
//! id at its timestamp) is looked for before writing and refused.
//! Actions are JSON in all three ([`ActionsCodec::Pickle`] is refused).
//! [`create_tables`](AdkStore::create_tables) makes the seed's layout, never these.
//!
//! **google-adk's `DatabaseSessionService`.** Python ADK apps most often keep sessions
//! with google-adk's own service, in its tables (`sessions`, `events`, `app_states`,
//! `user_states`). [`SessionService::on_tables`] over [`DatabaseSessionTables`] reads and
//! writes those tables as that service does (schema version 1, or the legacy version 0
//! with pickled actions), so a Rust service and a Python app share them.
//!
//! **ADK-Rust.** With the `adk-rust` feature, [`SessionService`] implements
//! `adk_session::SessionService` (ADK-Rust's `adk-session` 2.x), so an ADK-Rust `Runner`
//! can use it as its session service.
//!
//! ```no_run
//! # async fn demo() -> session_pool::Result<()> {
//! use session_pool::adk::{AdkConfig, AdkStore, Event, GetSessionConfig, SessionService};
//! use session_pool::{Database, FixedSizePool};
//!
//! let db = Database::open("sqlite://agent.db").await?;
//! let pool = FixedSizePool::builder().size(4).build(&db).await?;
//! let store = AdkStore::new(pool, AdkConfig::default())?;
//! store.create_tables().await?;
//!
//! let service = SessionService::new(store);
//! let mut session = service.create_session("assistant", "user_1", None, None).await?;
//! let event = Event::text("user", "user", "Hello!").with_state_delta("topic", "greeting".into());
//! service.append_event(&mut session, event).await?;
//! let again = service
//!     .get_session("assistant", "user_1", &session.id, &GetSessionConfig::default())
//!     .await?
//!     .expect("just created");
//! assert_eq!(again.state["topic"], "greeting");
//! # Ok(()) }
//! ```

#[cfg(feature = "adk-rust")]
mod adk_rust;
mod codec;
mod config;
mod database;
mod event;
mod pickle;
mod record;
mod schema;
mod scopes;
mod service;
mod sql;
mod store;

pub use codec::ActionsCodec;
pub use config::AdkConfig;
pub use database::DatabaseSessionTables;
pub use event::{EXTRA_FIELDS_KEY, Event, EventActions, JsonMap};
pub use record::{EventRecord, SessionRecord, stored_time};
pub use scopes::{APP_PREFIX, USER_PREFIX};
pub use service::{AgentSession, GetSessionConfig, SessionService, TEMP_PREFIX};
pub use store::{AdkStore, SessionCursor, SessionPage};

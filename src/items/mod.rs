//! The conversation-items store of the OpenAI Agents SDK (seed `002`, `SQLAlchemySession`).
//!
//! An [`ItemsSession`] is one conversation's history: a list of JSON items in tables
//! `agent_sessions` / `agent_messages` (names configurable), laid out as the SDK's
//! SQLAlchemy models create them, so both can share a database.
//!
//! - [`get_items(limit)`](ItemsSession::get_items): the newest `limit` items (all when
//!   `None`), in chronological order.
//! - [`add_items`](ItemsSession::add_items): one transaction that creates the parent row if
//!   missing (safe when two writers add the first items at once) and touches `updated_at`.
//! - [`pop_item`](ItemsSession::pop_item): removes and returns the newest item, atomically
//!   (newer rows that are not valid JSON are removed on the way, as in the SDK).
//! - [`clear_session`](ItemsSession::clear_session): removes the conversation.
//! - [`with_default_limit`](ItemsSession::with_default_limit): the SDK's
//!   `SessionSettings(limit=…)`, for reads that give no limit.
//! - [`get_raw_items`](ItemsSession::get_raw_items),
//!   [`add_raw_items`](ItemsSession::add_raw_items),
//!   [`pop_raw_item`](ItemsSession::pop_raw_item): items as JSON text, kept byte for byte
//!   (numbers beyond `f64` or `i64`/`u64` included, which `serde_json::Value` cannot hold).
//! - [`ItemsStore::with_codec`]: an [`ItemCodec`] replaces compact JSON, as overriding
//!   the SDK's `_serialize_item` / `_deserialize_item` does.
//! - Beside the tables of the SDK's `AdvancedSQLiteSession` (SQLite: `message_structure`,
//!   `turn_usage`), the store reads and writes through them, as that store does, on one
//!   branch ([`ItemsSession::on_branch`], `main` by default). Every write asks whether
//!   they are there inside its own statement, reads once a second.
//!
//! Items are stored as compact JSON text. A stored row that is not valid JSON is skipped
//! by `get_items` with a `tracing` warning, never a panic, and does not count towards its
//! limit (as in the SDK). Conversation ids are any
//! non-empty text without NUL, of any length (the SDK's column is an unbounded `VARCHAR`).
//!
//! ```no_run
//! # async fn demo() -> session_pool::Result<()> {
//! use serde_json::json;
//! use session_pool::items::{ItemsConfig, ItemsStore};
//! use session_pool::{BurstyPool, Database};
//!
//! let db = Database::open("sqlite://agent.db").await?;
//! let pool = BurstyPool::builder().build(&db).await?;
//! let store = ItemsStore::new(pool, ItemsConfig::default())?;
//! store.create_tables().await?;
//! let conversation = store.session("conversation_123")?;
//! conversation.add_items(&[json!({"role": "user", "content": "Hi"})]).await?;
//! let last = conversation.get_items(Some(10)).await?;
//! # Ok(()) }
//! ```

mod advanced;
mod codec;
mod schema;
mod session;
mod sql;
mod store;
mod structure;

pub use codec::{ItemCodec, JsonCodec};
pub use session::ItemsSession;
pub use store::{ItemsConfig, ItemsStore};

//! `ItemsStore`: the items tables over any pool, and the sessions they hold
//! (`session.rs`).

use std::fmt;
use std::sync::Arc;

use super::codec::{ItemCodec, JsonCodec};
use super::schema::{self, Tables};
use super::{ItemsSession, structure};
use crate::error::{Error, Result};
use crate::ident::{Ident, MAX_IDENT_LEN, validate};
use crate::pool::AbstractSessionPool;
use crate::pool::SharedPool;
use crate::support::{check_text, checkout, is_postgres, table_exists};

/// Table names of the items store (the SDK's `sessions_table` / `messages_table`).
///
/// Names must match `^[A-Za-z_][A-Za-z0-9_]*$` (at most 63 characters); they are written
/// quoted, so they are case-sensitive.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
#[non_exhaustive]
pub struct ItemsConfig {
    sessions_table: String,
    messages_table: String,
}

impl Default for ItemsConfig {
    fn default() -> Self {
        ItemsConfig {
            sessions_table: "agent_sessions".into(),
            messages_table: "agent_messages".into(),
        }
    }
}

impl ItemsConfig {
    /// The parent table (default `agent_sessions`).
    pub fn sessions_table(mut self, name: impl Into<String>) -> Self {
        self.sessions_table = name.into();
        self
    }

    /// The items table (default `agent_messages`).
    pub fn messages_table(mut self, name: impl Into<String>) -> Self {
        self.messages_table = name.into();
        self
    }
}

/// The conversation-items store over any [`AbstractSessionPool`]; cheap to clone.
///
/// **Lost sessions.** When a call's session turns out to be lost (a restart, a failover),
/// [`ItemsSession::get_items`], [`create_tables`](ItemsStore::create_tables) and
/// [`ItemsSession::clear_session`] run once more on another session; `add_items` and
/// `pop_item` are not idempotent and return the error.
pub struct ItemsStore {
    pub(super) pool: SharedPool,
    pub(super) tables: Arc<Tables>,
    pub(super) codec: Arc<dyn ItemCodec>,
    pub(crate) staleness: crate::Staleness,
}

impl Clone for ItemsStore {
    fn clone(&self) -> Self {
        ItemsStore {
            pool: Arc::clone(&self.pool),
            tables: Arc::clone(&self.tables),
            codec: Arc::clone(&self.codec),
            staleness: self.staleness,
        }
    }
}

impl fmt::Debug for ItemsStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ItemsStore")
            .field("sessions_table", &self.tables.sessions.as_str())
            .field("messages_table", &self.tables.messages.as_str())
            .finish()
    }
}

impl ItemsStore {
    /// A store on `pool`; a bad table name is [`Error::InvalidArgument`].
    pub fn new(pool: impl AbstractSessionPool, config: ItemsConfig) -> Result<Self> {
        let pool: SharedPool = Arc::new(pool);
        validate(&config.sessions_table, "sessions_table")?;
        validate(&config.messages_table, "messages_table")?;
        if config.sessions_table == config.messages_table {
            return Err(Error::invalid(
                "sessions_table and messages_table must be different tables",
            ));
        }
        let mut index = format!("idx_{}_session_id", config.messages_table);
        index.truncate(MAX_IDENT_LEN);
        let messages = Ident::new(&config.messages_table)?;
        Ok(ItemsStore {
            pool,
            tables: Arc::new(Tables {
                sessions: Ident::new(&config.sessions_table)?,
                structure: structure::Presence::new(&messages),
                messages,
                index: Ident::new(&index)?,
            }),
            codec: Arc::new(JsonCodec),
            staleness: crate::Staleness::Strong,
        })
    }

    /// The same store, turning items into stored text and back with `codec` (the SDK's
    /// `_serialize_item` / `_deserialize_item` hooks) instead of compact JSON.
    pub fn with_codec(mut self, codec: impl ItemCodec + 'static) -> Self {
        self.codec = Arc::new(codec);
        self
    }

    /// The same store, its reads bounded by `bound` (default [`Staleness::Strong`](crate::Staleness)):
    /// with a bound, they go to a read replica of the pool's database that is fresh enough
    /// (see [`Session::read_at`](crate::Session::read_at)), else to the primary. Writes
    /// always go to the primary. A write followed by a read of it: take
    /// [`commit_token`](Self::commit_token) after the write and read with
    /// [`Staleness::AtLeast`](crate::Staleness::AtLeast).
    pub fn with_staleness(mut self, bound: crate::Staleness) -> Self {
        self.staleness = bound;
        self
    }

    /// A [`CommitToken`](crate::CommitToken) at or after every write the primary has
    /// committed so far (one round trip on a pooled session); see
    /// [`Session::commit_token`](crate::Session::commit_token).
    #[cfg(feature = "postgres")]
    pub async fn commit_token(&self) -> Result<crate::CommitToken> {
        let mut session = crate::support::checkout(&self.pool).await?;
        session.commit_token().await
    }

    /// The pool the store checks sessions out of.
    pub fn pool(&self) -> &SharedPool {
        &self.pool
    }

    /// The parent table's name.
    pub fn sessions_table(&self) -> &str {
        self.tables.sessions.as_str()
    }

    /// The items table's name.
    pub fn messages_table(&self) -> &str {
        self.tables.messages.as_str()
    }

    /// Creates the two tables if they do not exist, and with a new items table the SDK's
    /// index on `(session_id, id)` (openai-agents 0.25's `idx_<items>_session_id`); running
    /// it again changes nothing, and a table already there keeps the indexes it has.
    /// Through a pooler in statement mode, which refuses the transaction, the statements
    /// run one at a time.
    pub async fn create_tables(&self) -> Result<()> {
        // The SDK's `create_all` takes no lock of ours: see `create_idempotent`.
        crate::support::create_idempotent(|| self.create_tables_once()).await
    }

    async fn create_tables_once(&self) -> Result<()> {
        let mut session = checkout(&self.pool).await?;
        let postgres = is_postgres(session.database().dialect());
        let t = &self.tables;
        // The index only with a new table, as the SDK's `create_all` makes it: building
        // one on a large table already in use would hold its writes for the build.
        let new = !table_exists(&mut *session, &t.messages, postgres).await?;
        let ddl = schema::ddl(&t.sessions, &t.messages, new.then_some(&t.index), postgres);
        let lock = "session_pool.items.create_tables";
        crate::support::create_locked(&self.pool, session, postgres, lock, &ddl).await
    }

    /// The conversation `session_id`: any non-empty text without NUL, of any length, as
    /// the SDK's `VARCHAR` column takes (checked here, before any query). Nothing is
    /// written until items are added.
    pub fn session(&self, session_id: &str) -> Result<ItemsSession> {
        if session_id.is_empty() {
            return Err(Error::invalid("session_id must not be empty"));
        }
        check_text("session_id", session_id, usize::MAX)?;
        Ok(ItemsSession::new(self.clone(), session_id.to_owned()))
    }
}

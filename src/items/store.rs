//! `ItemsStore` and `ItemsSession`: one conversation's items over any pool.

use std::fmt;
use std::sync::Arc;

use super::schema;
use crate::error::{Error, Result};
use crate::ident::{Ident, MAX_IDENT_LEN, validate};
use crate::param::Param;
use crate::pool::AbstractSessionPool;
use crate::support::{check_id, checkout, is_postgres};
use crate::value::FromValue;

/// Table names of the items store (the SDK's `sessions_table` / `messages_table`).
///
/// Names must match `^[A-Za-z_][A-Za-z0-9_]*$` (at most 63 characters); they are written
/// quoted, so they are case-sensitive.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
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

#[derive(Debug)]
struct Tables {
    sessions: Ident,
    messages: Ident,
    index: Ident,
}

/// The conversation-items store over any [`AbstractSessionPool`]; cheap to clone.
pub struct ItemsStore<P: AbstractSessionPool + ?Sized> {
    pool: Arc<P>,
    tables: Arc<Tables>,
}

impl<P: AbstractSessionPool + ?Sized> Clone for ItemsStore<P> {
    fn clone(&self) -> Self {
        ItemsStore {
            pool: Arc::clone(&self.pool),
            tables: Arc::clone(&self.tables),
        }
    }
}

impl<P: AbstractSessionPool + ?Sized> fmt::Debug for ItemsStore<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ItemsStore")
            .field("sessions_table", &self.tables.sessions.as_str())
            .field("messages_table", &self.tables.messages.as_str())
            .finish()
    }
}

impl<P: AbstractSessionPool + ?Sized> ItemsStore<P> {
    /// A store on `pool`; a bad table name is [`Error::InvalidArgument`].
    pub fn new(pool: Arc<P>, config: ItemsConfig) -> Result<Self> {
        validate(&config.sessions_table, "sessions_table")?;
        validate(&config.messages_table, "messages_table")?;
        if config.sessions_table == config.messages_table {
            return Err(Error::invalid(
                "sessions_table and messages_table must be different tables",
            ));
        }
        let mut index = format!("idx_{}_session_time", config.messages_table);
        index.truncate(MAX_IDENT_LEN);
        Ok(ItemsStore {
            pool,
            tables: Arc::new(Tables {
                sessions: Ident::new(&config.sessions_table)?,
                messages: Ident::new(&config.messages_table)?,
                index: Ident::new(&index)?,
            }),
        })
    }

    /// The pool the store checks sessions out of.
    pub fn pool(&self) -> &Arc<P> {
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

    /// Creates the two tables and the index if they do not exist; running it again
    /// changes nothing.
    pub async fn create_tables(&self) -> Result<()> {
        let mut session = checkout(&*self.pool).await?;
        let postgres = is_postgres(session.database().dialect());
        let t = &self.tables;
        let mut tx = session.transaction().await?;
        if postgres {
            tx.execute_sql(
                "SELECT pg_advisory_xact_lock(hashtext('session_pool.items.create_tables'))",
                &[],
            )
            .await?;
        }
        for statement in schema::ddl(&t.sessions, &t.messages, &t.index, postgres) {
            tx.execute_update(&statement, &[]).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The conversation `session_id` (at most 128 characters; checked here, before any
    /// query). Nothing is written until items are added.
    pub fn session(&self, session_id: &str) -> Result<ItemsSession<P>> {
        check_id("session_id", session_id)?;
        Ok(ItemsSession {
            store: self.clone(),
            session_id: session_id.to_owned(),
        })
    }
}

/// One conversation's items (the SDK's `SQLAlchemySession`).
pub struct ItemsSession<P: AbstractSessionPool + ?Sized> {
    store: ItemsStore<P>,
    session_id: String,
}

impl<P: AbstractSessionPool + ?Sized> Clone for ItemsSession<P> {
    fn clone(&self) -> Self {
        ItemsSession {
            store: self.store.clone(),
            session_id: self.session_id.clone(),
        }
    }
}

impl<P: AbstractSessionPool + ?Sized> fmt::Debug for ItemsSession<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ItemsSession")
            .field("session_id", &self.session_id)
            .field("store", &self.store)
            .finish()
    }
}

impl<P: AbstractSessionPool + ?Sized> ItemsSession<P> {
    /// The conversation's id.
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// The newest `limit` items (all of them when `None`), oldest first. Rows that are not
    /// valid JSON are skipped with a warning.
    pub async fn get_items(&self, limit: Option<usize>) -> Result<Vec<serde_json::Value>> {
        if limit == Some(0) {
            return Ok(Vec::new());
        }
        let m = &self.store.tables.messages;
        let mut params = vec![Param::Text(&self.session_id)];
        let sql = match limit {
            None => format!(
                "SELECT id, message_data FROM {m} WHERE session_id = $1 \
                 ORDER BY created_at ASC, id ASC"
            ),
            Some(n) => {
                params.push(Param::Int(i64::try_from(n).unwrap_or(i64::MAX)));
                format!(
                    "SELECT id, message_data FROM {m} WHERE session_id = $1 \
                     ORDER BY created_at DESC, id DESC LIMIT $2"
                )
            }
        };
        let mut session = checkout(&*self.store.pool).await?;
        let rows = session
            .map_rows(&sql, &params, |r| {
                Ok((
                    i64::from_owned(r.value(0)?).ok(),
                    String::from_owned(r.value(1)?),
                ))
            })
            .await?;
        drop(session);
        let mut items: Vec<serde_json::Value> = rows
            .into_iter()
            .filter_map(|(id, data)| self.decode(id, data))
            .collect();
        if limit.is_some() {
            items.reverse();
        }
        Ok(items)
    }

    /// Appends `items` in order, in one transaction that also creates the conversation's
    /// parent row if it is missing and touches its `updated_at`. Two writers adding the
    /// first items of a conversation at once both succeed.
    pub async fn add_items(&self, items: &[serde_json::Value]) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        let t = &self.store.tables;
        let (s, m) = (&t.sessions, &t.messages);
        let upsert = |postgres: bool| {
            format!(
                "INSERT INTO {s} (session_id) VALUES ($1) ON CONFLICT (session_id) \
                 DO UPDATE SET updated_at = CURRENT_TIMESTAMP{}",
                if postgres {
                    " RETURNING session_id"
                } else {
                    ""
                }
            )
        };
        let mut session = checkout(&*self.store.pool).await?;
        if is_postgres(session.database().dialect()) {
            // One statement: the parent upsert and all items. The items travel as one JSON
            // array; `json` (not `jsonb`) keeps each element's text as it was written.
            let array = format!(
                "[{}]",
                items
                    .iter()
                    .map(serde_json::Value::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            );
            let sql = format!(
                "WITH parent AS ({}) INSERT INTO {m} (session_id, message_data) \
                 SELECT parent.session_id, item.value::text \
                 FROM parent, json_array_elements($2::json) WITH ORDINALITY AS item(value, n) \
                 ORDER BY item.n",
                upsert(true)
            );
            session
                .update_with(&sql, &[Param::Text(&self.session_id), Param::Text(&array)])
                .await?;
        } else {
            let insert = format!("INSERT INTO {m} (session_id, message_data) VALUES ($1, $2)");
            let mut tx = session.transaction().await?;
            tx.update_with(&upsert(false), &[Param::Text(&self.session_id)])
                .await?;
            for item in items {
                let text = item.to_string();
                tx.update_with(
                    &insert,
                    &[Param::Text(&self.session_id), Param::Text(&text)],
                )
                .await?;
            }
            tx.commit().await?;
        }
        Ok(())
    }

    /// Removes the newest item and returns it; `None` when there are no items. A newest row
    /// that is not valid JSON is removed with a warning and the next one is popped.
    pub async fn pop_item(&self) -> Result<Option<serde_json::Value>> {
        let m = &self.store.tables.messages;
        let mut session = checkout(&*self.store.pool).await?;
        // One statement either way. On PostgreSQL, SKIP LOCKED lets concurrent pops take
        // different items instead of one of them finding its row gone and returning nothing.
        let lock = if is_postgres(session.database().dialect()) {
            " FOR UPDATE SKIP LOCKED"
        } else {
            ""
        };
        let sql = format!(
            "DELETE FROM {m} WHERE id = (SELECT id FROM {m} WHERE session_id = $1 \
             ORDER BY created_at DESC, id DESC LIMIT 1{lock}) RETURNING id, message_data"
        );
        loop {
            let rows = session
                .map_rows(&sql, &[Param::Text(&self.session_id)], |r| {
                    Ok((
                        i64::from_owned(r.value(0)?).ok(),
                        String::from_owned(r.value(1)?),
                    ))
                })
                .await?;
            let Some((id, data)) = rows.into_iter().next() else {
                return Ok(None);
            };
            if let Some(item) = self.decode(id, data) {
                return Ok(Some(item));
            }
        }
    }

    /// Deletes the conversation: its items and its parent row.
    pub async fn clear_session(&self) -> Result<()> {
        let t = &self.store.tables;
        let (s, m) = (&t.sessions, &t.messages);
        let params = [Param::Text(&self.session_id)];
        let mut session = checkout(&*self.store.pool).await?;
        if is_postgres(session.database().dialect()) {
            let sql = format!(
                "WITH items AS (DELETE FROM {m} WHERE session_id = $1) \
                 DELETE FROM {s} WHERE session_id = $1"
            );
            session.update_with(&sql, &params).await?;
        } else {
            let mut tx = session.transaction().await?;
            tx.update_with(&format!("DELETE FROM {m} WHERE session_id = $1"), &params)
                .await?;
            tx.update_with(&format!("DELETE FROM {s} WHERE session_id = $1"), &params)
                .await?;
            tx.commit().await?;
        }
        Ok(())
    }

    fn decode(&self, id: Option<i64>, data: Result<String>) -> Option<serde_json::Value> {
        let parsed = data.and_then(|text| {
            serde_json::from_str(&text).map_err(|e| Error::invalid(format!("not JSON: {e}")))
        });
        match parsed {
            Ok(item) => Some(item),
            Err(e) => {
                tracing::warn!(target: "session_pool::items", session = %self.session_id,
                    row = ?id, error = %e, "skipping a stored item that does not decode");
                None
            }
        }
    }
}

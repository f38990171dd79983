//! `ItemsSession`: one conversation's items, read, added, popped and cleared.

use std::fmt;

use super::ItemsStore;
use super::sql::{self, Row};
use super::{advanced, structure};
use crate::error::{Error, Result};
use crate::param::Param;
use crate::session::Context;
use crate::support::{check_text, checkout, is_postgres, read_rows, retry_idempotent};
use crate::value::FromValue;

/// One conversation's items (the SDK's `SQLAlchemySession`).
pub struct ItemsSession {
    store: ItemsStore,
    session_id: String,
    /// What `get_items(None)` reads (the SDK's `SessionSettings.limit`).
    default_limit: Option<usize>,
    /// The `AdvancedSQLiteSession` branch it reads and writes.
    branch: String,
}

impl Clone for ItemsSession {
    fn clone(&self) -> Self {
        ItemsSession {
            store: self.store.clone(),
            session_id: self.session_id.clone(),
            default_limit: self.default_limit,
            branch: self.branch.clone(),
        }
    }
}

impl fmt::Debug for ItemsSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ItemsSession")
            .field("session_id", &self.session_id)
            .field("branch", &self.branch)
            .field("store", &self.store)
            .finish()
    }
}

impl ItemsSession {
    /// The conversation `session_id` of `store` (checked by [`ItemsStore::session`]), on
    /// the main branch.
    pub(super) fn new(store: ItemsStore, session_id: String) -> Self {
        ItemsSession {
            store,
            session_id,
            default_limit: None,
            branch: structure::MAIN.into(),
        }
    }

    /// The conversation's id.
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// The same conversation, whose `get_items(None)` and `get_raw_items(None)` read only
    /// the newest `limit` items (the SDK's `SessionSettings(limit=…)`); an explicit limit
    /// still wins.
    pub fn with_default_limit(mut self, limit: usize) -> Self {
        self.default_limit = Some(limit);
        self
    }

    /// The same conversation on branch `branch` of openai-agents' `AdvancedSQLiteSession`
    /// (SQLite), whose tables (`message_structure`, `turn_usage`) this store follows where
    /// they sit beside its own: reads, adds, pops and clears go through them, on branch
    /// `main` unless this names another, as that Python store's do. An empty branch, or one
    /// with NUL, is [`Error::InvalidArgument`]; a branch other than `main` on tables without
    /// that layout is [`Error::InvalidArgument`] at the first call.
    pub fn on_branch(mut self, branch: &str) -> Result<Self> {
        if branch.is_empty() {
            return Err(Error::invalid("branch must not be empty"));
        }
        check_text("branch", branch, usize::MAX)?;
        self.branch = branch.to_owned();
        Ok(self)
    }

    /// The branch it reads and writes (`main` unless [`on_branch`](Self::on_branch) set
    /// another); it matters only beside `AdvancedSQLiteSession`'s tables.
    pub fn branch(&self) -> &str {
        &self.branch
    }

    /// The newest `limit` items (when `None`, the default limit if one is set, else all of
    /// them), oldest first. Rows that do not decode are skipped with a warning.
    ///
    /// As the SDK does, a limit counts items that decode: when rows that do not decode sit
    /// among the newest, the read goes further back (doubling its window) until it has
    /// `limit` items or the conversation's start.
    pub async fn get_items(&self, limit: Option<usize>) -> Result<Vec<serde_json::Value>> {
        let decode_all = |rows: Vec<Row>| -> Vec<serde_json::Value> {
            rows.into_iter()
                .filter_map(|(id, data)| self.decode(id, data))
                .collect()
        };
        let Some(limit) = limit.or(self.default_limit) else {
            return Ok(decode_all(self.get_rows(None).await?));
        };
        let mut window = limit;
        loop {
            let rows = self.get_rows(Some(window)).await?;
            let complete = rows.len() < window;
            let mut items = decode_all(rows);
            if items.len() >= limit {
                items.drain(..items.len() - limit);
                return Ok(items);
            }
            if complete || window == usize::MAX {
                return Ok(items);
            }
            window = window.saturating_mul(2);
        }
    }

    /// [`get_items`](ItemsSession::get_items), as the stored text, byte for byte (numbers
    /// of any size and precision, key order and spacing kept); rows are not checked.
    pub async fn get_raw_items(&self, limit: Option<usize>) -> Result<Vec<String>> {
        let rows = self.get_rows(limit.or(self.default_limit)).await?;
        rows.into_iter().map(|(_, data)| data).collect()
    }

    /// The newest `limit` rows (all when `None`), oldest first: their ids and stored text.
    async fn get_rows(&self, limit: Option<usize>) -> Result<Vec<Row>> {
        if limit == Some(0) {
            return Ok(Vec::new());
        }
        self.relearning(|| self.get_rows_once(limit)).await
    }

    async fn get_rows_once(&self, limit: Option<usize>) -> Result<Vec<Row>> {
        let t = &self.store.tables;
        let (id, branch) = (self.session_id.as_str(), self.branch.as_str());
        let mut session = checkout(&self.store.pool).await?;
        let sqlite = !is_postgres(session.database().dialect());
        if self.structured(&mut *session, sqlite).await? {
            return advanced::get_rows(&mut *session, t, id, branch, limit).await;
        }
        let mut params = vec![Param::Text(id)];
        if let Some(n) = limit {
            params.push(Param::Int(i64::try_from(n).unwrap_or(i64::MAX)));
        }
        // On SQLite, once a second, each row also says whether the structure tables are
        // there: any row the plain read returns is one a structured read would weigh.
        let probing = sqlite && t.structure.read_probe_due();
        let probe = probing.then(|| t.structure.probe());
        let sql = sql::get_items(t, limit.is_some(), probe);
        let rows = read_rows(
            &self.store.pool,
            session,
            self.store.staleness,
            &sql,
            &params,
            move |r| {
                let seen = probing && bool::from_owned(r.value(2)?).unwrap_or(false);
                Ok((sql::row_of(r)?, seen))
            },
        )
        .await?;
        if rows.iter().any(|(_, seen)| *seen) {
            t.structure.set();
            let mut session = checkout(&self.store.pool).await?;
            return advanced::get_rows(&mut *session, t, id, branch, limit).await;
        }
        let mut rows: Vec<Row> = rows.into_iter().map(|(row, _)| row).collect();
        if limit.is_some() {
            rows.reverse();
        }
        Ok(rows)
    }

    /// Whether this call goes straight through `AdvancedSQLiteSession`'s tables: yes once
    /// they were seen; asked of the catalog first when the conversation names a branch
    /// (which they must hold). No means the plain statements, which learn it as they go.
    async fn structured(&self, c: &mut impl Context, sqlite: bool) -> Result<bool> {
        let t = &self.store.tables;
        if sqlite && t.structure.get() {
            return Ok(true);
        }
        if self.branch == structure::MAIN {
            return Ok(false);
        }
        let seen = sqlite && advanced::probe(c, t).await?;
        self.check_branch(seen)?;
        Ok(seen)
    }

    /// A branch other than `main` needs the structure tables.
    fn check_branch(&self, structured: bool) -> Result<()> {
        if structured || self.branch == structure::MAIN {
            return Ok(());
        }
        Err(Error::invalid(format!(
            "branch {:?}: the items table {} has no AdvancedSQLiteSession tables \
             (message_structure, turn_usage) beside it, so its conversations have one \
             history, with no branches",
            self.branch,
            self.store.tables.messages.as_str()
        )))
    }

    /// Runs `op`, once more if it used the structure tables and one is gone (see
    /// [`relearning`](crate::support::relearning)).
    async fn relearning<T, F>(&self, op: impl FnMut() -> F) -> Result<T>
    where
        F: std::future::Future<Output = Result<T>>,
    {
        let t = &self.store.tables;
        crate::support::relearning(t.messages.as_str(), || t.structure.forget(), op).await
    }

    /// Appends `items` in order, in one transaction that also creates the conversation's
    /// parent row if it is missing and touches its `updated_at`. Two writers adding the
    /// first items of a conversation at once both succeed.
    pub async fn add_items(&self, items: &[serde_json::Value]) -> Result<()> {
        let texts = items
            .iter()
            .map(|item| self.store.codec.serialize(item))
            .collect::<Result<Vec<_>>>()?;
        self.add_texts(&texts, Some(items)).await
    }

    /// [`add_items`](ItemsSession::add_items) for items given as JSON text, stored byte for
    /// byte (numbers of any size and precision kept). Each must be valid JSON, or nothing is
    /// written and the error is [`Error::InvalidArgument`].
    pub async fn add_raw_items(&self, items: &[impl AsRef<str>]) -> Result<()> {
        let texts = items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let text = item.as_ref();
                serde_json::from_str::<serde::de::IgnoredAny>(text)
                    .map_err(|e| Error::invalid(format!("item {i} is not JSON: {e}")))?;
                Ok(text.to_owned())
            })
            .collect::<Result<Vec<_>>>()?;
        self.add_texts(&texts, None).await
    }

    /// Adds `items` (stored text; `values`, the items themselves when given).
    async fn add_texts(
        &self,
        items: &[String],
        values: Option<&[serde_json::Value]>,
    ) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        let t = &self.store.tables;
        let mut session = checkout(&self.store.pool).await?;
        if is_postgres(session.database().dialect()) {
            self.check_branch(false)?;
            // One statement: the parent upsert and all items, which travel as one JSON
            // array.
            let array = format!("[{}]", items.join(","));
            let sql = sql::add_items_pg(t);
            session
                .exec()
                .await?
                .execute(&sql, &[Param::Text(&self.session_id), Param::Text(&array)])
                .await?;
        } else {
            let mut tx = session.transaction().await?;
            // The upsert also says whether the structure tables are there: asked inside
            // the write lock, so no Python session can add them before this commits.
            let seen = tx
                .exec()
                .await?
                .map_rows(
                    sql::upsert_parent(t, Some(t.structure.probe())),
                    &[Param::Text(&self.session_id)],
                    |r| Ok(bool::from_owned(r.value(0)?).unwrap_or(false)),
                )
                .await?;
            let structured = seen.first().copied().unwrap_or(false);
            self.check_branch(structured)?;
            if structured {
                t.structure.set();
                let metas = advanced::metas(values, items);
                advanced::add(&mut tx, t, &self.session_id, &self.branch, items, &metas).await?;
                tx.commit().await?;
                return Ok(());
            }
            let insert = sql::add_item(t);
            for text in items {
                tx.exec()
                    .await?
                    .execute(&insert, &[Param::Text(&self.session_id), Param::Text(text)])
                    .await?;
            }
            tx.commit().await?;
        }
        Ok(())
    }

    /// Removes the newest item and returns it; `None` when there are no items. Newest rows
    /// that do not decode are removed on the way, with a warning each, as the SDK's
    /// `pop_item` does: the item returned is the newest one that decodes.
    pub async fn pop_item(&self) -> Result<Option<serde_json::Value>> {
        // Each row goes in its own statement (the SDK's own transaction per row): a
        // cancelled pop leaves the rows it removed removed, and no lock held.
        while let Some((id, data)) = self.pop_row().await? {
            if let Some(item) = self.decode(id, data) {
                return Ok(Some(item));
            }
        }
        Ok(None)
    }

    /// [`pop_item`](ItemsSession::pop_item), as the stored text, byte for byte.
    pub async fn pop_raw_item(&self) -> Result<Option<String>> {
        self.pop_row().await?.map(|(_, data)| data).transpose()
    }

    /// Deletes the newest row and returns its id and text.
    ///
    /// On PostgreSQL this follows the SDK's protocol for changing a conversation: its parent
    /// row is locked before the newest item is chosen, so a pop waits for a writer that
    /// holds it (a Python `pop_item`, a compaction replacing the newest items) and then
    /// takes the newest item as that writer left it, never an older one. Uncontended, that
    /// is one statement; when it removed nothing (the parent locked, an empty
    /// conversation, or a newest row another pop took since its snapshot), the pop runs
    /// again in a transaction that waits for the lock first.
    async fn pop_row(&self) -> Result<Option<Row>> {
        self.relearning(|| self.pop_row_once()).await
    }

    async fn pop_row_once(&self) -> Result<Option<Row>> {
        let popped = sql::row_of;
        let t = &self.store.tables;
        let (id, branch) = (self.session_id.as_str(), self.branch.as_str());
        let params = [Param::Text(id)];
        let mut session = checkout(&self.store.pool).await?;
        if !is_postgres(session.database().dialect()) {
            if self.structured(&mut *session, true).await? {
                return advanced::pop(&mut session, t, id, branch).await;
            }
            // SQLite writes one at a time: the statement sees the tail as it is. It pops
            // nothing where the structure tables are (their pop is another), and then
            // the catalog says which of the two it was.
            let probe = t.structure.probe();
            let rows = session
                .exec()
                .await?
                .map_rows(sql::pop_item(t, Some(probe)), &params, popped)
                .await?;
            if let Some(row) = rows.into_iter().next() {
                return Ok(Some(row));
            }
            if advanced::probe(&mut *session, t).await? {
                return advanced::pop(&mut session, t, id, branch).await;
            }
            return Ok(None);
        }
        self.check_branch(false)?;
        let rows = session
            .exec()
            .await?
            .map_rows(sql::pop_item_unless_locked(t), &params, popped)
            .await?;
        if !rows.is_empty() {
            return Ok(rows.into_iter().next());
        }
        let mut tx = crate::transaction::Transaction::begin_read_committed(&mut session).await?;
        let parent = tx
            .exec()
            .await?
            .map_rows(sql::lock_parent(t), &params, |_| Ok(()))
            .await?;
        let rows = if parent.is_empty() {
            Vec::new()
        } else {
            // A statement after the wait: its snapshot sees what the lock's holder did.
            tx.exec()
                .await?
                .map_rows(sql::pop_item(t, None), &params, popped)
                .await?
        };
        tx.commit().await?;
        Ok(rows.into_iter().next())
    }

    /// Deletes the conversation: its items and its parent row (beside
    /// `AdvancedSQLiteSession`'s tables, on every branch, with its structure and usage
    /// rows, as that store's `clear_session` does).
    pub async fn clear_session(&self) -> Result<()> {
        retry_idempotent(|| self.clear_session_once()).await
    }

    async fn clear_session_once(&self) -> Result<()> {
        let t = &self.store.tables;
        let params = [Param::Text(&self.session_id)];
        let mut session = checkout(&self.store.pool).await?;
        if is_postgres(session.database().dialect()) {
            self.check_branch(false)?;
            session
                .exec()
                .await?
                .execute(sql::clear_pg(t), &params)
                .await?;
        } else {
            let mut tx = session.transaction().await?;
            let structured = advanced::probe(&mut tx, t).await?;
            self.check_branch(structured)?;
            if structured {
                advanced::clear(&mut tx, t, &self.session_id).await?;
                tx.commit().await?;
                return Ok(());
            }
            for statement in sql::clear_sqlite(t) {
                tx.exec().await?.execute(statement, &params).await?;
            }
            tx.commit().await?;
        }
        Ok(())
    }

    fn decode(&self, id: Option<i64>, data: Result<String>) -> Option<serde_json::Value> {
        let parsed = data.and_then(|text| self.store.codec.deserialize(&text));
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

//! Small helpers the stores share: checkouts, argument checks, numbered parameters, cached
//! statement texts. Built only with a store feature (`adk`, `items`).
// The items store uses only some of these; the ADK store uses them all.
#![cfg_attr(not(feature = "adk"), allow(dead_code))]

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

use foldhash::fast::RandomState;
use parking_lot::RwLock;

use crate::conn::{CachedSql, ExecResult, IntoSql, RowRef};
use crate::dialect::Dialect;
use crate::error::{Error, Result};
use crate::param::AsParam;
use crate::param::Param;
use crate::pool::{SessionCheckout, SharedPool};
use crate::session::{Context, ReadContext, WriteContext};

/// Longest id the stores accept (the seed's `VARCHAR(128)`).
pub const MAX_ID_LEN: usize = 128;

/// Checks a session out of `pool` with the pool's default wait.
pub(crate) async fn checkout(pool: &SharedPool) -> Result<SessionCheckout> {
    if let Some(core) = pool.builtin_core() {
        // This crate's pools: a `dyn` pool's `get` boxes its future on every checkout.
        return crate::pool::session_of(core).await;
    }
    // `get` is cancel-safe and nothing awaits between it and the guard.
    let session = pool.as_ref().get(None).await?;
    Ok(SessionCheckout::new(pool, session))
}

/// An executor for a read with `bound`: on a replica fresh enough, else on the session.
async fn routed(
    session: &mut SessionCheckout,
    bound: crate::Staleness,
) -> Result<crate::session::Exec<'_>> {
    #[cfg(feature = "postgres")]
    if bound != crate::Staleness::Strong {
        // Boxed: choosing a replica may connect to one, state every read's future would
        // otherwise carry.
        let read = Box::pin(session.read_at(bound)).await?;
        return read.into_exec().await;
    }
    let _ = bound;
    session.exec().await
}

/// Runs a read on `first`, and once more on a fresh checkout if `first` turned out to be
/// lost (a server restart, a failover, a killed backend): reads are idempotent, so the
/// caller sees no error for a session the pool had no way to know was dead. The lost
/// session is dropped with its checkout, and the pool replaces it.
pub(crate) async fn read_rows<T, S, D>(
    pool: &SharedPool,
    first: SessionCheckout,
    bound: crate::Staleness,
    sql: S,
    params: &[impl AsParam + Sync],
    decode: D,
) -> Result<Vec<T>>
where
    S: IntoSql,
    D: FnMut(RowRef<'_>) -> ExecResult<T> + Clone,
{
    let mut session = first;
    let res = match routed(&mut session, bound).await {
        Ok(exec) => exec.map_rows(sql.clone(), params, decode.clone()).await,
        Err(e) => Err(e),
    };
    match res {
        Err(e) if e.is_lost_in_passing() => {
            tracing::debug!(target: "session_pool::store", error = %e,
                "read on a lost session; retrying once on another");
            drop(session);
            let mut session = checkout(pool).await?;
            routed(&mut session, bound)
                .await?
                .map_rows(sql, params, decode)
                .await
        }
        other => other,
    }
}

/// Runs an operation that is idempotent by key (a delete by key, `CREATE … IF NOT
/// EXISTS`) and, if its session turned out to be lost, runs it once more on a fresh
/// checkout: whether or not the first attempt reached the database, the outcome is the
/// same. Only for such operations: an insert retried this way could be applied twice.
pub(crate) async fn retry_idempotent<T, F>(mut op: impl FnMut() -> F) -> Result<T>
where
    F: std::future::Future<Output = Result<T>>,
{
    match op().await {
        Err(e) if e.is_lost_in_passing() => {
            tracing::debug!(target: "session_pool::store", error = %e,
                "idempotent write on a lost session; retrying once on another");
            op().await
        }
        other => other,
    }
}

/// Runs a `create_tables` (idempotent DDL, `CREATE … IF NOT EXISTS`) as
/// [`retry_idempotent`] does, and once more when another creator that takes no lock of
/// ours (a Python store's `create_all`) made a table or index between the check and the
/// create: PostgreSQL then fails the statement on its catalog (23505, 42P07, 42710),
/// though the object is there.
pub(crate) async fn create_idempotent<F>(mut op: impl FnMut() -> F) -> Result<()>
where
    F: std::future::Future<Output = Result<()>>,
{
    match retry_idempotent(&mut op).await {
        Err(e) if matches!(e.code(), Some("23505" | "42P07" | "42710")) => {
            tracing::debug!(target: "session_pool::store", error = %e,
                "a table was created concurrently; creating the rest again");
            op().await
        }
        other => other,
    }
}

/// Whether `table` exists (PostgreSQL: in the connection's `search_path`).
#[cfg(feature = "items")]
pub(crate) async fn table_exists(
    ctx: &mut impl crate::session::Context,
    table: &crate::ident::Ident,
    postgres: bool,
) -> Result<bool> {
    let (sql, name) = if postgres {
        (
            "SELECT 1::bigint WHERE to_regclass($1) IS NOT NULL",
            table.quoted(),
        )
    } else {
        (
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = $1",
            table.as_str().to_owned(),
        )
    };
    let rows = ctx
        .exec()
        .await?
        // A row when it exists: its count is the answer.
        .map_rows(sql, &[crate::param::Param::Text(&name)], |_| Ok(()))
        .await?;
    Ok(!rows.is_empty())
}

/// A store's `create_tables` on `session`: `statements`, idempotent DDL, in one
/// transaction, under PostgreSQL's advisory lock keyed by `lock` (concurrent
/// `CREATE TABLE IF NOT EXISTS` can still collide in the catalog). When a pooler in
/// statement mode refuses the transaction (the only [`Error::Unsupported`] that leaves the
/// session broken: the pooler closed its connection, the server rolled back what the
/// transaction did), they run one at a time on a fresh session instead, as SQLSpec's store
/// runs them.
pub(crate) async fn create_locked(
    pool: &SharedPool,
    mut session: SessionCheckout,
    postgres: bool,
    lock: &str,
    statements: &[String],
) -> Result<()> {
    let created = async {
        let mut tx = session.transaction().await?;
        if postgres {
            tx.execute_sql(
                "SELECT pg_advisory_xact_lock(hashtext($1))",
                &[crate::Value::from(lock)],
            )
            .await?;
        }
        for statement in statements {
            tx.execute_update(statement, &[]).await?;
        }
        tx.commit().await.map(drop)
    }
    .await;
    match created {
        Err(e) if e.kind() == crate::ErrorKind::Unsupported && session.is_broken() => {
            tracing::debug!(target: "session_pool::store", error = %e, lock,
                "transaction refused; creating the tables one statement at a time");
            drop(session);
            create_one_by_one(&mut *checkout(pool).await?, statements).await
        }
        other => other,
    }
}

/// `statements`, idempotent DDL (`CREATE … IF NOT EXISTS`), run one at a time without a
/// transaction or a lock: where a transaction cannot run (a pooler in statement mode, an
/// engine that refuses DDL in one). A concurrent creator's catalog entry that wins a race
/// (23505, 42P07, 42710) means the object is there.
pub(crate) async fn create_one_by_one(
    session: &mut crate::Session,
    statements: &[String],
) -> Result<()> {
    for statement in statements {
        match crate::WriteContext::execute_update(session, statement, &[]).await {
            Ok(_) => {}
            Err(e) if matches!(e.code(), Some("23505" | "42P07" | "42710")) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Runs `call`, and once more when it failed on tables that changed (a table or column
/// missing, or a column of another type: `Error::is_tables_changed`) and `forget`
/// (which forgets what the store had learnt of `table`'s layout) says something was known:
/// the tables changed under the store (a migration dropped and made them again, a Python
/// store removed its own), so the layout is asked again. The failed statement wrote
/// nothing (each write is one statement or one transaction), so the second run is safe
/// for writes too.
#[cfg(any(feature = "adk", feature = "items"))]
pub(crate) async fn relearning<T, F>(
    table: &str,
    forget: impl FnOnce() -> bool,
    mut call: impl FnMut() -> F,
) -> Result<T>
where
    F: std::future::Future<Output = Result<T>>,
{
    match call().await {
        Err(e) if e.is_tables_changed() && forget() => {
            tracing::warn!(target: "session_pool::store", table, error = %e,
                "the tables changed; asking the catalog for their layout again");
            call().await
        }
        other => other,
    }
}

/// True when `dialect` is PostgreSQL.
pub(crate) fn is_postgres(dialect: Dialect) -> bool {
    #[cfg(feature = "postgres")]
    {
        matches!(dialect, Dialect::Postgres)
    }
    #[cfg(not(feature = "postgres"))]
    {
        let _ = dialect;
        false
    }
}

/// Rejects an empty id, one longer than [`MAX_ID_LEN`] characters, or one with a NUL.
pub(crate) fn check_id(what: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Error::invalid(format!("{what} must not be empty")));
    }
    check_text(what, value, MAX_ID_LEN)
}

/// Rejects text longer than `max` characters (the column's `VARCHAR(max)`) or with a NUL,
/// which PostgreSQL cannot store in text.
pub(crate) fn check_text(what: &str, value: &str, max: usize) -> Result<()> {
    // Bytes bound the characters from above: count only when it could matter.
    if value.len() > max {
        let chars = value.chars().count();
        if chars > max {
            return Err(Error::invalid(format!(
                "{what} is {chars} characters long; the limit is {max}"
            )));
        }
    }
    if value.contains('\0') {
        return Err(Error::invalid(format!("{what} contains a NUL character")));
    }
    Ok(())
}

/// [`check_text`] for an optional value.
pub(crate) fn check_opt(what: &str, value: Option<&str>, max: usize) -> Result<()> {
    value.map_or(Ok(()), |v| check_text(what, v, max))
}

/// Rejects JSON that is not an object (session state).
pub(crate) fn check_object(what: &str, value: &serde_json::Value) -> Result<()> {
    if value.is_object() {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "{what} must be a JSON object, not {}",
            json_kind(value)
        )))
    }
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Positional parameters, collected in the order the SQL numbers them. They borrow from the
/// caller's arguments, so binding copies nothing.
#[derive(Debug, Default)]
pub(crate) struct Binds<'a>(pub(crate) Vec<Param<'a>>);

/// A parameter's placeholder, written `$n`: free to hold, formatted only when a statement's
/// text is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Placeholder(usize);

impl std::fmt::Display for Placeholder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "${}", self.0)
    }
}

impl Placeholder {
    /// `$n`, for statements whose parameters have fixed positions.
    pub(crate) fn nth(n: usize) -> Placeholder {
        Placeholder(n)
    }

    /// Its number: `n` of `$n`.
    pub(crate) fn index(self) -> usize {
        self.0
    }
}

impl<'a> Binds<'a> {
    /// Adds a parameter and returns its placeholder.
    pub(crate) fn push(&mut self, value: impl Into<Param<'a>>) -> Placeholder {
        self.0.push(value.into());
        Placeholder(self.0.len())
    }
}

/// Statement texts built once per shape and shared: formatting a statement costs more than
/// binding it. A key must name everything that changes the text, placeholder numbers
/// included; the parameters are bound on every call in the same order, so a cached text
/// always numbers them right.
#[derive(Debug)]
pub(crate) struct SqlCache<K>(RwLock<HashMap<K, Arc<CachedSql>, RandomState>>);

impl<K> Default for SqlCache<K> {
    fn default() -> Self {
        SqlCache(RwLock::new(HashMap::default()))
    }
}

impl<K: Eq + Hash> SqlCache<K> {
    /// The text for `key`, built by `build` the first time.
    pub(crate) fn get(&self, key: K, build: impl FnOnce() -> String) -> Arc<CachedSql> {
        if let Some(sql) = self.0.read().get(&key) {
            return Arc::clone(sql);
        }
        let sql = Arc::new(CachedSql::from(build()));
        Arc::clone(self.0.write().entry(key).or_insert(sql))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_bounded_by_characters_not_bytes() {
        assert!(check_id("session_id", &"é".repeat(128)).is_ok());
        assert!(check_id("session_id", &"a".repeat(129)).is_err());
        assert!(check_id("session_id", "").is_err());
        assert!(check_id("session_id", "a\0b").is_err());
    }

    #[test]
    fn state_must_be_an_object() {
        assert!(check_object("state", &serde_json::json!({})).is_ok());
        let err = check_object("state", &serde_json::json!([1])).unwrap_err();
        assert!(err.to_string().contains("an array"), "{err}");
    }
}

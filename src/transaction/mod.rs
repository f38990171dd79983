//! Transactions, snapshots and batches: what a session runs atomically.

mod batch;
mod read_only;
pub(crate) mod retry;

pub use batch::Batch;
pub use retry::{Committed, TransactionOptions};

use chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, Connection};

use crate::conn::{ExecResult, RawConnection};
use crate::database::Database;
use crate::error::{Error, Result};
use crate::mutation::{self, Mutate, Mutation};
use crate::session::{Context, Exec, Meta, ReadContext, Session, WriteContext};
use crate::value::Value;

/// The driver transaction: sqlx's, so that dropping it queues a rollback without I/O; or,
/// through a transaction pooler, this crate's own.
enum TxConn<'c> {
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::Transaction<'c, sqlx::Sqlite>),
    #[cfg(feature = "postgres")]
    Postgres(sqlx::Transaction<'c, sqlx::Postgres>),
    /// Through a transaction pooler: `BEGIN`, `COMMIT` and `ROLLBACK` are sent by this crate,
    /// each carrying the session's mark (`crate::pooler::Mark`), so that a `COMMIT` cut off
    /// while it waits (a deferred constraint waiting on another transaction, synchronous
    /// replication) is found and cancelled as any statement is. Dropped, it queues nothing:
    /// the session's `tx_open` stays up and its settle sends the rollback.
    #[cfg(feature = "postgres")]
    Pooled(&'c mut sqlx::PgConnection, Option<u64>),
}

impl TxConn<'_> {
    fn raw(&mut self) -> RawConnection<'_> {
        match self {
            #[cfg(feature = "sqlite")]
            TxConn::Sqlite(t) => RawConnection::Sqlite(t),
            #[cfg(feature = "postgres")]
            TxConn::Postgres(t) => RawConnection::Postgres(t),
            #[cfg(feature = "postgres")]
            TxConn::Pooled(c, _) => {
                RawConnection::PostgresPooled(c, crate::conn::PoolerLink::default())
            }
        }
    }

    async fn commit(self) -> std::result::Result<(), sqlx::Error> {
        match self {
            #[cfg(feature = "sqlite")]
            TxConn::Sqlite(t) => t.commit().await,
            #[cfg(feature = "postgres")]
            TxConn::Postgres(t) => t.commit().await,
            #[cfg(feature = "postgres")]
            TxConn::Pooled(c, mark) => marked(c, mark, "COMMIT").await,
        }
    }

    async fn rollback(self) -> std::result::Result<(), sqlx::Error> {
        match self {
            #[cfg(feature = "sqlite")]
            TxConn::Sqlite(t) => t.rollback().await,
            #[cfg(feature = "postgres")]
            TxConn::Postgres(t) => t.rollback().await,
            #[cfg(feature = "postgres")]
            TxConn::Pooled(c, mark) => marked(c, mark, "ROLLBACK").await,
        }
    }
}

/// Runs `statement` as a simple query with the session's mark at its head.
#[cfg(feature = "postgres")]
async fn marked(
    c: &mut sqlx::PgConnection,
    mark: Option<u64>,
    statement: &str,
) -> std::result::Result<(), sqlx::Error> {
    use sqlx::Executor;
    let mut text = String::with_capacity(crate::pooler::Mark::LEN + statement.len());
    if let Some(key) = mark {
        crate::pooler::Mark::write(key, &mut text);
    }
    text.push_str(statement);
    c.execute(AssertSqlSafe(text)).await.map(drop)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    ReadWrite,
    ReadOnly,
    /// PostgreSQL `READ COMMITTED`, for the crate's own writes that wait for a row lock and
    /// then need a statement that sees what its holder did.
    #[cfg(any(feature = "items", feature = "adk"))]
    Committed,
}

/// Starts a transaction on the session's connection.
async fn begin(session: &mut Session, mode: Mode) -> Result<(TxConn<'_>, &mut Meta, &Database)> {
    let span = crate::telemetry::statement(session.database().telemetry(), "BEGIN", false);
    crate::telemetry::traced(span, std::pin::pin!(begin_untraced(session, mode))).await
}

async fn begin_untraced(
    session: &mut Session,
    mode: Mode,
) -> Result<(TxConn<'_>, &mut Meta, &Database)> {
    let (conn, meta, db) = session.ready().await?;
    // Until BEGIN has answered, a dropped future could leave a transaction open that sqlx
    // does not know of; the flag makes the next use roll it back. In flight, it is stopped
    // first if it has not answered by then (SQLite's BEGIN IMMEDIATE waits for the lock).
    meta.tx_dirty = true;
    meta.in_flight = true;
    let tx = match conn {
        #[cfg(feature = "sqlite")]
        RawConnection::Sqlite(c) => {
            // IMMEDIATE takes the write lock up front, so conflicts surface as BUSY at BEGIN
            // (retryable) rather than as a failed upgrade halfway through.
            let sql = if mode == Mode::ReadOnly {
                "BEGIN DEFERRED"
            } else {
                "BEGIN IMMEDIATE"
            };
            c.begin_with(AssertSqlSafe(sql)).await.map(TxConn::Sqlite)
        }
        #[cfg(feature = "postgres")]
        RawConnection::Postgres(c) => c
            .begin_with(AssertSqlSafe(pg_begin(mode)))
            .await
            .map(TxConn::Postgres),
        // BEGIN is a simple query: the pooler pins a server connection until COMMIT.
        #[cfg(feature = "postgres")]
        RawConnection::PostgresPooled(c, _) => {
            let mark = meta.pooled_mark.map(|m| m.key);
            marked(c, mark, pg_begin(mode))
                .await
                .map(|()| TxConn::Pooled(c, mark))
        }
    };
    meta.tx_dirty = false;
    meta.in_flight = false;
    let tx = tx.map_err(|e| meta.fail(e.into()))?;
    // Until COMMIT or ROLLBACK has answered, `tx_open` stays up: a transaction dropped
    // before that (a cancelled task, a panic) leaves it up, and the pool sends the queued
    // rollback as soon as the session comes home, so its locks do not wait for the
    // session's next use.
    meta.tx_open = true;
    meta.tx_failed = None;
    Ok((tx, meta, db))
}

#[cfg(feature = "postgres")]
fn pg_begin(mode: Mode) -> &'static str {
    match mode {
        Mode::ReadWrite => "BEGIN ISOLATION LEVEL SERIALIZABLE",
        Mode::ReadOnly => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        #[cfg(any(feature = "items", feature = "adk"))]
        Mode::Committed => "BEGIN ISOLATION LEVEL READ COMMITTED",
    }
}

/// Runs a COMMIT or ROLLBACK. While it is in flight, a dropped future could leave the
/// transaction open or closed: the flags make the next use roll back to be sure, and stop
/// a COMMIT that still waits (on a deferred constraint's lock, on synchronous replication)
/// first, so that its locks go with it.
async fn end(
    finish: impl Future<Output = std::result::Result<(), sqlx::Error>>,
    meta: &mut Meta,
) -> std::result::Result<(), sqlx::Error> {
    meta.tx_dirty = true;
    meta.in_flight = true;
    let res = finish.await;
    meta.tx_dirty = false;
    meta.in_flight = false;
    meta.tx_open = false;
    meta.tx_failed = None;
    res
}

/// A read-write transaction (Spanner's `Transaction`): PostgreSQL `SERIALIZABLE`, SQLite
/// `BEGIN IMMEDIATE`.
///
/// Reads and DML run at once; mutations ([`Mutate`]) are buffered and applied at
/// [`commit`](Transaction::commit). Dropping it without `commit` or `rollback` rolls it back:
/// the rollback is queued on the connection and sent with its next use, so `Drop` does no I/O.
#[must_use = "a transaction rolls back unless it is committed"]
pub struct Transaction<'s> {
    tx: TxConn<'s>,
    meta: &'s mut Meta,
    database: &'s Database,
    mutations: Vec<Mutation>,
}

impl std::fmt::Debug for Transaction<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction")
            .field("session", &self.meta.name)
            .field("buffered_mutations", &self.mutations.len())
            .finish()
    }
}

impl<'s> Transaction<'s> {
    pub(crate) async fn begin(session: &'s mut Session) -> Result<Transaction<'s>> {
        Self::begin_in(session, Mode::ReadWrite).await
    }

    /// A transaction whose statements each see the latest committed data (PostgreSQL
    /// `READ COMMITTED`): the crate's own writes that lock a row and then act on what the
    /// lock's previous holder left, where `SERIALIZABLE` would fail with a conflict.
    #[cfg(any(feature = "items", feature = "adk"))]
    pub(crate) async fn begin_read_committed(session: &'s mut Session) -> Result<Transaction<'s>> {
        Self::begin_in(session, Mode::Committed).await
    }

    async fn begin_in(session: &'s mut Session, mode: Mode) -> Result<Transaction<'s>> {
        let (tx, meta, database) = begin(session, mode).await?;
        Ok(Transaction {
            tx,
            meta,
            database,
            mutations: Vec::new(),
        })
    }

    /// Runs DML statements in order and returns each one's row count; stops at the first
    /// error and returns it.
    pub async fn batch_update<S: AsRef<str>>(
        &mut self,
        statements: &[(S, Vec<Value>)],
    ) -> Result<Vec<u64>> {
        let mut counts = Vec::with_capacity(statements.len());
        for (sql, params) in statements {
            counts.push(self.execute_update(sql.as_ref(), params).await?);
        }
        Ok(counts)
    }

    async fn apply_mutations(&mut self) -> ExecResult<()> {
        let schema = &self.database.inner.schema;
        let mut conn = self.tx.raw();
        for m in &self.mutations {
            mutation::apply(conn.reborrow(), schema, m).await?;
        }
        Ok(())
    }

    /// Applies the buffered mutations and commits. Returns the commit time (the client's
    /// clock when the database confirmed the commit).
    pub async fn commit(mut self) -> Result<DateTime<Utc>> {
        if let Some(failure) = self.meta.tx_failed.take() {
            // PostgreSQL would answer COMMIT with a rollback: say so rather than pass it off
            // as a commit. An abort stays one, for `run_in_transaction` to retry.
            let _ = end(self.tx.rollback(), self.meta)
                .await
                .map_err(|e| self.meta.fail(e.into()));
            let crate::session::TxFailure {
                code,
                message,
                retryable,
            } = failure;
            tracing::debug!(target: "session_pool::transaction", session = %self.meta.name,
                code, "commit of a failed transaction: rolled back");
            return Err(if retryable {
                Error::Aborted {
                    code,
                    message,
                    source: None,
                }
            } else {
                Error::RolledBack { code, message }
            });
        }
        if let Err(e) = self.apply_mutations().await {
            let err = self.meta.fail(e);
            // The rollback of a failed transaction changes nothing; its own error would only
            // hide the first one.
            let _ = end(self.tx.rollback(), self.meta).await;
            return Err(err);
        }
        let span = crate::telemetry::statement(self.database.telemetry(), "COMMIT", false);
        let meta = self.meta;
        let commit = async {
            end(self.tx.commit(), meta)
                .await
                .map_err(|e| meta.fail_commit(e))
        };
        crate::telemetry::traced(span, std::pin::pin!(commit)).await?;
        Ok(Utc::now())
    }

    /// Rolls back, discarding buffered mutations.
    pub async fn rollback(self) -> Result<()> {
        end(self.tx.rollback(), self.meta)
            .await
            .map_err(|e| self.meta.fail(e.into()))
    }
}

impl Context for Transaction<'_> {
    async fn exec(&mut self) -> Result<Exec<'_>> {
        // Another session may have met a stale statement since this one began.
        crate::session::catch_up(self.tx.raw(), self.meta, self.database).await?;
        Ok(Exec::new(self.tx.raw(), self.meta, self.database))
    }
}

impl ReadContext for Transaction<'_> {}
impl WriteContext for Transaction<'_> {}

impl Mutate for Transaction<'_> {
    /// Buffers a mutation, applied at commit (reads in the transaction do not see it).
    fn buffer(&mut self, mutation: Mutation) -> &mut Self {
        self.mutations.push(mutation);
        self
    }

    fn mutations(&self) -> &[Mutation] {
        &self.mutations
    }
}

/// A multi-use read-only transaction (Spanner's multi-use `Snapshot`): every read sees the
/// same state. PostgreSQL `REPEATABLE READ READ ONLY`; SQLite a deferred transaction, whose
/// snapshot is fixed by its first read (WAL).
#[must_use = "a snapshot ends as soon as it is dropped"]
pub struct Snapshot<'s> {
    tx: TxConn<'s>,
    meta: &'s mut Meta,
    database: &'s Database,
}

impl std::fmt::Debug for Snapshot<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("session", &self.meta.name)
            .finish()
    }
}

impl<'s> Snapshot<'s> {
    pub(crate) async fn begin(session: &'s mut Session) -> Result<Snapshot<'s>> {
        let (tx, meta, database) = begin(session, Mode::ReadOnly).await?;
        Ok(Snapshot { tx, meta, database })
    }

    /// Ends the snapshot. Dropping it does the same, queued without I/O.
    pub async fn close(self) -> Result<()> {
        end(self.tx.rollback(), self.meta)
            .await
            .map_err(|e| self.meta.fail(e.into()))
    }
}

impl Context for Snapshot<'_> {
    async fn exec(&mut self) -> Result<Exec<'_>> {
        // Another session may have met a stale statement since this one began.
        crate::session::catch_up(self.tx.raw(), self.meta, self.database).await?;
        Ok(Exec::new(self.tx.raw(), self.meta, self.database))
    }
}

impl ReadContext for Snapshot<'_> {}

impl Session {
    /// Starts a read-write [`Transaction`]. Prefer [`run_in_transaction`](Session::run_in_transaction),
    /// which retries aborts.
    pub async fn transaction(&mut self) -> Result<Transaction<'_>> {
        Transaction::begin(self).await
    }

    /// Starts a multi-use read-only [`Snapshot`].
    pub async fn snapshot(&mut self) -> Result<Snapshot<'_>> {
        Snapshot::begin(self).await
    }

    /// A [`Batch`] of mutations, applied atomically by [`Batch::commit`]. Fails with
    /// [`Error::NotCreated`] if the session was not created.
    pub fn batch(&mut self) -> Result<Batch<'_>> {
        if !self.is_created() {
            return Err(Error::NotCreated);
        }
        Ok(Batch::new(self))
    }
}

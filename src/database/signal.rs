//! Cancelling and terminating a session's backend, from a connection of its own.

use sqlx::postgres::PgConnection;
use sqlx::{ConnectOptions, Connection};

use super::{Backend, Database, Target};
use crate::error::{Error, Result};

impl Database {
    /// Asks the server to cancel what `backend` is running (PostgreSQL
    /// `pg_cancel_backend`, from a connection of its own to the same host, which sqlx's
    /// lack of a cancel request makes necessary). Returns whether the server found it.
    #[cfg(feature = "postgres")]
    pub(crate) async fn cancel_backend(&self, backend: Backend) -> Result<bool> {
        let pid = format!("SELECT {}::int4 AS pid", backend.pid);
        self.signal_backend("pg_cancel_backend", backend.host, pid)
            .await
    }

    /// Ends `backend` (PostgreSQL `pg_terminate_backend`): its transaction rolls back and
    /// its locks go. Returns whether the server found it.
    #[cfg(feature = "postgres")]
    pub(crate) async fn terminate_backend(&self, backend: Backend) -> Result<bool> {
        let pid = format!("SELECT {}::int4 AS pid", backend.pid);
        self.signal_backend("pg_terminate_backend", backend.host, pid)
            .await
    }

    /// Cancels the statement with the mark `mark` running through the pooler (see
    /// [`Mark`](crate::pooler::Mark)). Returns whether a backend was running it.
    #[cfg(feature = "postgres")]
    pub(crate) async fn cancel_marked(&self, mark: crate::pooler::Mark) -> Result<bool> {
        self.signal_backend("pg_cancel_backend", mark.host, mark.running())
            .await
    }

    /// Sends `function` (`pg_cancel_backend`, `pg_terminate_backend`) to the backends
    /// `pids` (a query) names on host `host`, from a connection of its own (a pid means
    /// nothing on another server), together with any other signals waiting (see
    /// `signals.rs`). Returns whether its batch reached any backend.
    #[cfg(feature = "postgres")]
    async fn signal_backend(
        &self,
        function: &'static str,
        host: usize,
        pids: String,
    ) -> Result<bool> {
        let queue = self.inner.signals.queue(host);
        queue
            .send(function, pids, |batch| self.signal_batch(batch))
            .await
            .map_err(|message| Error::Connect {
                target: self.inner.name.clone(),
                source: sqlx::Error::Protocol(message),
            })
    }

    /// Sends one batch of signals from a new connection to its host.
    #[cfg(feature = "postgres")]
    #[allow(irrefutable_let_patterns)] // refutable once SQLite is built too
    async fn signal_batch(
        &self,
        batch: crate::signals::Batch,
    ) -> std::result::Result<bool, String> {
        let Target::Postgres(hosts) = &self.inner.target else {
            return Ok(false);
        };
        let Some(options) = hosts.options.get(batch.host) else {
            return Ok(false);
        };
        let mut conn: PgConnection = options.connect().await.map_err(|e| e.to_string())?;
        let found: bool = sqlx::raw_sql(sqlx::AssertSqlSafe(batch.sql))
            .fetch_one(&mut conn)
            .await
            .and_then(|row| {
                use sqlx::Row;
                row.try_get::<bool, _>(0)
            })
            .map_err(|e| e.to_string())?;
        let _ = conn.close().await;
        Ok(found)
    }
}

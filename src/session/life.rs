//! A session's life: created, readied before each statement (settling what a cut-off
//! use left, catching up with a pooler or a schema change, resetting), checked and
//! deleted.

use std::time::Instant;

#[cfg(feature = "postgres")]
use super::passthrough;
use super::{Live, Meta, Session, SessionOptions, prepared};
#[cfg(feature = "postgres")]
use crate::conn::Conn;
use crate::conn::{ExecError, RawConnection};
use crate::database::Database;
#[cfg(feature = "postgres")]
use crate::error::{Class, classify};
use crate::error::{Error, Result};

/// The session's role, quoted for `SET ROLE`.
fn quoted_role(options: &SessionOptions) -> Result<Option<String>> {
    options.database_role.as_deref().map(quote_role).transpose()
}

/// Quotes a role name as a PostgreSQL identifier: any text is safe this way.
fn quote_role(role: &str) -> Result<String> {
    if role.is_empty() || role.contains('\0') || role.len() > crate::ident::MAX_IDENT_LEN {
        return Err(Error::invalid(format!(
            "database role {role:?} must be 1 to {} bytes with no NUL",
            crate::ident::MAX_IDENT_LEN
        )));
    }
    Ok(format!("\"{}\"", role.replace('"', "\"\"")))
}

impl Session {
    /// Creates the session: opens its connection, learns its backend pid and assumes its
    /// database role. [`Error::AlreadyCreated`] if it exists; [`Error::Unsupported`] for a
    /// role on SQLite; [`Error::Connect`] if the server cannot be reached.
    pub async fn create(&mut self) -> Result<()> {
        let span = crate::telemetry::session_op(self.parts.database.telemetry(), "create_session");
        crate::telemetry::traced(span, std::pin::pin!(self.create_untraced())).await
    }

    async fn create_untraced(&mut self) -> Result<()> {
        if let Some(live) = &self.parts.live {
            return Err(Error::AlreadyCreated {
                name: live.meta.name.clone(),
            });
        }
        let role = quoted_role(&self.parts.options)?;
        #[cfg(feature = "sqlite")]
        if role.is_some() && self.parts.database.dialect() == crate::dialect::Dialect::Sqlite {
            return Err(Error::Unsupported(
                "SQLite has no database roles; create the session without `database_role`".into(),
            ));
        }
        let database = &self.parts.database;
        let statement_timeout = database.statement_timeout();
        let (conn, (prepared, host)) = database
            .bounded_connect(async {
                let (mut conn, host) = database.connect().await?;
                let crate_error = |e| match e {
                    ExecError::Crate(e) => e,
                    ExecError::Sql(e) => crate::error::from_sqlx(e),
                };
                let detect = database.detects_pooler();
                let first = conn
                    .prepare_session(role.as_deref(), statement_timeout, detect)
                    .await;
                // A pooler shares the server connection: the check found the statement
                // renamed or another client's there, or the first statement itself met
                // another client's of the same name (or was prepared and bound on
                // different server connections). Nothing was set on it: readied again as
                // through a declared pooler.
                let shared = match &first {
                    Ok(prepared) => prepared.pooler_found,
                    #[cfg(feature = "postgres")]
                    Err(ExecError::Sql(e)) => {
                        classify(e) == Class::UndeclaredPooler && database.pooler_undeclared()
                    }
                    Err(_) => false,
                };
                let prepared = if shared {
                    database.found_pooler();
                    conn = conn.into_pooled();
                    conn.prepare_session(role.as_deref(), statement_timeout, false)
                        .await
                } else {
                    first
                }
                .map_err(crate_error)?;
                Ok((conn, (prepared, host)))
            })
            .await?;
        let uuid = uuid::Uuid::new_v4();
        #[cfg(feature = "postgres")]
        let pooled_mark = matches!(conn, Conn::PgPooled(_)).then(|| crate::pooler::Mark {
            host,
            key: uuid.as_u64_pair().0,
        });
        let id = uuid.simple().to_string();
        let now = Instant::now();
        let meta = Meta {
            name: format!("{}/sessions/{id}", self.parts.database.name()),
            id,
            backend: prepared
                .pid
                .map(|pid| crate::database::Backend { host, pid }),
            created_at: now,
            spread: uuid.as_u64_pair().1 as u16,
            last_used: now,
            touched: coarsetime::Instant::now_without_cache_update(),
            broken: false,
            tx_dirty: false,
            tx_open: false,
            tx_failed: None,
            lost_before_commit: false,
            prepared_at: prepared::PreparedAt::new(self.parts.database.schema_changes()),
            in_flight: false,
            #[cfg(feature = "postgres")]
            pooled_mark,
            #[cfg(feature = "postgres")]
            may_go_pooled: role.is_none() && self.parts.database.pooler_undeclared(),
            #[cfg(feature = "postgres")]
            statements_lost: false,
            needs_reset: false,
            uses: 0,
            tally: std::sync::Arc::default(),
            checked_out: None,
            last_abort: None,
            interrupt: prepared.interrupt,
        };
        tracing::debug!(
            target: "session_pool::session", session = %meta.name, backend = ?meta.backend,
            "session created"
        );
        self.parts.live = Some(Live {
            conn,
            meta,
            #[cfg(feature = "postgres")]
            replica: None,
        });
        Ok(())
    }

    /// The connection, ready for a statement: created, not broken, and out of any
    /// transaction that a cancelled future left open.
    pub(crate) async fn ready(&mut self) -> Result<(RawConnection<'_>, &mut Meta, &Database)> {
        if self.needs_upkeep()? {
            // Boxed: rare, and its round trips' state would otherwise sit in every
            // statement's future.
            Box::pin(self.upkeep()).await?;
        }
        let live = self.parts.live.as_mut().ok_or(Error::NotCreated)?;
        live.meta.last_used = Instant::now();
        live.meta.touched = coarsetime::Instant::now_without_cache_update();
        Ok((live.conn.as_mut(), &mut live.meta, &self.parts.database))
    }

    /// True when the connection needs work before its next statement (see
    /// [`upkeep`](Session::upkeep)); an error when the session cannot serve at all.
    fn needs_upkeep(&self) -> Result<bool> {
        let live = self.parts.live.as_ref().ok_or(Error::NotCreated)?;
        if live.meta.broken {
            return Err(live.meta.not_found("the session was marked broken".into()));
        }
        let due =
            live.unsettled() || live.meta.needs_reset || live.meta.prepared_at.behind().is_some();
        #[cfg(feature = "postgres")]
        let due = due
            || live.meta.statements_lost
            || (matches!(live.conn, Conn::Postgres(_)) && self.parts.database.transaction_pooler());
        Ok(due)
    }

    /// The work [`needs_upkeep`](Session::needs_upkeep) found: settles what a cancelled
    /// future left, finds out where a pooler moved the session, prepares statements anew
    /// after a schema change, resets the session's state. Each step checks its own
    /// condition; a step added here needs its condition in `needs_upkeep` too, or it
    /// never runs.
    async fn upkeep(&mut self) -> Result<()> {
        let live = self.parts.live.as_mut().ok_or(Error::NotCreated)?;
        if live.unsettled() {
            live.settle(&self.parts.database).await?;
        }
        #[cfg(feature = "postgres")]
        if live.meta.statements_lost {
            let db = &self.parts.database;
            passthrough::find_out(live.conn.as_mut(), &mut live.meta, db).await?;
        }
        #[cfg(feature = "postgres")]
        if matches!(live.conn, Conn::Postgres(_)) && self.parts.database.transaction_pooler() {
            // Another session found a pooler that passes statement names through.
            self.go_pooled()?;
        }
        let live = self.parts.live.as_mut().ok_or(Error::NotCreated)?;
        let timeout = self.parts.database.check_timeout();
        // Before anything else is prepared on it.
        prepared::catch_up(live.conn.as_mut(), &mut live.meta, &self.parts.database).await?;
        if live.meta.needs_reset {
            let role = quoted_role(&self.parts.options)?;
            let reset = live
                .conn
                .reset(role.as_deref(), self.parts.database.statement_timeout());
            if let Err(err) = upkeep(&mut live.meta, timeout, "the reset", reset).await {
                // A session whose state could not be reset must not serve anyone.
                live.meta.broken = true;
                return Err(err);
            }
            live.meta.needs_reset = false;
        }
        Ok(())
    }

    /// Goes over to the pooler mode the database found (`passthrough.rs`), unless the
    /// session assumed a role: then it is given up, since the role may be set on a server
    /// connection the pooler shares.
    #[cfg(feature = "postgres")]
    fn go_pooled(&mut self) -> Result<()> {
        let Some(live) = self.parts.live.take() else {
            return Ok(());
        };
        let Live {
            conn,
            mut meta,
            replica,
        } = live;
        let res = if meta.may_go_pooled {
            meta.go_pooled();
            Ok(())
        } else {
            meta.broken = true;
            Err(crate::pooler::role_refused())
        };
        let conn = if meta.broken {
            conn
        } else {
            conn.into_pooled()
        };
        self.parts.live = Some(Live {
            conn,
            meta,
            replica,
        });
        res
    }

    /// True if the session's connection is alive on the server: one cheap round trip.
    /// False if it was never created, was deleted, or the server dropped it.
    pub async fn exists(&mut self) -> Result<bool> {
        let Some(live) = self.parts.live.as_mut() else {
            return Ok(false);
        };
        if live.meta.broken {
            return Ok(false);
        }
        if live.unsettled() && Box::pin(live.settle(&self.parts.database)).await.is_err() {
            return Ok(false); // settling gave the session up
        }
        let timeout = self.parts.database.check_timeout();
        match tokio::time::timeout(timeout, live.conn.ping()).await {
            Ok(Ok(())) => Ok(true),
            Ok(Err(e)) => {
                let err = live.meta.fail(e.into());
                if live.meta.broken {
                    Ok(false)
                } else {
                    Err(err)
                }
            }
            Err(_) => {
                // A server that does not answer a ping within the check timeout is as good
                // as gone: what was sent may still be in flight, so the connection cannot
                // be reused either.
                live.meta.broken = true;
                tracing::debug!(target: "session_pool::session", session = %live.meta.name,
                    ?timeout, "no answer to a ping within the check timeout");
                Ok(false)
            }
        }
    }

    /// Deletes the session: closes its connection. [`Error::NotCreated`] if there is none;
    /// [`Error::SessionNotFound`] if the server had already dropped it.
    pub async fn delete(&mut self) -> Result<()> {
        let span = crate::telemetry::session_op(self.parts.database.telemetry(), "delete_session");
        crate::telemetry::traced(span, std::pin::pin!(self.delete_untraced())).await
    }

    async fn delete_untraced(&mut self) -> Result<()> {
        let Some(mut live) = self.parts.live.take() else {
            return Err(Error::NotCreated);
        };
        if live.meta.broken {
            return Err(live.meta.not_found("the session was already lost".into()));
        }
        if live.unsettled() {
            // A cut-off statement would otherwise run on, and hold its locks, after the close.
            live.settle(&self.parts.database).await?;
        }
        let timeout = self.parts.database.check_timeout();
        // Closing alone cannot tell a live session from one the server dropped: ask first.
        match tokio::time::timeout(timeout, live.conn.ping()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let err = live.meta.fail(e.into());
                if live.meta.broken {
                    return Err(err);
                }
            }
            Err(_) => {
                return Err(live.meta.not_found(format!(
                    "the server did not answer within the check timeout ({timeout:?})"
                )));
            }
        }
        let close = live.conn.close();
        let closed = tokio::time::timeout(timeout, close).await.unwrap_or(Ok(()));
        if let Err(e) = closed {
            tracing::debug!(target: "session_pool::session", session = %live.meta.name, error = %e,
                "error while closing a session");
        }
        tracing::debug!(target: "session_pool::session", session = %live.meta.name, "session deleted");
        Ok(())
    }
}

/// Runs `work`, upkeep of the session's connection before its next statement, within the
/// check timeout `timeout`. A failure is the session's error (`Meta::fail`); no answer in
/// time leaves the session broken.
pub(super) async fn upkeep(
    meta: &mut Meta,
    timeout: std::time::Duration,
    what: &str,
    work: impl Future<Output = crate::conn::ExecResult<()>>,
) -> Result<()> {
    match tokio::time::timeout(timeout, work).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(meta.fail(e)),
        Err(_) => {
            meta.broken = true;
            Err(meta.not_found(format!(
                "the server did not answer {what} within the check timeout"
            )))
        }
    }
}

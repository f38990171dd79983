//! The executor every query goes through, whatever runs it: a session outside any
//! transaction, a [`Transaction`](crate::Transaction) or a [`Snapshot`](crate::Snapshot).
//! The public methods are written once, on [`ReadContext`](super::ReadContext) and
//! [`WriteContext`](super::WriteContext); this module is what they share, and `limit.rs`
//! bounds how long each statement runs.

use std::future::Future;

use futures_core::stream::BoxStream;
use futures_util::StreamExt;

use super::Meta;
use super::limit::{By, Limit, bounded, server_side, timed_out};
use crate::conn::ExecResult;
#[cfg(any(feature = "adk", feature = "items"))]
use crate::conn::RowRef;
use crate::conn::{ExecError, FromDriverRow, IntoSql, RawConnection};
use crate::database::Database;
use crate::error::{Class, Error, Result, classify};
use crate::keyset::KeySet;
use crate::param::AsParam;
use crate::read::ReadRequest;
use crate::row::{ResultSet, Row};
use crate::telemetry;

/// Runs `$body`, one statement on the executor `$e` (`$exec` reborrowed), and runs it
/// again where the server refused it before it ran, for what the session can mend:
///
/// - a schema change left the statement's prepared form stale: once more after the
///   session prepares its statements anew (`prepared.rs`);
/// - the server connection did not hold the session's prepared statements: after the
///   session finds out why, going over to the pooler mode if a pooler moved it
///   (`passthrough.rs`), a few times (a pooler may move it again before it finds out).
///
/// Those errors come as such only outside a transaction, where nothing ran; inside one
/// they abort the transaction, and `Meta::fail` makes them a retryable `Error::Aborted`.
macro_rules! replanned {
    ($exec:ident, |$e:ident| $body:expr) => {{
        let mut exec = $exec;
        let mut stale = 1;
        #[cfg(feature = "postgres")]
        let mut lost = 3;
        loop {
            let res = {
                let $e = exec.again();
                $body.await
            };
            match res {
                Err(e) if stale > 0 && e.is_stale_plan() => {
                    stale -= 1;
                    exec.prepare_anew().await?;
                }
                #[cfg(feature = "postgres")]
                Err(Error::UndeclaredPooler { .. }) if lost > 0 && exec.meta.statements_lost => {
                    lost -= 1;
                    exec = exec.find_out().await?;
                }
                other => break other,
            }
        }
    }};
}

/// A connection ready for one statement, with the bookkeeping that turns its failures into
/// this crate's errors (a lost connection marks the session broken) and the limit on how
/// long it may run.
#[derive(Debug)]
pub struct Exec<'a> {
    pub(crate) conn: RawConnection<'a>,
    pub(crate) meta: &'a mut Meta,
    pub(crate) db: &'a Database,
    pub(crate) limit: Option<Limit>,
}

impl<'a> Exec<'a> {
    /// An executor bounded by the database-wide statement timeout, if any.
    pub(crate) fn new(conn: RawConnection<'a>, meta: &'a mut Meta, db: &'a Database) -> Self {
        let limit = Limit::database_wide(db, &conn);
        Exec {
            conn,
            meta,
            db,
            limit,
        }
    }

    /// Refuses, before sending, a NUL in the text and (SQLite) a parameter count that does
    /// not match the placeholders: for the statements users write (the stores bind one
    /// parameter list for several statements of their own, some using only part of it).
    pub(crate) fn checked(self, sql: &str, params: usize) -> Result<Self> {
        #[cfg(feature = "sqlite")]
        let sqlite = matches!(self.conn, RawConnection::Sqlite(_));
        #[cfg(not(feature = "sqlite"))]
        let sqlite = false;
        crate::placeholders::check(sql, params, sqlite)?;
        Ok(self)
    }

    /// This executor again, for another run on the same connection.
    fn again(&mut self) -> Exec<'_> {
        Exec {
            conn: self.conn.reborrow(),
            meta: &mut *self.meta,
            db: self.db,
            limit: self.limit,
        }
    }

    /// After a statement of this session went stale: its statements prepared anew.
    async fn prepare_anew(&mut self) -> Result<()> {
        super::prepared::catch_up(self.conn.reborrow(), self.meta, self.db).await
    }

    /// After a statement was refused for a prepared statement the server connection did
    /// not hold: this executor, in the pooler mode if a pooler moved the session.
    #[cfg(feature = "postgres")]
    async fn find_out(self) -> Result<Exec<'a>> {
        let Exec {
            mut conn,
            meta,
            db,
            limit,
        } = self;
        // Boxed: rare, and a round trip's state would otherwise sit in every statement's
        // future.
        if Box::pin(super::passthrough::find_out(conn.reborrow(), meta, db)).await? {
            conn = conn.into_pooled();
        }
        Ok(Exec {
            conn,
            meta,
            db,
            limit,
        })
    }

    /// Runs one statement: `op` on the connection, in the statement's span, within the
    /// limit, its failure turned into this crate's error.
    async fn run<S: IntoSql, T, F>(
        self,
        sql: S,
        op: impl FnOnce(RawConnection<'a>, S) -> F,
    ) -> Result<T>
    where
        F: Future<Output = ExecResult<T>>,
    {
        let Exec {
            conn,
            meta,
            db,
            limit,
        } = self;
        let (conn, limit) = server_side(conn, limit, meta);
        let span = telemetry::statement(db.telemetry(), sql.text(), true);
        // Pinned here, each layer's future is stored once in this one (see `traced`).
        let run = std::pin::pin!(op(conn, sql));
        telemetry::traced(span, std::pin::pin!(bounded(meta, db, limit, run))).await
    }

    pub(crate) async fn fetch_all(
        self,
        sql: impl IntoSql,
        params: &[impl AsParam],
    ) -> Result<ResultSet> {
        replanned!(self, |e| e
            .run(sql.clone(), |c, sql| c.fetch_all(sql, params)))
    }

    /// Streams rows, bounded by the limit for as long as the stream runs. A statement a
    /// schema change left stale fails before its first row: outside a transaction it is
    /// run again once, after the session prepares its statements anew (as `replanned!`
    /// does for the others), so the caller sees its rows, not the error.
    pub(crate) fn fetch<S, P>(self, sql: S, params: &'a [P]) -> BoxStream<'a, Result<Row>>
    where
        S: IntoSql + Send + 'a,
        P: AsParam + Sync,
    {
        let Exec {
            mut conn,
            meta,
            db,
            limit,
        } = self;
        // The span lives as long as the stream.
        let span = telemetry::statement(db.telemetry(), sql.text(), true);
        // A generator: the first run's rows borrow the connection, which the second run
        // needs back.
        let rows = async_stream::stream! {
            // In flight until the stream ends (see `bounded`); on SQLite the statement's
            // hold on the interrupt lasts as long, and stops the statement if the stream is
            // dropped.
            meta.in_flight = true;
            let mut running = meta.interrupt.clone().map(|interrupt| {
                crate::deadline::Running::start(interrupt, limit.map(|l| l.timeout))
            });
            let mut again = true;
            'run: loop {
                let (c, limit) = server_side(conn.reborrow(), limit, meta);
                let timeout = limit.map(|l| l.timeout);
                let rows = c.fetch(sql.clone(), params);
                // PostgreSQL: a timer beside the stream (SQLite's interrupt needs none).
                let mut rows = match (limit, meta.backend) {
                    (Some(limit), Some(backend)) if running.is_none() && limit.by != By::Lost => {
                        let cancel = limit.by == By::Cancel;
                        super::timed_stream::Timed::new(rows, db, backend, limit.timeout, cancel)
                            .boxed()
                    }
                    _ => rows,
                };
                while let Some(r) = rows.next().await {
                    let r = r.map_err(|e| match (e, timeout) {
                        (ExecError::Sql(e), Some(timeout)) if classify(&e) == Class::Cancelled => {
                            timed_out(meta, &e, timeout)
                        }
                        (ExecError::Crate(e @ Error::StatementTimeout { session_lost, .. }), _) => {
                            meta.broken |= session_lost;
                            e
                        }
                        (e, _) => meta.fail(e),
                    });
                    if again && matches!(&r, Err(e) if e.is_stale_plan()) {
                        // Before any row (the server refuses the statement at its start).
                        again = false;
                        drop(rows);
                        if let Err(e) = super::prepared::catch_up(conn.reborrow(), meta, db).await {
                            yield Err(e);
                            break 'run;
                        }
                        continue 'run;
                    }
                    #[cfg(feature = "postgres")]
                    if again
                        && meta.statements_lost
                        && matches!(&r, Err(Error::UndeclaredPooler { .. }))
                    {
                        // Refused before any row, too (see `replanned!`).
                        again = false;
                        drop(rows);
                        match super::passthrough::find_out(conn.reborrow(), meta, db).await {
                            Ok(true) => conn = conn.into_pooled(),
                            Ok(false) => {}
                            Err(e) => {
                                yield Err(e);
                                break 'run;
                            }
                        }
                        continue 'run;
                    }
                    again = false;
                    yield r;
                }
                break;
            }
            meta.in_flight = false;
            if let Some(running) = running.take() {
                running.finish();
            }
        };
        let mut rows = Box::pin(rows);
        futures_util::stream::poll_fn(move |cx| {
            let _entered = span.enter();
            let r = std::task::ready!(rows.poll_next_unpin(cx));
            if let Some(Err(e)) = &r {
                telemetry::failed(&span, e);
            }
            std::task::Poll::Ready(r)
        })
        .boxed()
    }

    pub(crate) async fn execute(self, sql: impl IntoSql, params: &[impl AsParam]) -> Result<u64> {
        replanned!(self, |e| e
            .run(sql.clone(), |c, sql| c.execute(sql, params)))
    }

    /// Runs a query and decodes each row by position with `decode` (the stores' records).
    #[cfg(any(feature = "adk", feature = "items"))]
    pub(crate) async fn map_rows<T>(
        self,
        sql: impl IntoSql,
        params: &[impl AsParam],
        mut decode: impl FnMut(RowRef<'_>) -> ExecResult<T>,
    ) -> Result<Vec<T>> {
        replanned!(self, |e| e.run(sql.clone(), |c, sql| c.fetch_map(
            sql,
            params,
            &mut decode
        )))
    }

    /// Runs a query and decodes each row with sqlx's `FromRow`.
    pub(crate) async fn fetch_as<T: FromDriverRow>(
        self,
        sql: impl IntoSql,
        params: &[impl AsParam],
    ) -> Result<Vec<T>> {
        replanned!(self, |e| e
            .run(sql.clone(), |c, sql| c.fetch_as(sql, params)))
    }

    /// A key-set read; its span shows `SELECT` and never the generated text.
    pub(crate) async fn read(
        self,
        request: &ReadRequest,
        keyset: &KeySet,
        limit: usize,
    ) -> Result<ResultSet> {
        replanned!(self, |e| e.read_once(request, keyset, limit))
    }

    async fn read_once(
        self,
        request: &ReadRequest,
        keyset: &KeySet,
        limit: usize,
    ) -> Result<ResultSet> {
        let Exec {
            conn,
            meta,
            db,
            limit: bound,
        } = self;
        let (conn, bound) = server_side(conn, bound, meta);
        let span = telemetry::statement(db.telemetry(), "SELECT", false);
        let run = std::pin::pin!(request.run(conn, db, keyset, limit));
        telemetry::traced(span, std::pin::pin!(bounded(meta, db, bound, run))).await
    }
}

/// What runs statements: implemented by [`Session`](crate::Session),
/// [`Transaction`](crate::Transaction) and [`Snapshot`](crate::Snapshot), and by nothing
/// else (the trait is not reachable from outside the crate).
pub trait Context: Send {
    /// The connection, ready for a statement.
    fn exec(&mut self) -> impl Future<Output = Result<Exec<'_>>> + Send;
}

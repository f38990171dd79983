//! Bounded reads on read replicas: which session a read with a [`Staleness`] goes to, and
//! commit tokens for reading one's own writes.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use super::{Context, Exec, ReadContext, Session};
use crate::error::{Error, Result};
use crate::staleness::{CommitToken, ReplicaState, Staleness};
use crate::transaction::Snapshot;

/// A session's link to one replica: a session of the replica's own, and what its last
/// check found.
#[derive(Debug)]
pub(crate) struct Link {
    index: usize,
    session: Box<Session>,
    state: Option<ReplicaState>,
}

/// Spreads the first choice of replica across sessions.
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A read routed by its staleness bound (from [`Session::read_at`]): to the session's
/// replica link when a replica is fresh enough, to the session itself (the primary)
/// otherwise. Runs the same queries as the session ([`ReadContext`]),
/// each on its own; use [`Session::snapshot_at`] for several reads of one state.
#[derive(Debug)]
pub struct ReadAt<'s> {
    session: &'s mut Session,
    replica: Option<usize>,
}

impl<'s> ReadAt<'s> {
    /// The executor for one statement, for the stores.
    #[cfg(any(feature = "adk", feature = "items"))]
    pub(crate) async fn into_exec(self) -> Result<Exec<'s>> {
        self.session.exec().await
    }

    /// Which replica serves the read ([`Database::replicas`](crate::Database::replicas)
    /// index), or `None` for the primary.
    pub fn replica(&self) -> Option<usize> {
        self.replica
    }
}

impl Context for ReadAt<'_> {
    async fn exec(&mut self) -> Result<Exec<'_>> {
        self.session.exec().await
    }
}

impl ReadContext for ReadAt<'_> {}

impl Session {
    /// Routes a read by its staleness bound: to a replica of this session's database whose
    /// data is fresh enough (see [`Staleness`]), else to this session. The session keeps
    /// its link to that replica for later reads, so a pool's sessions each hold at most one
    /// replica connection besides their own. [`Staleness::Strong`], a database without
    /// replicas, and SQLite always read here.
    ///
    /// ```no_run
    /// # async fn demo(session: &mut session_pool::Session) -> session_pool::Result<()> {
    /// use std::time::Duration;
    /// use session_pool::prelude::*;
    /// use session_pool::Staleness;
    /// let mut read = session.read_at(Staleness::Max(Duration::from_secs(10))).await?;
    /// let rows = read.execute_sql("SELECT count(*) FROM orders", &[]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn read_at(&mut self, bound: Staleness) -> Result<ReadAt<'_>> {
        match self.route(bound).await? {
            Some(index) => {
                let live = self.parts.live.as_mut().expect("routed, so created");
                let link = live.replica.as_mut().expect("routed to it");
                Ok(ReadAt {
                    session: &mut link.session,
                    replica: Some(index),
                })
            }
            None => Ok(ReadAt {
                session: self,
                replica: None,
            }),
        }
    }

    /// A [`Snapshot`] routed as [`read_at`](Session::read_at) routes reads: on a replica
    /// fresh enough for `bound`, else on this session.
    pub async fn snapshot_at(&mut self, bound: Staleness) -> Result<Snapshot<'_>> {
        match self.route(bound).await? {
            Some(_) => {
                let live = self.parts.live.as_mut().expect("routed, so created");
                let link = live.replica.as_mut().expect("routed to it");
                link.session.snapshot().await
            }
            None => self.snapshot().await,
        }
    }

    /// A token at or after every commit this database's primary has made so far, in one
    /// round trip: take it after a write, and a read with [`Staleness::AtLeast`] that
    /// token sees the write (on a replica that has replayed it, or on the primary).
    /// [`Error::Unsupported`] on SQLite.
    pub async fn commit_token(&mut self) -> Result<CommitToken> {
        if self.database().dialect() != crate::Dialect::Postgres {
            return Err(Error::Unsupported(
                "commit tokens are PostgreSQL log positions; SQLite has no replicas".into(),
            ));
        }
        let lsn = self
            .execute_sql("SELECT pg_current_wal_lsn()::text AS lsn", &[])
            .await?
            .one()?
            .get::<String>("lsn")?;
        lsn.parse()
    }

    /// [`run_in_read_only_transaction`](Session::run_in_read_only_transaction), routed as
    /// [`read_at`](Session::read_at) routes reads. If the replica ends its connection
    /// meanwhile (a restart, or a hot standby's recovery conflict), `f`, being read-only,
    /// runs once more on a new route: another replica fresh enough, or this session.
    pub async fn run_in_read_only_transaction_at<T, E, F>(
        &mut self,
        bound: Staleness,
        mut f: F,
    ) -> std::result::Result<T, E>
    where
        F: AsyncFnMut(&mut Snapshot<'_>) -> std::result::Result<T, E>,
        E: From<Error> + 'static,
    {
        let mut rerouted = false;
        loop {
            let Some(replica) = self.route(bound).await.map_err(E::from)? else {
                return self.run_in_read_only_transaction(&mut f).await;
            };
            let live = self.parts.live.as_mut().expect("routed, so created");
            let link = live.replica.as_mut().expect("routed to it");
            let res = link.session.run_in_read_only_transaction(&mut f).await;
            if res.is_err() && link.session.is_broken() && !rerouted {
                rerouted = true;
                tracing::debug!(target: "session_pool::replica", replica,
                    "the replica ended its connection during a read-only transaction; \
                     running it again on a new route");
                continue;
            }
            return res;
        }
    }

    /// The replica a read with `bound` goes to (the link is then in place), or `None` for
    /// this session.
    async fn route(&mut self, bound: Staleness) -> Result<Option<usize>> {
        if bound == Staleness::Strong || self.database().replicas().is_empty() {
            return Ok(None);
        }
        let database = self.database().clone();
        let live = self.parts.live.as_mut().ok_or(Error::NotCreated)?;
        let mut tried = None;
        if let Some(link) = &mut live.replica {
            tried = Some(link.index);
            if link.session.is_broken() {
                live.replica = None;
            } else {
                match link.state.and_then(|s| s.serves(bound)) {
                    Some(true) => return Ok(Some(link.index)),
                    _ => match check(&mut link.session).await {
                        Ok(state) => {
                            link.state = Some(state);
                            if state.serves(bound) == Some(true) {
                                return Ok(Some(link.index));
                            }
                        }
                        Err(e) => {
                            tracing::debug!(target: "session_pool::replica", replica = link.index,
                                error = %e, "replica check failed; dropping the link");
                            database.replica_failed(link.index);
                            live.replica = None;
                        }
                    },
                }
            }
        }
        let replicas = database.replicas();
        let start = NEXT.fetch_add(1, Relaxed);
        for k in 0..replicas.len() {
            let i = (start + k) % replicas.len();
            if Some(i) == tried || !database.replica_up(i) {
                continue;
            }
            let mut session = replicas[i].session();
            let state = match session.create().await {
                Ok(()) => check(&mut session).await,
                Err(e) => Err(e),
            };
            match state {
                Ok(state) => {
                    let serves = state.serves(bound) == Some(true);
                    live.replica = Some(Link {
                        index: i,
                        session: Box::new(session),
                        state: Some(state),
                    });
                    if serves {
                        return Ok(Some(i));
                    }
                }
                Err(e) => {
                    tracing::debug!(target: "session_pool::replica", replica = i, error = %e,
                        "replica unreachable; skipped for a second");
                    database.replica_failed(i);
                }
            }
        }
        Ok(None)
    }
}

/// How far behind the replica is, in one round trip on it.
async fn check(session: &mut Session) -> Result<ReplicaState> {
    let at = std::time::Instant::now();
    let rs = session
        .execute_sql(
            "SELECT pg_is_in_recovery() AS standby, \
             COALESCE(pg_last_wal_replay_lsn(), '0/0')::text AS replayed, \
             COALESCE(pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn(), false) AS caught_up, \
             COALESCE(EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp()), 1e9)::float8 AS since_replay, \
             COALESCE((SELECT EXTRACT(EPOCH FROM clock_timestamp() - last_msg_receipt_time) \
                       FROM pg_stat_wal_receiver), 1e9)::float8 AS since_heard",
            &[],
        )
        .await?;
    let row = rs.one()?;
    let in_recovery = row.get::<bool>("standby")?;
    let replayed: CommitToken = row.get::<String>("replayed")?.parse()?;
    // Caught up with what it received: as fresh as its last word from the primary.
    // Otherwise: as old as the last commit it replayed.
    let secs = if row.get::<bool>("caught_up")? {
        row.get::<f64>("since_heard")?
    } else {
        row.get::<f64>("since_replay")?
    };
    Ok(ReplicaState {
        staleness: Duration::try_from_secs_f64(secs.max(0.0)).unwrap_or(Duration::MAX),
        replayed: replayed.0,
        in_recovery,
        at,
    })
}

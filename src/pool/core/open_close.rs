//! Filling a pool when it is bound, clearing it and closing it.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use super::Core;
use crate::database::Database;
use crate::error::Result;
use crate::pool::queue::Grant;
use crate::pool::slot::Slot;
use crate::session::Session;

impl Core {
    /// Reserves the places to fill, for creating sessions up front: every free place (up
    /// to `max_open`) where the pool fills, enough for `min_idle` idle sessions otherwise.
    pub(crate) fn reserve_missing(self: &Arc<Self>) -> Vec<Slot<'_, Core>> {
        let st = self.state.lock();
        if self.gate.is_closed() {
            return Vec::new();
        }
        let free = self.rules.max_open.saturating_sub(self.open.load(Relaxed));
        let n = if self.rules.fill {
            free
        } else {
            self.rules
                .life
                .min_idle
                .saturating_sub(self.idle.len())
                .min(free)
        };
        self.open.fetch_add(n, Relaxed);
        drop(st);
        (0..n).map(|_| Slot::new(self, None)).collect()
    }

    /// Closes the pool: waiters get [`Error::Closed`](crate::Error::Closed); returns the idle
    /// sessions to delete.
    pub(crate) fn close(&self) -> Vec<Session> {
        let mut st = self.state.lock();
        self.gate.close();
        let mut wakers = Vec::with_capacity(st.waiters.len());
        while let Ok(w) = st.grant_first(Grant::Closed, &self.gate) {
            wakers.extend(w);
        }
        let drained = self.drain_idle(&mut st);
        drop(st);
        for w in wakers {
            w.wake();
        }
        self.closed_notify.notify_waiters();
        drained
    }

    /// Deletes sessions the pool no longer holds, concurrently.
    pub(crate) async fn retire_all(&self, sessions: Vec<Session>) {
        let n = sessions.len() as u64;
        futures_util::future::join_all(sessions.into_iter().map(Session::retire)).await;
        self.counters.add_deleted(n);
    }

    /// `clear`: deletes every idle session.
    pub(crate) async fn clear(&self) {
        let idle = self.drain_idle(&mut self.state.lock());
        self.retire_all(idle).await;
    }

    /// `close`: closes, then deletes the idle sessions.
    pub(crate) async fn close_and_retire(&self) {
        let idle = self.close();
        self.retire_all(idle).await;
    }

    /// `bind`: binds, then creates the missing sessions (all of them for strategies that
    /// fill, `min_idle` for the others), `create_step` at a time. All or nothing: if one
    /// cannot be created, those that were are closed again, so a failed start holds no
    /// connections that other processes may need; the first error is returned.
    pub(crate) async fn bind_and_fill(self: &Arc<Self>, database: &Database) -> Result<()> {
        self.bind(database)?;
        let _filling = self.fill_lock.lock().await;
        let slots = self.reserve_missing();
        let mut created = Vec::with_capacity(slots.len());
        for chunk in chunks(slots, self.rules.life.create_step) {
            created.extend(
                futures_util::future::join_all(
                    chunk
                        .into_iter()
                        .map(|mut slot| async move { slot.ensure_session().await.map(|()| slot) }),
                )
                .await,
            );
        }
        let (made, failed): (Vec<_>, Vec<_>) = created.into_iter().partition(Result::is_ok);
        match failed.into_iter().find_map(Result::err) {
            None => {
                made.into_iter().flatten().for_each(Slot::checkin);
                self.start_ticking();
                Ok(())
            }
            Some(e) => {
                let n = made.len();
                let sessions: Vec<Session> = made
                    .into_iter()
                    .flatten()
                    .filter_map(Slot::release)
                    .collect();
                self.retire_all(sessions).await;
                tracing::warn!(target: "session_pool::pool", error = %e, closed = n,
                    "could not create every session of the pool; closed those that were");
                Err(e)
            }
        }
    }
}

/// `items` in groups of `step` (one group when `step` is 0).
pub(crate) fn chunks<T>(items: Vec<T>, step: usize) -> Vec<Vec<T>> {
    if step == 0 || items.len() <= step {
        return vec![items];
    }
    let mut out = Vec::new();
    let mut items = items.into_iter().peekable();
    while items.peek().is_some() {
        out.push(items.by_ref().take(step).collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::chunks;

    #[test]
    fn chunks_split_in_steps() {
        assert_eq!(
            chunks(vec![1, 2, 3, 4, 5], 2),
            vec![vec![1, 2], vec![3, 4], vec![5]]
        );
        assert_eq!(chunks(vec![1, 2, 3], 0), vec![vec![1, 2, 3]]);
        assert_eq!(chunks(Vec::<u8>::new(), 2), vec![Vec::<u8>::new()]);
    }
}

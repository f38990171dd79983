//! Signals to PostgreSQL backends (`pg_cancel_backend`, `pg_terminate_backend`), sent
//! from a connection of their own, since sqlx has no cancel request.
//!
//! A burst of them (a wave of request timeouts cutting statements off at once) would open
//! a connection each, on a server likely busy already: past `max_connections` or a role's
//! connection limit the cancels themselves are refused, and the statements run on with
//! their locks; through a transaction pooler each would take a server connection. So they
//! gather, a queue per host: whoever's turn it is sends every signal waiting for that host
//! in one statement (one per function), from one connection; the others find theirs sent
//! when their turn comes.

use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

/// What sending a signal came to: whether it reached a backend, or why it failed.
type Outcome = OnceLock<Result<bool, String>>;

/// One signal waiting to be sent.
struct Waiting {
    function: &'static str,
    /// A query for the pids to signal.
    pids: String,
    outcome: Arc<Outcome>,
}

/// The signals of one database waiting to be sent, a queue per host, so that a host
/// that hangs holds up no other's.
#[derive(Default)]
pub(crate) struct Signals {
    hosts: Mutex<Vec<Arc<Queue>>>,
}

/// One host's signals waiting to be sent, and whose turn it is to send them.
pub(crate) struct Queue {
    /// Which of the database's hosts.
    host: usize,
    waiting: Mutex<Vec<Waiting>>,
    turn: tokio::sync::Mutex<()>,
}

/// One batch, as one statement to one host.
pub(crate) struct Batch {
    /// Which of the database's hosts.
    pub(crate) host: usize,
    /// The statement: `true` if any of the pids was signalled.
    pub(crate) sql: String,
}

impl Signals {
    /// Host `host`'s queue.
    pub(crate) fn queue(&self, host: usize) -> Arc<Queue> {
        let mut hosts = self.hosts.lock();
        let from = hosts.len();
        if from <= host {
            hosts.extend((from..=host).map(|host| {
                Arc::new(Queue {
                    host,
                    waiting: Mutex::default(),
                    turn: tokio::sync::Mutex::default(),
                })
            }));
        }
        hosts[host].clone()
    }
}

impl Queue {
    /// Sends `function` to the backends `pids` (a query) names on this queue's host, with
    /// whatever else is waiting for it: `send` runs each batch. Returns whether its batch
    /// reached any backend.
    pub(crate) async fn send<F, Fut>(
        &self,
        function: &'static str,
        pids: String,
        send: F,
    ) -> Result<bool, String>
    where
        F: Fn(Batch) -> Fut,
        Fut: std::future::Future<Output = Result<bool, String>>,
    {
        let outcome = Arc::new(Outcome::new());
        self.waiting.lock().push(Waiting {
            function,
            pids,
            outcome: outcome.clone(),
        });
        let _unsent = Unsent {
            queue: self,
            outcome: &outcome,
        };
        let _turn = self.turn.lock().await;
        if let Some(done) = outcome.get() {
            return done.clone();
        }
        let mut batch = Sending(std::mem::take(&mut *self.waiting.lock()));
        batch.0.sort_by_key(|w| w.function);
        let mut rest = &batch.0[..];
        while let Some(first) = rest.first() {
            let n = rest
                .iter()
                .take_while(|w| w.function == first.function)
                .count();
            let (group, after) = rest.split_at(n);
            let union = group
                .iter()
                .map(|w| format!("({})", w.pids))
                .collect::<Vec<_>>()
                .join(" UNION ALL ");
            let sql = format!(
                "SELECT coalesce(bool_or({}(w.pid)), false) FROM ({union}) AS w",
                first.function
            );
            let res = send(Batch {
                host: self.host,
                sql,
            })
            .await;
            for w in group {
                let _ = w.outcome.set(res.clone());
            }
            rest = after;
        }
        outcome
            .get()
            .cloned()
            .unwrap_or_else(|| Err("the signal was not sent".into()))
    }
}

/// A waiter's signal, taken out of the queue if its future is dropped before it was sent,
/// so that no later batch signals a backend that runs something else by then.
struct Unsent<'a> {
    queue: &'a Queue,
    outcome: &'a Arc<Outcome>,
}

impl Drop for Unsent<'_> {
    fn drop(&mut self) {
        if self.outcome.get().is_none() {
            self.queue
                .waiting
                .lock()
                .retain(|w| !Arc::ptr_eq(&w.outcome, self.outcome));
        }
    }
}

/// A batch being sent: if the sender's future is dropped half-way, the signals it had not
/// sent fail rather than leave their waiters with no outcome.
struct Sending(Vec<Waiting>);

impl Drop for Sending {
    fn drop(&mut self) {
        for w in &self.0 {
            let _ = w
                .outcome
                .set(Err("the connection sending it was dropped".into()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waiting_signals_go_in_one_statement_per_host_and_function() {
        let signals = Arc::new(Signals::default());
        let sent = Arc::new(Mutex::new(Vec::new()));
        // Holding both hosts' turns, so that the four gather behind them.
        let (q0, q1) = (signals.queue(0), signals.queue(1));
        let (t0, t1) = (q0.turn.lock().await, q1.turn.lock().await);
        let mut tasks = Vec::new();
        for (function, host, pid) in [
            ("pg_cancel_backend", 0, 1),
            ("pg_terminate_backend", 0, 2),
            ("pg_cancel_backend", 0, 3),
            ("pg_cancel_backend", 1, 4),
        ] {
            let (signals, sent) = (signals.clone(), sent.clone());
            tasks.push(tokio::spawn(async move {
                signals
                    .queue(host)
                    .send(function, format!("SELECT {pid}"), |b| {
                        sent.lock().push((b.host, b.sql));
                        async { Ok(true) }
                    })
                    .await
            }));
        }
        while q0.waiting.lock().len() + q1.waiting.lock().len() < 4 {
            tokio::task::yield_now().await;
        }
        drop((t0, t1));
        for t in tasks {
            assert_eq!(t.await.unwrap(), Ok(true));
        }
        let sent = sent.lock().clone();
        assert_eq!(sent.len(), 3, "{sent:?}");
        assert!(
            sent.contains(&(
                0,
                "SELECT coalesce(bool_or(pg_cancel_backend(w.pid)), false) FROM \
             ((SELECT 1) UNION ALL (SELECT 3)) AS w"
                    .to_owned()
            ))
        );
        assert!(
            sent.iter()
                .any(|(host, sql)| *host == 1 && sql.contains("(SELECT 4)"))
        );
        assert!(q0.waiting.lock().is_empty() && q1.waiting.lock().is_empty());
    }

    #[tokio::test]
    async fn a_host_that_hangs_holds_up_no_other() {
        let signals = Signals::default();
        let q0 = signals.queue(0);
        let _hung = q0.turn.lock().await;
        let q1 = signals.queue(1);
        let other = q1.send("pg_cancel_backend", "SELECT 1".into(), |_| async {
            Ok::<bool, String>(true)
        });
        let res = tokio::time::timeout(std::time::Duration::from_secs(5), other).await;
        assert_eq!(res, Ok(Ok(true)));
    }

    #[tokio::test]
    async fn a_signal_dropped_before_its_turn_is_never_sent() {
        let signals = Signals::default();
        let q0 = signals.queue(0);
        let turn = q0.turn.lock().await;
        let waiter = q0.send("pg_cancel_backend", "SELECT 1".into(), |_| async {
            Ok::<bool, String>(true)
        });
        let dropped = tokio::time::timeout(std::time::Duration::from_millis(10), waiter).await;
        assert!(dropped.is_err());
        assert!(q0.waiting.lock().is_empty(), "left to a later batch");
        drop(turn);
    }
}

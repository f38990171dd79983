//! `run_in_transaction`: run a function in a transaction, retrying when it is aborted.

use std::any::Any;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::Transaction;
use crate::error::Error;
use crate::mutation::{Mutate, Mutation};
use crate::session::Session;

/// How [`Session::run_in_transaction_with`] retries.
///
/// The policy: an attempt that ends in [`Error::Aborted`] (from the function, from `BEGIN`
/// or from `COMMIT`) is rolled back, then retried after a pause. Pauses grow from
/// `initial_backoff`, doubling each time up to `max_backoff`; each pause is drawn uniformly
/// from the upper half of the current step (`[b/2, b]`), so that writers that collided do not
/// collide again in lock-step. No pause runs past the deadline; once `timeout` has passed
/// since the first attempt, the next abort ends the loop with [`Error::DeadlineExceeded`].
/// Any other error is rolled back and returned at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
#[non_exhaustive]
pub struct TransactionOptions {
    /// Total time to keep retrying (Spanner's default: 30 s).
    pub timeout: Duration,
    /// First pause after an abort (default 5 ms).
    pub initial_backoff: Duration,
    /// Longest pause (default 1 s).
    pub max_backoff: Duration,
}

impl Default for TransactionOptions {
    fn default() -> Self {
        TransactionOptions {
            timeout: Duration::from_secs(30),
            initial_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_secs(1),
        }
    }
}

impl TransactionOptions {
    /// Sets the retry deadline.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the first and longest pause.
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max.max(initial);
        self
    }
}

/// What [`Session::run_in_transaction_detailed`] returns: the function's value and how the
/// commit went.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Committed<T> {
    /// The function's value.
    pub value: T,
    /// When the commit was confirmed (client clock).
    pub commit_timestamp: DateTime<Utc>,
    /// How many attempts it took (1 when nothing aborted).
    pub attempts: u32,
    /// On a database with read replicas, a token at or after this commit: reads with
    /// [`Staleness::AtLeast`](crate::Staleness::AtLeast) it see the transaction's writes.
    /// Taken in one more round trip after the commit, only when the database has replicas;
    /// `None` otherwise, or if that round trip failed (the commit stands).
    pub commit_token: Option<crate::CommitToken>,
}

/// A pause drawn from `[step/2, step]`.
fn jittered(step: Duration) -> Duration {
    let half = step / 2;
    half + half.mul_f64(fastrand::f64())
}

/// How an attempt ended badly: aborted (worth a retry, the abort kept for the deadline's
/// error) or not.
enum Failed<E> {
    Aborted(Error),
    Other(E),
}

/// True when the application's error is this crate's [`Error::Aborted`] (for example
/// [`Error::aborted`]), whatever `E` is.
fn is_crate_abort<E: 'static>(err: &E) -> bool {
    (err as &dyn Any)
        .downcast_ref::<Error>()
        .is_some_and(Error::is_aborted)
}

/// One attempt: begin, buffer `mutations`, run `f`, commit; roll back if `f` fails.
async fn attempt<T, E, F>(
    session: &mut Session,
    mutations: &[Mutation],
    f: &mut F,
) -> std::result::Result<(T, DateTime<Utc>), Failed<E>>
where
    F: AsyncFnMut(&mut Transaction<'_>) -> std::result::Result<T, E>,
    E: From<Error> + 'static,
{
    let crate_failure = |e: Error| {
        if e.is_aborted() {
            Failed::Aborted(e)
        } else {
            Failed::Other(E::from(e))
        }
    };
    let mut tx = Transaction::begin(session).await.map_err(crate_failure)?;
    tx.meta.last_abort = None;
    for m in mutations {
        tx.buffer(m.clone());
    }
    match f(&mut tx).await {
        Ok(value) => Ok((value, tx.commit().await.map_err(crate_failure)?)),
        Err(err) => {
            // An abort the database reported during the attempt makes it retryable, even
            // when the application's own error type carried it out.
            let abort = tx.meta.last_abort.take();
            // Whether a lost connection ended the attempt is what `f`'s statements met, not
            // what the rollback after its error meets.
            let lost = tx.meta.lost_before_commit;
            // The function's error is the one that matters; a failed rollback is already
            // recorded on the session (a lost connection marks it broken).
            let _ = tx.rollback().await;
            session.set_lost_before_commit(lost);
            match abort {
                Some((code, message)) => Err(Failed::Aborted(Error::Aborted {
                    code,
                    message,
                    source: None,
                })),
                None if is_crate_abort(&err) => Err(Failed::Aborted(Error::aborted(
                    "the transaction function asked for a retry",
                ))),
                None => Err(Failed::Other(err)),
            }
        }
    }
}

/// The commit token for a committed transaction, when the database has replicas to read
/// it from.
pub(crate) async fn token_after_commit(session: &mut Session) -> Option<crate::CommitToken> {
    if session.database().replicas().is_empty() {
        return None;
    }
    #[cfg(feature = "postgres")]
    match session.commit_token().await {
        Ok(token) => return Some(token),
        Err(e) => {
            tracing::debug!(target: "session_pool::transaction", error = %e,
                "committed, but no commit token");
        }
    }
    None
}

/// The retry schedule after aborts: jittered exponential pauses until the deadline.
pub(crate) struct Backoff {
    options: TransactionOptions,
    deadline: Instant,
    step: Duration,
    /// Attempts so far.
    pub(crate) attempts: u32,
}

impl Backoff {
    pub(crate) fn new(options: TransactionOptions) -> Backoff {
        Backoff {
            deadline: Instant::now() + options.timeout,
            step: options.initial_backoff,
            attempts: 0,
            options,
        }
    }

    /// After an aborted attempt: waits before the next one, or gives up with
    /// [`Error::DeadlineExceeded`] when the deadline has passed.
    pub(crate) async fn after_abort(&mut self, abort: Error) -> Result<(), Error> {
        let now = Instant::now();
        if now >= self.deadline {
            tracing::warn!(target: "session_pool::transaction", attempts = self.attempts,
                timeout = ?self.options.timeout, "transaction deadline exceeded");
            return Err(Error::DeadlineExceeded {
                timeout: self.options.timeout,
                attempts: self.attempts,
                last: Box::new(abort),
            });
        }
        let pause = jittered(self.step).min(self.deadline - now);
        tracing::debug!(target: "session_pool::transaction", attempts = self.attempts, ?pause,
            error = %abort, "transaction aborted; retrying");
        tokio::time::sleep(pause).await;
        self.step = (self.step * 2).min(self.options.max_backoff);
        Ok(())
    }
}

/// The retry loop. `mutations` are buffered at the start of every attempt (a batch's),
/// so that a batch needs no closure that borrows them: such a closure's future is not
/// `Send` (rust-lang/rust#110338), and `Batch::commit` could not run in `tokio::spawn`.
pub(crate) async fn run<T, E, F>(
    session: &mut Session,
    options: TransactionOptions,
    mutations: &[Mutation],
    f: F,
) -> std::result::Result<Committed<T>, E>
where
    F: AsyncFnMut(&mut Transaction<'_>) -> std::result::Result<T, E>,
    E: From<Error> + 'static,
{
    run_counted(session, options, mutations, f, &mut 0).await
}

/// [`run`], adding the attempts it made to `attempts` however it ends (a pool that runs
/// the function again on another session counts them all).
pub(crate) async fn run_counted<T, E, F>(
    session: &mut Session,
    options: TransactionOptions,
    mutations: &[Mutation],
    mut f: F,
    attempts: &mut u32,
) -> std::result::Result<Committed<T>, E>
where
    F: AsyncFnMut(&mut Transaction<'_>) -> std::result::Result<T, E>,
    E: From<Error> + 'static,
{
    let mut backoff = Backoff::new(options);
    loop {
        backoff.attempts += 1;
        *attempts += 1;
        match attempt(session, mutations, &mut f).await {
            Ok((value, commit_timestamp)) => {
                let attempts = *attempts;
                if attempts > 1 {
                    tracing::debug!(target: "session_pool::transaction", attempts,
                        "transaction committed after retries");
                }
                return Ok(Committed {
                    value,
                    commit_timestamp,
                    attempts,
                    commit_token: None,
                });
            }
            Err(Failed::Aborted(abort)) => backoff.after_abort(abort).await.map_err(E::from)?,
            Err(Failed::Other(err)) => return Err(err),
        }
    }
}

impl Session {
    /// Runs `f` in a read-write transaction and commits, retrying on abort with the default
    /// [`TransactionOptions`] (30 s deadline). Returns `f`'s value.
    ///
    /// `f` may run several times: keep side effects outside the database idempotent. `f`
    /// returns its own error type `E`, any type this crate's [`Error`] converts into (`?`
    /// works on every call in it). An attempt is retried when the database aborted one of
    /// its statements, or its commit, even if `f` turned that error into its own; or when
    /// `f` returns [`Error::aborted`] (with `E = Error`). Any other error rolls back and is
    /// returned at once.
    ///
    /// Inside `tokio::spawn`, write the function as an `async move |tx| …` closure that owns
    /// what it uses (clone it first): a closure that borrows from its surroundings trips a
    /// rustc limitation ("implementation of `Send` is not general enough", rust-lang/rust#110338).
    ///
    /// ```no_run
    /// # async fn demo(session: &mut session_pool::Session) -> session_pool::Result<()> {
    /// use session_pool::params;
    /// use session_pool::prelude::*;
    /// let balance: i64 = session
    ///     .run_in_transaction(async |tx| {
    ///         let row = tx.execute_sql("SELECT balance FROM accounts WHERE id = $1", &params![1]).await?.one()?;
    ///         let balance = row.get::<i64>(0)? + 10;
    ///         tx.execute_update("UPDATE accounts SET balance = $1 WHERE id = $2", &params![balance, 1]).await?;
    ///         Ok::<_, session_pool::Error>(balance)
    ///     })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn run_in_transaction<T, E, F>(&mut self, f: F) -> std::result::Result<T, E>
    where
        F: AsyncFnMut(&mut Transaction<'_>) -> std::result::Result<T, E>,
        E: From<Error> + 'static,
    {
        run(self, TransactionOptions::default(), &[], f)
            .await
            .map(|c| c.value)
    }

    /// [`run_in_transaction`](Session::run_in_transaction) with explicit retry options.
    pub async fn run_in_transaction_with<T, E, F>(
        &mut self,
        options: TransactionOptions,
        f: F,
    ) -> std::result::Result<T, E>
    where
        F: AsyncFnMut(&mut Transaction<'_>) -> std::result::Result<T, E>,
        E: From<Error> + 'static,
    {
        run(self, options, &[], f).await.map(|c| c.value)
    }

    /// [`run_in_transaction_with`](Session::run_in_transaction_with), also returning the
    /// commit timestamp, the number of attempts and, on a database with read replicas, a
    /// [`CommitToken`](crate::CommitToken) for reading the writes back.
    pub async fn run_in_transaction_detailed<T, E, F>(
        &mut self,
        options: TransactionOptions,
        f: F,
    ) -> std::result::Result<Committed<T>, E>
    where
        F: AsyncFnMut(&mut Transaction<'_>) -> std::result::Result<T, E>,
        E: From<Error> + 'static,
    {
        let mut committed = run(self, options, &[], f).await?;
        committed.commit_token = token_after_commit(self).await;
        Ok(committed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_in_the_upper_half() {
        let step = Duration::from_millis(100);
        for _ in 0..1000 {
            let d = jittered(step);
            assert!(d >= step / 2 && d <= step, "{d:?}");
        }
    }
}

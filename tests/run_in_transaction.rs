//! run_in_transaction: real aborts retried to an exact count; other errors and deadlines.
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use session_pool::prelude::*;
use session_pool::{Database, Error, TransactionOptions, params};

const TASKS: i64 = 16;
const INCREMENTS: i64 = 50;

/// Creates table `t` with one counter row (id 1, n 0); returns the session that did it.
async fn counter_table(db: &Database, t: &str) -> session_pool::Session {
    let mut s = db.session();
    s.create().await.unwrap();
    s.execute_update(
        &format!("CREATE TABLE {t} (id BIGINT PRIMARY KEY, n BIGINT NOT NULL)"),
        &[],
    )
    .await
    .unwrap();
    s.execute_update(&format!("INSERT INTO {t} VALUES (1, 0)"), &[])
        .await
        .unwrap();
    s
}

/// Runs `work` on `tasks` tasks at once, each on a session of its own; their results.
/// The sessions are all created first, so that the tasks overlap however slow a
/// connection is to set up (TLS).
async fn on_sessions<T, F, Fut>(db: &Database, tasks: i64, work: F) -> Vec<T>
where
    F: Fn(session_pool::Session) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let mut sessions = Vec::new();
    for _ in 0..tasks {
        let mut s = db.session();
        s.create().await.unwrap();
        sessions.push(s);
    }
    let handles: Vec<_> = sessions
        .into_iter()
        .map(|s| tokio::spawn(work(s)))
        .collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

/// The counter of table `t`.
async fn counter(s: &mut session_pool::Session, t: &str) -> i64 {
    s.execute_sql(&format!("SELECT n FROM {t} WHERE id = 1"), &[])
        .await
        .unwrap()
        .deserialize_one()
        .unwrap()
}

/// 16 tasks × 50 read-modify-write increments of one row, each in run_in_transaction.
async fn concurrent_increments(db: Database) {
    let t = common::unique("ctr");
    let mut s = counter_table(&db, &t).await;

    let attempts = Arc::new(AtomicU32::new(0));
    let calls = Arc::new(AtomicU32::new(0));
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let db = db.clone();
        let t = t.clone();
        let attempts = attempts.clone();
        let calls = calls.clone();
        tasks.push(tokio::spawn(async move {
            let mut s = db.session();
            s.create().await.unwrap();
            for _ in 0..INCREMENTS {
                let (t, calls) = (t.clone(), calls.clone());
                let options = TransactionOptions::default();
                let done = s
                    .run_in_transaction_detailed(options, async move |tx| {
                        calls.fetch_add(1, Ordering::Relaxed);
                        let row = tx
                            .execute_sql(&format!("SELECT n FROM {t} WHERE id = 1"), &[])
                            .await?
                            .one()?;
                        let n: i64 = row.get("n")?;
                        tokio::task::yield_now().await;
                        tx.execute_update(
                            &format!("UPDATE {t} SET n = $1 WHERE id = 1"),
                            &params![n + 1],
                        )
                        .await?;
                        Ok::<_, Error>(())
                    })
                    .await
                    .unwrap();
                attempts.fetch_add(done.attempts, Ordering::Relaxed);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let n: i64 = s
        .execute_sql(&format!("SELECT n FROM {t} WHERE id = 1"), &[])
        .await
        .unwrap()
        .one()
        .unwrap()
        .get("n")
        .unwrap();
    assert_eq!(n, TASKS * INCREMENTS, "no increment lost or doubled");
    let attempts = i64::from(attempts.load(Ordering::Relaxed));
    let calls = i64::from(calls.load(Ordering::Relaxed));
    assert!(
        attempts > TASKS * INCREMENTS,
        "at least one abort was retried ({attempts} attempts)"
    );
    // The function runs once per attempt that got past BEGIN (SQLite aborts at BEGIN).
    assert!(
        calls >= TASKS * INCREMENTS && calls <= attempts,
        "{calls} calls, {attempts} attempts"
    );
    eprintln!(
        "{:?}: {attempts} attempts, {calls} calls for {} commits",
        db.dialect(),
        TASKS * INCREMENTS
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_serializable_aborts_are_retried() {
    let Some(db) = common::postgres().await else {
        return;
    };
    concurrent_increments(db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_busy_is_retried() {
    // No busy wait inside SQLite: every lock conflict surfaces as SQLITE_BUSY.
    let (db, _dir) = common::sqlite_with(|o| o.sqlite_busy_timeout(Duration::ZERO)).await;
    concurrent_increments(db).await;
}

async fn other_errors_roll_back_without_retry(db: Database) {
    let t = common::unique("rb");
    let mut s = db.session();
    s.create().await.unwrap();
    s.execute_update(&format!("CREATE TABLE {t} (id BIGINT PRIMARY KEY)"), &[])
        .await
        .unwrap();

    let calls = AtomicU32::new(0);
    let res: Result<(), Error> = s
        .run_in_transaction(async |tx| {
            calls.fetch_add(1, Ordering::Relaxed);
            tx.execute_update(&format!("INSERT INTO {t} VALUES (1)"), &[])
                .await?;
            tx.insert(&t, &["id"], vec![params![2]])?;
            Err(Error::application(std::io::Error::other(
                "the application changed its mind",
            )))
        })
        .await;
    assert!(matches!(res, Err(Error::Application(_))), "{res:?}");
    assert_eq!(calls.load(Ordering::Relaxed), 1, "not retried");

    // A database error (duplicate key) is not retried either.
    let calls = AtomicU32::new(0);
    let res = s
        .run_in_transaction(async |tx| {
            calls.fetch_add(1, Ordering::Relaxed);
            tx.execute_update(&format!("INSERT INTO {t} VALUES (5), (5)"), &[])
                .await
        })
        .await;
    assert!(matches!(res, Err(Error::Database { .. })), "{res:?}");
    assert_eq!(calls.load(Ordering::Relaxed), 1);

    let n: i64 = s
        .execute_sql(&format!("SELECT count(*) AS n FROM {t}"), &[])
        .await
        .unwrap()
        .one()
        .unwrap()
        .get("n")
        .unwrap();
    assert_eq!(n, 0, "nothing written");

    // The value of the function comes back.
    let v = s
        .run_in_transaction(async |_tx| Ok::<_, Error>(42))
        .await
        .unwrap();
    assert_eq!(v, 42);
}

async fn always_aborting_function_hits_the_deadline(db: Database) {
    let mut s = db.session();
    s.create().await.unwrap();
    let calls = AtomicU32::new(0);
    let timeout = Duration::from_millis(300);
    let options = TransactionOptions::default()
        .timeout(timeout)
        .backoff(Duration::from_millis(5), Duration::from_millis(40));
    let res: Result<(), Error> = s
        .run_in_transaction_with(options, async |_tx| {
            calls.fetch_add(1, Ordering::Relaxed);
            Err(Error::aborted("always conflicting"))
        })
        .await;
    match res {
        Err(Error::DeadlineExceeded {
            timeout: t,
            attempts,
            last,
        }) => {
            assert_eq!(t, timeout);
            assert_eq!(attempts, calls.load(Ordering::Relaxed));
            assert!(attempts > 1, "it retried before giving up");
            assert!(last.is_aborted());
        }
        other => panic!("expected DeadlineExceeded, got {other:?}"),
    }
    // The session is fine afterwards.
    s.ping().await.unwrap();
}

on_both!(
    other_errors_roll_back_without_retry,
    always_aborting_function_hits_the_deadline
);

/// An application error type, into which the crate's errors convert.
#[derive(Debug)]
enum AppError {
    Db(Error),
}

impl From<Error> for AppError {
    fn from(e: Error) -> Self {
        AppError::Db(e)
    }
}

/// Serialization failures raised by statements inside the function reach it as the
/// application's own error type; they are still retried, and nothing is lost or doubled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborts_in_an_application_error_type_are_retried() {
    let Some(db) = common::postgres().await else {
        return;
    };
    let t = common::unique("app_err");
    let mut s = counter_table(&db, &t).await;
    let (tasks, increments) = (8, 25);
    let attempts: u32 = on_sessions(&db, tasks, |mut s| {
        let t = t.clone();
        async move {
            let mut attempts = 0;
            for _ in 0..increments {
                let t = t.clone();
                let done = s
                    .run_in_transaction_detailed(
                        TransactionOptions::default(),
                        async move |tx| -> Result<(), AppError> {
                            let n: i64 = tx
                                .execute_sql(&format!("SELECT n FROM {t} WHERE id = 1"), &[])
                                .await?
                                .deserialize_one()?;
                            tokio::task::yield_now().await;
                            tx.execute_update(
                                &format!("UPDATE {t} SET n = $1 WHERE id = 1"),
                                &params![n + 1],
                            )
                            .await?;
                            Ok(())
                        },
                    )
                    .await
                    .unwrap_or_else(|AppError::Db(e)| panic!("not retried: {e}"));
                attempts += done.attempts;
            }
            attempts
        }
    })
    .await
    .into_iter()
    .sum();
    let n = counter(&mut s, &t).await;
    assert_eq!(n, tasks * increments, "no increment lost or doubled");
    assert!(
        i64::from(attempts) > tasks * increments,
        "some attempts were aborted and retried ({attempts})"
    );
}

/// A function that handles a serialization failure itself and returns `Ok`: PostgreSQL
/// has aborted its transaction all the same, and the COMMIT would roll it back. The
/// commit reports the abort, so the attempt is retried and no increment is lost (before,
/// the rolled-back attempts passed for commits).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abort_the_function_swallowed_is_still_retried() {
    let Some(db) = common::postgres().await else {
        return;
    };
    let t = common::unique("swallowed");
    let mut s = counter_table(&db, &t).await;
    let (tasks, increments) = (4, 20);
    let swallowed: u32 = on_sessions(&db, tasks, |mut s| {
        let t = t.clone();
        async move {
            let swallowed = Arc::new(AtomicU32::new(0));
            for _ in 0..increments {
                let (t, swallowed) = (t.clone(), swallowed.clone());
                s.run_in_transaction(async move |tx| {
                    let n: i64 = tx
                        .execute_sql(&format!("SELECT n FROM {t} WHERE id = 1"), &[])
                        .await?
                        .deserialize_one()?;
                    tokio::task::yield_now().await;
                    let update = tx
                        .execute_update(
                            &format!("UPDATE {t} SET n = $1 WHERE id = 1"),
                            &params![n + 1],
                        )
                        .await;
                    // Handled here, and not passed on.
                    if update.is_err() {
                        swallowed.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok::<_, Error>(())
                })
                .await
                .unwrap();
            }
            swallowed.load(Ordering::Relaxed)
        }
    })
    .await
    .into_iter()
    .sum();
    let n = counter(&mut s, &t).await;
    assert!(swallowed > 0, "no update was aborted: nothing was tested");
    assert_eq!(n, tasks * increments, "no increment lost");
}

//! A transaction-mode pooler that passes statement names through, left undeclared: Debian's
//! PgBouncer 1.18 (`scripts/test` starts it, `default_pool_size = 4`), as PgBouncer before
//! 1.21, 1.21–1.23 with their default `max_prepared_statements = 0`, and PgCat without its
//! statement cache behave. A session's statements prepared on one server connection are
//! refused on another; the session finds out, the database goes over to the pooler mode,
//! and the refused statement runs again (in a transaction, the abort is retryable). Before,
//! every such failure was an error, and every session that replaced a broken one failed
//! the same way, until the URL said `?pgbouncer=true`.
mod common;

use futures_util::StreamExt;
use session_pool::prelude::*;
use session_pool::{Database, Error, FixedSizePool, Session, SessionOptions, params};

use common::unique;

const SELECT: &str = "SELECT $1::int8 + 1 AS n";

/// One test at a time: each begins with server connections that hold no client's
/// prepared statements, which another test's sessions would leave there.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The pooler's URL in `var`, with this test's turn (see [`SERIAL`]) and fresh server
/// connections.
async fn pooler(var: &str) -> Option<(String, tokio::sync::MutexGuard<'static, ()>)> {
    let url = common::pgbouncer(var)?;
    let serial = SERIAL.lock().await;
    fresh_backends(&url).await;
    Some((url, serial))
}

/// Every server connection of the pooler's entry at `url` (four) cleared of prepared
/// statements, as a pooler's new server connections are: a new session's first statement
/// then meets no other client's of the same name.
async fn fresh_backends(url: &str) {
    let mut held = common::hold_server_connections(url, 4).await;
    for c in &mut held {
        sqlx::raw_sql("DEALLOCATE ALL")
            .execute(&mut *c)
            .await
            .unwrap();
    }
    common::end_held(held).await;
}

async fn plus_one(s: &mut Session, n: i64) -> Result<i64, Error> {
    s.execute_sql(SELECT, &params![n])
        .await?
        .one()?
        .get::<i64>("n")
}

/// Transactions held open through the pooler until one of them is on the server
/// connection with backend `pid`: the session that ran there last must use another.
async fn hold_backend_of(url: &str, pid: i32) -> Vec<sqlx::PgConnection> {
    use sqlx::Row;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut c = common::hold_server_connections(url, 1).await.remove(0);
        let row = sqlx::raw_sql("SELECT pg_backend_pid()")
            .fetch_one(&mut c)
            .await
            .unwrap();
        let on = row.try_get::<i32, _>(0).unwrap();
        held.push(c);
        if on == pid {
            return held;
        }
    }
    panic!("the pooler did not hand out backend {pid} to three transactions in turn");
}

/// A direct session of `db` (made with `options`) moved off its server connection after
/// one statement: the session, and the error its statement got the second time.
async fn moved_and_refused(url: &str, db: &Database, options: SessionOptions) -> (Session, Error) {
    let mut s = db.session_with(options);
    s.create().await.unwrap();
    plus_one(&mut s, 1).await.unwrap();
    let pid = s.backend_pid().unwrap();
    let held = hold_backend_of(url, pid).await;
    let err = plus_one(&mut s, 1).await.unwrap_err();
    common::end_held(held).await;
    (s, err)
}

/// Outside a transaction: the statement refused on the other server connection runs
/// again, the session now in the pooler mode; a stream too.
#[tokio::test]
async fn a_moved_session_goes_over_and_its_statement_runs_again() {
    let Some((url, _serial)) = pooler("PGBOUNCER_SMALL_URL").await else {
        return;
    };
    let db = Database::open(&url).await.unwrap();
    let mut s = db.session();
    s.create().await.unwrap();
    assert!(!db.transaction_pooler());
    // Prepared on the session's first server connection.
    assert_eq!(plus_one(&mut s, 1).await.unwrap(), 2);
    let pid = s.backend_pid().unwrap();
    let held = hold_backend_of(&url, pid).await;
    assert_eq!(plus_one(&mut s, 41).await.unwrap(), 42);
    assert!(db.transaction_pooler(), "the pooler was not found");
    assert_eq!(s.backend_pid(), None);
    assert!(!s.is_broken());
    let three = params![3i32];
    let rows: Vec<_> = s
        .execute_sql_stream("SELECT generate_series(1, $1::int4) AS n", &three)
        .collect()
        .await;
    assert_eq!(rows.len(), 3);
    for r in rows {
        r.unwrap();
    }
    common::end_held(held).await;
    // Another session of the database starts in the pooler mode.
    let mut t = db.session();
    t.create().await.unwrap();
    assert_eq!(t.backend_pid(), None);
    assert_eq!(plus_one(&mut t, 6).await.unwrap(), 7);
}

/// A server connection that holds another client's prepared statement is a shared one: a
/// new session finds the pooler at creation, before it sets anything there (its statement
/// timeout would have stayed on it for the other clients).
#[tokio::test]
async fn another_clients_statement_on_the_server_connection_is_found_at_creation() {
    let Some((url, _serial)) = pooler("PGBOUNCER_SMALL_URL").await else {
        return;
    };
    // Another client's statement, left on the server connection its transaction had.
    let mut other = common::pooler_conn(&url).await;
    sqlx::raw_sql("PREPARE another_clients AS SELECT 1")
        .execute(&mut other)
        .await
        .unwrap();
    let db = session_pool::DatabaseOptions::new(&url)
        .statement_timeout(std::time::Duration::from_millis(250))
        .open()
        .await
        .unwrap();
    let mut s = db.session();
    s.create().await.unwrap();
    assert!(db.transaction_pooler(), "the pooler was not found");
    assert_eq!(s.backend_pid(), None);
    assert_eq!(plus_one(&mut s, 1).await.unwrap(), 2);
    let mut held = common::hold_server_connections(&url, 4).await;
    for c in &mut held {
        use sqlx::Row;
        let row = sqlx::raw_sql("SELECT current_setting('statement_timeout')")
            .fetch_one(&mut *c)
            .await
            .unwrap();
        assert_eq!(row.try_get::<String, _>(0).unwrap(), "0");
    }
    common::end_held(held).await;
}

/// In a transaction the refused statement aborts it: a retryable abort, which
/// `run_in_transaction` runs again in the pooler mode, and a session that was not moved
/// itself goes over before its next statement.
#[tokio::test]
async fn a_moved_transaction_is_run_again() {
    let Some((url, _serial)) = pooler("PGBOUNCER_SMALL_URL").await else {
        return;
    };
    let db = Database::open(&url).await.unwrap();
    let table = unique("passthrough");
    let mut s = db.session();
    s.create().await.unwrap();
    s.execute_update(
        &format!("CREATE TABLE {table} (id BIGINT PRIMARY KEY)"),
        &params![],
    )
    .await
    .unwrap();
    let insert = format!("INSERT INTO {table} (id) VALUES ($1)");
    s.execute_update(&insert, &params![0i64]).await.unwrap();
    let pid = s.backend_pid().unwrap();
    let held = hold_backend_of(&url, pid).await;
    // Another direct session, made on another server connection than `s`'s.
    let mut other = db.session();
    other.create().await.unwrap();
    assert!(!db.transaction_pooler());

    // By hand: the abort is retryable, and the session is kept.
    let mut tx = s.transaction().await.unwrap();
    let err = tx
        .execute_update(&insert, &params![1i64])
        .await
        .unwrap_err();
    assert!(err.is_aborted(), "{err:?}");
    tx.rollback().await.unwrap();
    assert!(!s.is_broken());

    // run_in_transaction goes through.
    let mut attempts = 0;
    s.run_in_transaction(async |tx| {
        attempts += 1;
        tx.execute_update(&insert, &params![1i64]).await?;
        tx.execute_update(&insert, &params![2i64]).await?;
        Ok::<_, Error>(())
    })
    .await
    .unwrap();
    assert!(db.transaction_pooler(), "the pooler was not found");
    assert_eq!(s.backend_pid(), None);
    common::end_held(held).await;

    // The other session, still direct, goes over before its next statement.
    assert!(other.backend_pid().is_some());
    let n = other
        .execute_sql(&format!("SELECT count(*) AS n FROM {table}"), &params![])
        .await
        .unwrap()
        .one()
        .unwrap()
        .get::<i64>("n")
        .unwrap();
    assert_eq!(n, 3, "{attempts} attempts");
    assert_eq!(other.backend_pid(), None);
    s.execute_update(&format!("DROP TABLE {table}"), &params![])
        .await
        .unwrap();
}

/// Eight sessions over the pooler's four server connections, all at once: every statement
/// succeeds (the old test of this found failures in every run), and so does a pool's
/// mixed work of transactions, batches and snapshots afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_sessions_over_four_server_connections_all_succeed() {
    let Some((url, _serial)) = pooler("PGBOUNCER_SMALL_URL").await else {
        return;
    };
    eight_sessions_then_a_pool(&url).await;
}

/// The same through PgCat with its defaults (no statement cache: names passed through).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pgcat_without_its_statement_cache_is_found_too() {
    let Some((url, _serial)) = pooler("PGCAT_DEFAULTS_URL").await else {
        return;
    };
    eight_sessions_then_a_pool(&url).await;
}

async fn eight_sessions_then_a_pool(url: &str) {
    let db = Database::open(url).await.unwrap();
    let mut sessions = Vec::new();
    for _ in 0..8 {
        let mut s = db.session();
        s.create().await.unwrap();
        sessions.push(s);
    }
    let work = sessions
        .into_iter()
        .enumerate()
        .map(|(w, mut s)| async move {
            for i in 0..10 {
                let n = (w * 100 + i) as i64;
                assert_eq!(plus_one(&mut s, n).await.unwrap(), n + 1);
            }
            assert!(!s.is_broken());
            s
        });
    let sessions = futures_util::future::join_all(work).await;
    assert!(db.transaction_pooler(), "the pooler was not found");
    for mut s in sessions {
        plus_one(&mut s, 0).await.unwrap();
        assert_eq!(s.backend_pid(), None);
    }

    let table = unique("passthrough_pool");
    let pool = FixedSizePool::builder().size(8).build(&db).await.unwrap();
    let mut s = pool.session().await.unwrap();
    s.execute_update(
        &format!("CREATE TABLE {table} (id BIGINT PRIMARY KEY, worker BIGINT NOT NULL)"),
        &params![],
    )
    .await
    .unwrap();
    drop(s);
    let work = (0..8).map(|w| {
        let pool = pool.clone();
        let table = table.clone();
        async move {
            for round in 0..5i64 {
                let id = w * 1000 + round;
                pool.run_in_transaction(async |tx| {
                    tx.execute_update(
                        &format!("INSERT INTO {table} (id, worker) VALUES ($1, $2)"),
                        &params![id, w],
                    )
                    .await?;
                    Ok::<_, Error>(())
                })
                .await
                .unwrap();
                let mut s = pool.session().await.unwrap();
                let mut batch = s.batch().unwrap();
                batch
                    .insert(&table, &["id", "worker"], vec![params![-id - 1, w]])
                    .unwrap();
                batch.commit().await.unwrap();
                let mut snap = s.snapshot().await.unwrap();
                let n = snap
                    .execute_sql(
                        &format!("SELECT count(*) AS n FROM {table} WHERE worker = $1"),
                        &params![w],
                    )
                    .await
                    .unwrap()
                    .one()
                    .unwrap()
                    .get::<i64>("n")
                    .unwrap();
                assert_eq!(n, 2 * (round + 1));
            }
        }
    });
    futures_util::future::join_all(work).await;
    let mut s = pool.session().await.unwrap();
    s.execute_update(&format!("DROP TABLE {table}"), &params![])
        .await
        .unwrap();
}

/// `?pgbouncer=false` is taken at its word: a refused statement is the typed error that
/// names the fix, and the session is given up.
#[tokio::test]
async fn a_pooler_declared_absent_is_named_in_the_error() {
    let Some((url, _serial)) = pooler("PGBOUNCER_SMALL_URL").await else {
        return;
    };
    let db = Database::open(&format!("{url}?pgbouncer=false"))
        .await
        .unwrap();
    let (s, err) = moved_and_refused(&url, &db, SessionOptions::default()).await;
    assert!(matches!(err, Error::UndeclaredPooler { .. }), "{err:?}");
    assert_eq!(err.kind(), session_pool::ErrorKind::Unsupported);
    assert!(matches!(err.code(), Some("26000" | "42P05")), "{err:?}");
    assert!(err.to_string().contains("?pgbouncer=true"), "{err}");
    assert!(s.is_broken());
    assert!(!db.transaction_pooler());
}

/// A session that assumed a role cannot go over (its `SET ROLE` may be on a server
/// connection the pooler shares): it is given up with the typed error.
#[tokio::test]
async fn a_session_with_a_role_is_given_up() {
    let Some((url, _serial)) = pooler("PGBOUNCER_SMALL_URL").await else {
        return;
    };
    let db = Database::open(&url).await.unwrap();
    let role = SessionOptions::default().database_role("postgres");
    let (s, err) = moved_and_refused(&url, &db, role).await;
    assert!(matches!(err, Error::UndeclaredPooler { .. }), "{err:?}");
    assert!(s.is_broken());
}

/// A session that assumed a role, moved by the pooler to a server connection where the role
/// was never set, runs nothing there as the login user: its moved statement is refused and
/// the session given up. (sqlx 0.9.1 prepares a refused statement again and reruns it
/// unseen, outside a transaction; with it this statement answered `postgres`, which is why
/// Cargo.toml holds sqlx at 0.9.0.)
#[tokio::test]
async fn a_moved_session_never_runs_as_the_login_user() {
    let Some((url, _serial)) = pooler("PGBOUNCER_SMALL_URL").await else {
        return;
    };
    let role = unique("sp_reader");
    let mut admin = common::pooler_conn(&url).await;
    for ddl in [
        format!("CREATE ROLE {role} NOLOGIN"),
        format!("GRANT {role} TO CURRENT_USER"),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(ddl))
            .execute(&mut admin)
            .await
            .unwrap();
    }
    let db = Database::open(&url).await.unwrap();
    let mut s = db.session_with(SessionOptions::default().database_role(&role));
    s.create().await.unwrap();
    let who = "SELECT current_user::text AS who, $1::int8 AS n";
    let user = async |s: &mut Session| -> Result<String, Error> {
        s.execute_sql(who, &params![1i64])
            .await?
            .one()?
            .get::<String>("who")
    };
    assert_eq!(user(&mut s).await.unwrap(), role);
    let pid = s.backend_pid().unwrap();
    let held = hold_backend_of(&url, pid).await;
    let moved = user(&mut s).await;
    common::end_held(held).await;
    // The role stays set on the server connection the session began on, which the pooler
    // shares: reset on every one (committed: a rollback would undo it) before it goes.
    let mut held = common::hold_server_connections(&url, 4).await;
    for c in &mut held {
        sqlx::raw_sql("RESET ROLE; COMMIT")
            .execute(&mut *c)
            .await
            .unwrap();
    }
    common::end_held(held).await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP ROLE {role}")))
        .execute(&mut admin)
        .await
        .unwrap();
    match moved {
        Err(Error::UndeclaredPooler { .. }) => assert!(s.is_broken()),
        other => panic!("the moved statement ran without the session's role: {other:?}"),
    }
}

/// Without a pooler, a session whose prepared statements were dropped under it
/// (`DEALLOCATE ALL`) prepares them anew and stays direct: the statement runs again.
#[tokio::test]
async fn a_session_whose_statements_vanished_prepares_them_anew() {
    let Some(db) = common::postgres().await else {
        return;
    };
    if db.transaction_pooler() {
        return; // the suite's run through a pooler
    }
    let mut s = db.session();
    s.create().await.unwrap();
    assert_eq!(plus_one(&mut s, 6).await.unwrap(), 7);
    let pid = s.backend_pid();
    s.execute_sql("DEALLOCATE ALL", &params![]).await.unwrap();
    assert_eq!(plus_one(&mut s, 7).await.unwrap(), 8);
    assert!(!s.is_broken());
    assert_eq!(s.backend_pid(), pid);
    assert!(pid.is_some());
    assert!(!db.transaction_pooler());
    // And in a transaction: a retryable abort, then the statement works again.
    s.execute_sql("DEALLOCATE ALL", &params![]).await.unwrap();
    let mut attempts = 0;
    let n = s
        .run_in_transaction(async |tx| {
            attempts += 1;
            tx.execute_sql(SELECT, &params![1i64])
                .await?
                .one()?
                .get::<i64>("n")
        })
        .await
        .unwrap();
    assert_eq!((n, attempts), (2, 2));
    assert!(!db.transaction_pooler());
}

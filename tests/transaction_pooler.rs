//! Through a real PgBouncer in transaction mode (`scripts/test` starts it with its default
//! `ignore_startup_parameters` and `default_pool_size = 4`), with `?pgbouncer=true`: many
//! sessions share a few server connections, with zero errors, and every kind of statement,
//! transaction, timeout and store works. Session mode works without the flag.
mod common;

use std::time::Duration;

use serde_json::json;
use session_pool::adk::{AdkConfig, Event, GetSessionConfig, SessionService};
use session_pool::prelude::*;
use session_pool::{
    Database, DatabaseOptions, Error, FixedSizePool, Numeric, SessionOptions, Value, params,
};

use common::unique;

async fn pooled(var: &str) -> Option<Database> {
    let url = common::pgbouncer(var)?;
    Some(
        Database::open(&format!("{url}?pgbouncer=true"))
            .await
            .unwrap_or_else(|e| panic!("PgBouncer at {url}: {e}")),
    )
}

/// One unit of mixed work: parameters of every type, a retried transaction, a snapshot,
/// a batch. Returns what went wrong, if anything.
async fn workload(
    pool: FixedSizePool,
    table: String,
    worker: usize,
    rounds: usize,
) -> Result<(), Error> {
    for round in 0..rounds {
        let id = (worker * 100_000 + round) as i64;
        let mut s = pool.session().await?;
        let rs = s
            .execute_sql(
                "SELECT $1::int8 + 1 AS n, $2 AS t, $3 AS j, $4 AS b, $5 AS ts",
                &params![
                    id,
                    format!("it's {worker} \\ $$"),
                    Value::Json(json!({"w": worker, "r": round})),
                    Value::Bytes(vec![0, 1, 255]),
                    Value::Timestamp(chrono::Utc::now())
                ],
            )
            .await?;
        let row = rs.one()?;
        assert_eq!(row.get::<i64>("n")?, id + 1);
        assert_eq!(row.get::<String>("t")?, format!("it's {worker} \\ $$"));
        s.run_in_transaction(async |tx| {
            tx.execute_update(
                &format!("INSERT INTO {table} (id, worker, note) VALUES ($1, $2, $3)"),
                &params![id, worker as i64, "tx"],
            )
            .await?;
            let n = tx
                .execute_sql(
                    &format!("SELECT count(*) AS n FROM {table} WHERE worker = $1"),
                    &params![worker as i64],
                )
                .await?
                .one()?
                .get::<i64>("n")?;
            assert_eq!(n, 2 * round as i64 + 1);
            Ok::<_, Error>(())
        })
        .await?;
        let mut batch = s.batch()?;
        batch.insert(
            &table,
            &["id", "worker", "note"],
            vec![params![-id - 1, worker as i64, "batch"]],
        )?;
        batch.commit().await?;
        let mut snap = s.snapshot().await?;
        let n = snap
            .execute_sql(
                &format!("SELECT count(*) AS n FROM {table} WHERE worker = $1"),
                &params![worker as i64],
            )
            .await?
            .one()?
            .get::<i64>("n")?;
        assert_eq!(n, 2 * (round as i64 + 1));
        drop(snap);
    }
    Ok(())
}

async fn make_table(db: &Database) -> String {
    let t = unique("pgb");
    let mut s = db.session();
    s.create().await.unwrap();
    s.execute_update(
        &format!("CREATE TABLE {t} (id BIGINT PRIMARY KEY, worker BIGINT NOT NULL, note TEXT)"),
        &[],
    )
    .await
    .unwrap();
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_tasks_share_four_server_connections() {
    let Some(db) = pooled("PGBOUNCER_SMALL_URL").await else {
        return;
    };
    assert!(db.transaction_pooler());
    let table = make_table(&db).await;
    let pool = FixedSizePool::builder().size(10).build(&db).await.unwrap();
    // Concurrent on one task: run_in_transaction's async closure borrows its captures,
    // which keeps it off `tokio::spawn` (see tests/send_futures.rs for owning closures).
    let work = (0..20).map(|w| workload(pool.clone(), table.clone(), w, 10));
    for res in futures_util::future::join_all(work).await {
        res.unwrap();
    }
    let mut s = pool.session().await.unwrap();
    let n: i64 = common::scalar(&mut *s, &format!("SELECT count(*) FROM {table}"), &[]).await;
    assert_eq!(n, 20 * 10 * 2);
}

/// Run by `many_processes_share_twenty_server_connections` in each child process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a child process of many_processes_share_twenty_server_connections"]
async fn child_process_workload() {
    let url = std::env::var("POOLER_CHILD_URL").expect("run by the parent test");
    let table = std::env::var("POOLER_CHILD_TABLE").unwrap();
    let worker: usize = std::env::var("POOLER_CHILD_N").unwrap().parse().unwrap();
    let db = Database::open(&url).await.unwrap();
    let pool = FixedSizePool::builder().size(10).build(&db).await.unwrap();
    let work = (0..10).map(|t| workload(pool.clone(), table.clone(), worker * 10 + t, 5));
    for res in futures_util::future::join_all(work).await {
        res.unwrap();
    }
    // The ADK service too: a session, a few turns, state scopes.
    let store = session_pool::adk::AdkStore::new(
        pool.clone(),
        AdkConfig::default()
            .session_table(format!("{table}_s"))
            .events_table(format!("{table}_e"))
            .app_state_table(format!("{table}_a"))
            .user_state_table(format!("{table}_u")),
    )
    .unwrap();
    let service = SessionService::new(store);
    let mut session = service
        .create_session("app", &format!("user{worker}"), None, None)
        .await
        .unwrap();
    for i in 0..5 {
        let e = Event::text("user", "user", "hi")
            .with_state_delta("turn", json!(i))
            .with_state_delta("user:last", json!(worker));
        service.append_event(&mut session, e).await.unwrap();
    }
    // Two more in one call: one transaction, pinned to one server connection until COMMIT.
    let batch = vec![
        Event::text("user", "user", "q").with_state_delta("app:seen", json!(worker)),
        Event::text("model", "model", "a").with_state_delta("turn", json!(5)),
    ];
    service.append_events(&mut session, batch).await.unwrap();
    let read = service
        .get_session(
            "app",
            &session.user_id,
            &session.id,
            &GetSessionConfig::default(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.events.len(), 7);
    assert_eq!(read.state["user:last"], json!(worker));
    assert_eq!(read.state["turn"], json!(5));
    assert!(read.state.contains_key("app:seen"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_processes_share_twenty_server_connections() {
    let Some(url) = common::pgbouncer("PGBOUNCER_URL") else {
        return;
    };
    let url = format!("{url}?pgbouncer=true");
    let db = Database::open(&url).await.unwrap();
    let table = make_table(&db).await;
    let store = session_pool::adk::AdkStore::new(
        FixedSizePool::builder().size(1).build(&db).await.unwrap(),
        AdkConfig::default()
            .session_table(format!("{table}_s"))
            .events_table(format!("{table}_e"))
            .app_state_table(format!("{table}_a"))
            .user_state_table(format!("{table}_u")),
    )
    .unwrap();
    store.create_tables().await.unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..20)
        .map(|n| {
            tokio::process::Command::new(&exe)
                .args([
                    "--exact",
                    "child_process_workload",
                    "--ignored",
                    "--nocapture",
                ])
                .env("POOLER_CHILD_URL", &url)
                .env("POOLER_CHILD_TABLE", &table)
                .env("POOLER_CHILD_N", n.to_string())
                .output()
        })
        .collect();
    for (n, child) in children.into_iter().enumerate() {
        let out = child.await.unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "child {n} failed ({}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Every row of 20 processes × 10 workers × 5 rounds × (transaction + batch).
    let mut s = db.session();
    s.create().await.unwrap();
    let n: i64 = common::scalar(&mut s, &format!("SELECT count(*) FROM {table}"), &[]).await;
    assert_eq!(n, 20 * 10 * 5 * 2);
    // 200 client connections went through PgBouncer's 20 server connections at most.
    let servers = pgbouncer_servers(&url).await;
    assert!((1..=20).contains(&servers), "{servers} server connections");
}

/// Server connections PgBouncer holds for database `postgres`, from its admin console.
async fn pgbouncer_servers(url: &str) -> usize {
    use sqlx::Row;
    let mut c = common::pooler_conn(&url.replace("/postgres?pgbouncer=true", "/pgbouncer")).await;
    let rows = sqlx::raw_sql("SHOW SERVERS")
        .fetch_all(&mut c)
        .await
        .unwrap();
    rows.iter()
        .filter(|r| {
            r.try_get::<String, _>("database")
                .is_ok_and(|d| d == "postgres")
        })
        .count()
}

/// The server cancelled the statement for its timeout, and the session lives on.
fn server_timeout(err: &Error) -> bool {
    matches!(
        err,
        Error::StatementTimeout {
            session_lost: false,
            ..
        }
    )
}

#[tokio::test]
async fn values_read_back_as_on_a_direct_connection() {
    let (Some(db), Some(direct)) = (
        pooled("PGBOUNCER_SMALL_URL").await,
        common::postgres().await,
    ) else {
        return;
    };
    let mut pooled_s = db.session();
    pooled_s.create().await.unwrap();
    let mut direct_s = direct.session();
    direct_s.create().await.unwrap();
    let values = [
        Value::Null,
        Value::Bool(true),
        Value::Int(i64::MIN),
        Value::Float(0.1),
        Value::Float(-1.5e-300),
        Value::Float(f64::MAX),
        Value::Text("quotes ' \" \\ $$ $1 -- /* \u{1F980} é".into()),
        Value::Bytes((0..=255).collect()),
        Value::Json(json!({"a": [1, 2.5, null, true, "x'y"], "b": {"c": -3}})),
        Value::Timestamp("2026-11-22T10:11:12.345678Z".parse().unwrap()),
        Value::Numeric("-12345678901234567890.000123".parse::<Numeric>().unwrap()),
        Value::Uuid(uuid::Uuid::now_v7()),
        Value::Date(chrono::NaiveDate::from_ymd_opt(1999, 12, 31).unwrap()),
        Value::Time(chrono::NaiveTime::from_hms_micro_opt(23, 59, 59, 999_999).unwrap()),
    ];
    for v in values {
        let p = pooled_s
            .execute_sql("SELECT $1 AS v", std::slice::from_ref(&v))
            .await
            .unwrap();
        let d = direct_s
            .execute_sql("SELECT $1 AS v", std::slice::from_ref(&v))
            .await
            .unwrap();
        assert_eq!(p.rows[0].value(0), d.rows[0].value(0), "{v:?}");
    }
    // Server-made values of the types the decoder knows, read from text.
    let sql = "SELECT SUM(x) AS s, gen_random_uuid() AS u, 1.5::float4 AS f4, 7::int2 AS i2, \
               'x'::name AS nm, now()::timestamp AS ts, 'on'::bool AS b \
               FROM (VALUES (1::int8), (2)) v(x)";
    let p = pooled_s.execute_sql(sql, &[]).await.unwrap();
    let row = p.one().unwrap();
    assert_eq!(row.get::<i64>("s").unwrap(), 3);
    assert!(matches!(row.value(1), Some(Value::Uuid(_))));
    assert_eq!(row.get::<f64>("f4").unwrap(), 1.5);
    assert!(row.get::<bool>("b").unwrap());
    // A placeholder without its parameter is refused before sending.
    let err = pooled_s
        .execute_sql("SELECT $1, $2", &params![1])
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        session_pool::ErrorKind::InvalidArgument,
        "{err}"
    );
}

#[tokio::test]
async fn statement_timeouts_are_enforced_by_the_server() {
    let Some(db) = pooled("PGBOUNCER_SMALL_URL").await else {
        return;
    };
    let mut s = db.session();
    s.create().await.unwrap();
    let timeout = Duration::from_millis(200);
    let err = s
        .with_timeout(timeout)
        .execute_sql("SELECT pg_sleep(5)", &[])
        .await
        .unwrap_err();
    assert!(server_timeout(&err), "{err:?}");
    assert!(!s.is_broken());
    assert_eq!(
        s.execute_sql("SELECT 1 AS n", &[])
            .await
            .unwrap()
            .rows
            .len(),
        1
    );
    // A stream too: the server cancels it.
    {
        use futures_util::StreamExt;
        let first = s
            .with_timeout(timeout)
            .execute_sql_stream("SELECT pg_sleep(5)", &[])
            .next()
            .await;
        assert!(
            matches!(&first, Some(Err(e)) if server_timeout(e)),
            "{first:?}"
        );
    }
    assert!(!s.is_broken());

    // In a transaction the timeout covers its statement only: the next one, with none,
    // may run longer.
    let mut tx = s.transaction().await.unwrap();
    tx.with_timeout(Duration::from_millis(100))
        .execute_sql("SELECT 1", &[])
        .await
        .unwrap();
    tx.execute_sql("SELECT pg_sleep(0.4)", &[]).await.unwrap();
    tx.commit().await.unwrap();

    // Database-wide.
    let url = common::pgbouncer("PGBOUNCER_SMALL_URL").unwrap();
    let db = DatabaseOptions::new(format!("{url}?pgbouncer=true"))
        .statement_timeout(timeout)
        .open()
        .await
        .unwrap();
    let mut s = db.session();
    s.create().await.unwrap();
    let err = s.execute_sql("SELECT pg_sleep(5)", &[]).await.unwrap_err();
    assert!(server_timeout(&err), "{err:?}");
    s.execute_sql("SELECT pg_sleep(0.05)", &[]).await.unwrap();
}

#[tokio::test]
async fn a_database_role_is_refused() {
    let Some(db) = pooled("PGBOUNCER_SMALL_URL").await else {
        return;
    };
    let mut s = db.session_with(SessionOptions::default().database_role("postgres"));
    let err = s.create().await.unwrap_err();
    assert!(matches!(err, Error::Unsupported(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn session_mode_works_without_the_flag() {
    let Some(url) = common::pgbouncer("PGBOUNCER_SESSION_URL") else {
        return;
    };
    let db = Database::open(&url).await.unwrap();
    assert!(!db.transaction_pooler());
    let table = make_table(&db).await;
    let pool = FixedSizePool::builder().size(8).build(&db).await.unwrap();
    let work = (0..8).map(|w| workload(pool.clone(), table.clone(), w, 5));
    for res in futures_util::future::join_all(work).await {
        res.unwrap();
    }
}

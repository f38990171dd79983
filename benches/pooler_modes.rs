//! Statements through PgBouncer in transaction mode, in the two ways that survive it, side
//! by side in one run (issue 14 chose the first):
//!
//! - `inline`: this crate's transaction-pooler mode, one simple-protocol message with
//!   client-side literals (one round trip);
//! - `own_transaction`: sqlx's extended protocol inside a transaction of its own, `BEGIN`,
//!   an unnamed prepared statement, `COMMIT` (four round trips: BEGIN, parse/describe,
//!   bind/execute, COMMIT);
//! - and, for reference, `direct`: this crate on the server itself, named prepared
//!   statements (one round trip once prepared);
//! - `transaction`: the statement in one of this crate's transactions through the pooler
//!   (`BEGIN`, the statement, `COMMIT`: three round trips), what `run_in_transaction`
//!   costs there.
//!
//! With `PGBOUNCER_CURRENT_SMALL_URL` (the current PgBouncer `scripts/test` builds), two more
//! through it: `current_inline` (the pooler mode, which an undeclared session goes over
//! to), and `current_renamed`, named prepared statements that PgBouncer renames on its
//! server connections (`?pgbouncer=false`: what the direct mode would send there).
//!
//! Needs `scripts/test`'s servers; set `DATABASE_URL` and `PGBOUNCER_SMALL_URL` (it skips
//! without them):
//!
//! ```sh
//! cargo bench --bench pooler_modes
//! ```

use criterion::{Criterion, criterion_group, criterion_main};
use session_pool::prelude::*;
use session_pool::{Database, FixedSizePool, Value, params};
use sqlx::{Connection, Row};
use tokio::runtime::Runtime;

const SQL: &str = "SELECT $1::int8 + 1 AS n, $2::text AS t, $3::jsonb AS j";

fn args() -> Vec<Value> {
    params![
        41,
        "a short text with a ' quote",
        Value::Json(serde_json::json!({"k": [1, 2, 3]}))
    ]
}

/// One contender through this crate: a pool of one session on `url`, the statement run
/// on it per iteration.
fn crate_contender(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rt: &Runtime,
    name: &str,
    url: &str,
) {
    let pool = rt.block_on(async {
        let db = Database::open(url).await.unwrap();
        FixedSizePool::builder().size(1).build(&db).await.unwrap()
    });
    group.bench_function(name, |b| {
        b.to_async(rt).iter(|| async {
            let mut s = pool.session().await.unwrap();
            let rs = s.execute_sql(SQL, &args()).await.unwrap();
            assert_eq!(rs.rows.len(), 1);
        })
    });
}

fn bench(c: &mut Criterion) {
    let (Ok(direct), Ok(bouncer)) = (
        std::env::var("DATABASE_URL"),
        std::env::var("PGBOUNCER_SMALL_URL"),
    ) else {
        eprintln!(
            "pooler_modes: set DATABASE_URL and PGBOUNCER_SMALL_URL (scripts/test's servers)"
        );
        return;
    };
    let rt = Runtime::new().unwrap();
    let mut group = c.benchmark_group("statement_through_pgbouncer");

    crate_contender(
        &mut group,
        &rt,
        "inline",
        &format!("{bouncer}?pgbouncer=true"),
    );

    let conn = rt.block_on(async {
        let opts: sqlx::postgres::PgConnectOptions = bouncer.parse().unwrap();
        sqlx::PgConnection::connect_with(&opts.extra_float_digits(None).statement_cache_capacity(0))
            .await
            .unwrap()
    });
    let conn = std::sync::Arc::new(tokio::sync::Mutex::new(conn));
    group.bench_function("own_transaction", |b| {
        b.to_async(&rt).iter(|| {
            let conn = conn.clone();
            async move {
                let mut conn = conn.lock().await;
                let mut tx = conn.begin().await.unwrap();
                let row = sqlx::query(SQL)
                    .persistent(false)
                    .bind(41i64)
                    .bind("a short text with a ' quote")
                    .bind(sqlx::types::Json(serde_json::json!({"k": [1, 2, 3]})))
                    .fetch_one(&mut *tx)
                    .await
                    .unwrap();
                assert_eq!(row.get::<i64, _>(0), 42);
                tx.commit().await.unwrap();
            }
        })
    });

    crate_contender(&mut group, &rt, "direct", &direct);

    let pool = rt.block_on(async {
        let db = Database::open(&format!("{bouncer}?pgbouncer=true"))
            .await
            .unwrap();
        FixedSizePool::builder().size(1).build(&db).await.unwrap()
    });
    group.bench_function("transaction", |b| {
        b.to_async(&rt).iter(|| async {
            let mut s = pool.session().await.unwrap();
            let mut tx = s.transaction().await.unwrap();
            let rs = tx.execute_sql(SQL, &args()).await.unwrap();
            assert_eq!(rs.rows.len(), 1);
            tx.commit().await.unwrap();
        })
    });

    if let Ok(current) = std::env::var("PGBOUNCER_CURRENT_SMALL_URL") {
        for (name, flag) in [("current_inline", "true"), ("current_renamed", "false")] {
            crate_contender(
                &mut group,
                &rt,
                name,
                &format!("{current}?pgbouncer={flag}"),
            );
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! What a row stream (`execute_sql_stream`) costs beside the same rows collected
//! (`execute_sql`), in one run: one row (the stream's set-up per statement) and 1,000 rows
//! (its cost per row). The stream runs as a generator so that a statement a schema change
//! left stale can be run again before its first row (`tests/schema_change.rs`). On SQLite,
//! and on PostgreSQL too when `DATABASE_URL` names a server.
//!
//! ```sh
//! cargo bench --bench row_stream
//! DATABASE_URL=postgres://… cargo bench --bench row_stream
//! ```

use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::StreamExt;
use session_pool::prelude::*;
use session_pool::{Database, FixedSizePool, params};
use tokio::runtime::Runtime;

fn bench(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut urls = vec![(
        "sqlite",
        format!("sqlite://{}", dir.path().join("stream.db").display()),
    )];
    if let Ok(url) = std::env::var("DATABASE_URL") {
        urls.push(("postgres", url));
    }
    for (backend, url) in urls {
        let table = format!("bench_stream_{}", std::process::id());
        let pool = rt.block_on(async {
            let db = Database::open(&url).await.unwrap();
            let pool = FixedSizePool::builder().size(1).build(&db).await.unwrap();
            let mut s = pool.session().await.unwrap();
            s.execute_update(&format!("DROP TABLE IF EXISTS {table}"), &[])
                .await
                .unwrap();
            s.execute_update(
                &format!("CREATE TABLE {table} (id BIGINT PRIMARY KEY, a TEXT, b BIGINT)"),
                &[],
            )
            .await
            .unwrap();
            s.execute_update(
                &format!(
                    "INSERT INTO {table} SELECT i, 'row ' || i, i * 2 FROM \
                     (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n \
                     WHERE i < 1000) SELECT i FROM n) AS n"
                ),
                &[],
            )
            .await
            .unwrap();
            drop(s);
            pool
        });
        let mut group = c.benchmark_group(format!("{backend}_rows"));
        for (rows, limit) in [("1 row", 1_i64), ("1000 rows", 1000)] {
            let sql = format!("SELECT id, a, b FROM {table} WHERE id <= $1 ORDER BY id");
            group.bench_function(format!("collected/{rows}"), |b| {
                b.to_async(&rt).iter(|| async {
                    let mut s = pool.session().await.unwrap();
                    let rs = s.execute_sql(&sql, &params![limit]).await.unwrap();
                    assert_eq!(rs.rows.len() as i64, limit);
                })
            });
            group.bench_function(format!("stream/{rows}"), |b| {
                b.to_async(&rt).iter(|| async {
                    let mut s = pool.session().await.unwrap();
                    let p = params![limit];
                    let mut stream = s.execute_sql_stream(&sql, &p);
                    let mut n = 0_i64;
                    while let Some(row) = stream.next().await {
                        std::hint::black_box(row.unwrap());
                        n += 1;
                    }
                    assert_eq!(n, limit);
                })
            });
        }
        group.finish();
        rt.block_on(async {
            let mut s = pool.session().await.unwrap();
            s.execute_update(&format!("DROP TABLE {table}"), &[])
                .await
                .unwrap();
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);

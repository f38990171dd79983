//! What a statement whose columns come from a `*` costs on SQLite, side by side with the
//! same read naming its columns, in one run: since such statements are never cached and
//! run after a statement that makes the connection read its schema afresh (so that an
//! `ALTER TABLE` elsewhere cannot crash sqlx-sqlite's worker, `tests/schema_change.rs`),
//! `SELECT *` pays a preparation and one more trivial statement per call.
//!
//! ```sh
//! cargo bench --bench star_columns
//! ```

use criterion::{Criterion, criterion_group, criterion_main};
use session_pool::prelude::*;
use session_pool::{Database, FixedSizePool, params};
use tokio::runtime::Runtime;

fn bench(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("star.db").display());
    let pool = rt.block_on(async {
        let db = Database::open(&url).await.unwrap();
        let pool = FixedSizePool::builder().size(1).build(&db).await.unwrap();
        let mut s = pool.session().await.unwrap();
        s.execute_update(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b INTEGER, c REAL)",
            &[],
        )
        .await
        .unwrap();
        for i in 0..100 {
            s.execute_update(
                "INSERT INTO t VALUES ($1, $2, $3, $4)",
                &params![i, format!("row {i}"), i * 2, 0.5],
            )
            .await
            .unwrap();
        }
        drop(s);
        pool
    });
    let mut group = c.benchmark_group("sqlite_read_one_row");
    for (name, sql) in [
        ("named columns", "SELECT id, a, b, c FROM t WHERE id = $1"),
        ("star", "SELECT * FROM t WHERE id = $1"),
    ] {
        group.bench_function(name, |b| {
            b.to_async(&rt).iter(|| async {
                let mut s = pool.session().await.unwrap();
                let rs = s.execute_sql(sql, &params![42]).await.unwrap();
                assert_eq!(rs.rows.len(), 1);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! Shared test helpers: real databases for every test.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};

use session_pool::{Database, DatabaseOptions, Dialect};

/// True when running in CI, where a missing PostgreSQL is a failure, never a skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// The PostgreSQL URL from `DATABASE_URL`; `None` (test skipped) only outside CI.
pub fn pg_url() -> Option<String> {
    match std::env::var("DATABASE_URL") {
        Ok(url) if url.starts_with("postgres") => Some(url),
        _ if in_ci() => panic!(
            "CI=true but DATABASE_URL does not name a PostgreSQL server: run the tests with \
             scripts/test, which starts one"
        ),
        _ => {
            eprintln!(
                "skipping: set DATABASE_URL=postgres://… (scripts/test does) to run this test"
            );
            None
        }
    }
}

/// Opens the test PostgreSQL database, failing loudly if it cannot be reached.
pub async fn postgres() -> Option<Database> {
    let url = pg_url()?;
    Some(
        Database::open(&url)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {url}: {e}")),
    )
}

/// Opens PostgreSQL with options.
pub async fn postgres_with(f: impl FnOnce(DatabaseOptions) -> DatabaseOptions) -> Option<Database> {
    let url = pg_url()?;
    Some(
        f(DatabaseOptions::new(&url))
            .open()
            .await
            .expect("PostgreSQL reachable"),
    )
}

/// A fresh SQLite file in a temporary directory (kept alive by the returned guard).
pub async fn sqlite() -> (Database, tempfile::TempDir) {
    sqlite_with(|o| o).await
}

/// A fresh SQLite file with options.
pub async fn sqlite_with(
    f: impl FnOnce(DatabaseOptions) -> DatabaseOptions,
) -> (Database, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("test.db").display());
    let db = f(DatabaseOptions::new(url))
        .open()
        .await
        .expect("open SQLite");
    (db, dir)
}

/// A table name no other test uses, so tests can share one PostgreSQL database.
pub fn unique(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Picks the DDL for the database's dialect.
pub fn by_dialect<'a>(db: &Database, sqlite: &'a str, postgres: &'a str) -> &'a str {
    match db.dialect() {
        Dialect::Sqlite => sqlite,
        Dialect::Postgres => postgres,
        _ => unreachable!("both backends are built for tests"),
    }
}

/// Runs `async fn name(db: Database)` once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let (db, _dir) = $crate::common::sqlite().await;
                super::$name(db).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(db) = $crate::common::postgres().await {
                    super::$name(db).await
                }
            }
        }
    )*};
}

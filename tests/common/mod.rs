//! Shared test helpers: real databases for every test.
#![allow(dead_code)]

pub mod adk_tables;
pub mod overrun;
pub mod proxy;

use std::sync::atomic::{AtomicUsize, Ordering};

use session_pool::prelude::*;
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

/// A new table `(id BIGINT PRIMARY KEY, n BIGINT NOT NULL)` holding the row `(1, 0)`, its
/// name from `prefix`: a row for tests to lock and count on.
pub async fn counter_table(db: &Database, prefix: &str) -> String {
    let name = unique(prefix);
    let mut s = db.session();
    s.create().await.unwrap();
    for sql in [
        format!("CREATE TABLE {name} (id BIGINT PRIMARY KEY, n BIGINT NOT NULL)"),
        format!("INSERT INTO {name} VALUES (1, 0)"),
    ] {
        s.execute_update(&sql, &[]).await.unwrap();
    }
    name
}

/// On `s`: a transaction adds 1 to the row of `name` (a [`counter_table`]), runs `then`,
/// and commits; all of it cut off at `cut`, which is to fall while the COMMIT waits.
pub async fn cut_off_at_commit(
    s: &mut session_pool::Session,
    name: &str,
    then: &[&str],
    cut: std::time::Duration,
) {
    let res = tokio::time::timeout(cut, async {
        let mut tx = s.transaction().await?;
        tx.execute_update(&format!("UPDATE {name} SET n = n + 1 WHERE id = 1"), &[])
            .await?;
        for sql in then {
            tx.execute_update(sql, &[]).await?;
        }
        tx.commit().await
    })
    .await;
    assert!(res.is_err(), "the COMMIT did not wait: {res:?}");
}

/// `url` (a PostgreSQL URL) connecting as `user`, without its password or parameters.
pub fn as_user(url: &str, user: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    format!("{scheme}://{user}@{host}")
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

/// A PostgreSQL database whose sessions carry a unique `application_name`, so a test can
/// count and kill exactly its own backends.
pub async fn postgres_tagged(tag: &str) -> Option<(Database, String)> {
    let app = unique(tag);
    let url = pg_url()?;
    let db = DatabaseOptions::new(&url)
        .application_name(&app)
        .open()
        .await
        .expect("PostgreSQL reachable");
    Some((db, app))
}

/// An admin session on the test server (not counted in any tagged database).
pub async fn pg_admin() -> Option<session_pool::Session> {
    let db = postgres().await?;
    let mut s = db.session();
    s.create().await.expect("admin session");
    Some(s)
}

/// Backends on the server with this `application_name`.
pub async fn backends(admin: &mut session_pool::Session, app: &str) -> Vec<i32> {
    admin
        .execute_sql(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1 ORDER BY pid",
            &session_pool::params![app],
        )
        .await
        .expect("pg_stat_activity")
        .rows
        .iter()
        .map(|r| r.get::<i32>("pid").expect("pid"))
        .collect()
}

/// Terminates backends and waits until they are gone.
pub async fn kill_backends(admin: &mut session_pool::Session, pids: &[i32]) {
    for &pid in pids {
        admin
            .execute_sql(
                "SELECT pg_terminate_backend($1::int)",
                &session_pool::params![pid],
            )
            .await
            .expect("pg_terminate_backend");
    }
    for _ in 0..200 {
        let mut left = 0;
        for &pid in pids {
            let rs = admin
                .execute_sql(
                    "SELECT count(*) AS n FROM pg_stat_activity WHERE pid = $1",
                    &session_pool::params![pid],
                )
                .await
                .expect("pg_stat_activity");
            left += rs.one().expect("one row").get::<i64>("n").expect("count");
        }
        if left == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("backends {pids:?} still there");
}

/// A PostgreSQL server of the test's own (for tests that stop or restart it), started with
/// `scripts/lib/pg.sh` and removed when dropped.
pub struct OwnServer {
    pub dir: String,
    pub url: String,
}

fn pg_sh(script: &str) -> std::process::Output {
    let root = env!("CARGO_MANIFEST_DIR");
    std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(". '{root}/scripts/lib/pg.sh' && {script}"))
        .output()
        .expect("bash runs")
}

impl OwnServer {
    /// Starts one; `None` (skip) only outside CI when PostgreSQL is not installed.
    pub fn start() -> Option<OwnServer> {
        pg_url()?;
        let out = pg_sh(r#"pg_start && echo "$SESSION_POOL_PGDIR $DATABASE_URL""#);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout.lines().last().unwrap_or_default().to_owned();
        match line.split_once(' ') {
            Some((dir, url)) if out.status.success() => Some(OwnServer {
                dir: dir.to_owned(),
                url: url.to_owned(),
            }),
            _ => panic!(
                "could not start a PostgreSQL server: {}",
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }

    /// Stops the server at once, as a crash would.
    pub fn stop(&self) {
        let out = pg_sh(&format!("pg_server_stop '{}'", self.dir));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts a streaming standby of this server (`pg_basebackup -R`), on a port of its own.
    pub fn start_standby(&self) -> OwnServer {
        let out = pg_sh(&format!(
            r#"d=$(pg_standby_start '{}') && echo "$d postgres://postgres@127.0.0.1:$(cat $d/port)/postgres""#,
            self.dir
        ));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout.lines().last().unwrap_or_default().to_owned();
        match line.split_once(' ') {
            Some((dir, url)) if out.status.success() => OwnServer {
                dir: dir.to_owned(),
                url: url.to_owned(),
            },
            _ => panic!(
                "could not start a standby: {}",
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }

    /// Promotes this standby to a primary.
    pub fn promote(&self) {
        let out = pg_sh(&format!("pg_promote '{}'", self.dir));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `host:port` of the server.
    pub fn host_port(&self) -> &str {
        let rest = self
            .url
            .split_once('@')
            .map_or(self.url.as_str(), |(_, r)| r);
        rest.split('/').next().unwrap_or(rest)
    }

    /// Starts the server again on the same port.
    pub fn start_again(&self) {
        let out = pg_sh(&format!("pg_server_start '{}'", self.dir));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        pg_sh(&format!("pg_server_stop '{0}'; rm -rf '{0}'", self.dir));
    }
}

/// A bound `FixedSizePool` of `size` sessions on `db`.
pub async fn fixed_pool(db: &Database, size: usize) -> session_pool::FixedSizePool {
    session_pool::FixedSizePool::builder()
        .size(size)
        .build(db)
        .await
        .expect("pool")
}

/// An ADK store on its own tables (so tests can share one PostgreSQL database), created.
pub async fn adk_store(
    db: &Database,
    config: session_pool::adk::AdkConfig,
) -> session_pool::adk::AdkStore {
    let config = config
        .session_table(unique("adk_s"))
        .events_table(unique("adk_e"))
        .app_state_table(unique("adk_a"))
        .user_state_table(unique("adk_u"));
    let store = session_pool::adk::AdkStore::new(fixed_pool(db, 4).await, config).expect("config");
    store.create_tables().await.expect("create_tables");
    store
}

/// A conversation-items store on its own tables, created.
pub async fn items_store(db: &Database) -> session_pool::items::ItemsStore {
    let config = session_pool::items::ItemsConfig::default()
        .sessions_table(unique("ag_s"))
        .messages_table(unique("ag_m"));
    let store =
        session_pool::items::ItemsStore::new(fixed_pool(db, 4).await, config).expect("config");
    store.create_tables().await.expect("create_tables");
    store
}

/// The Python interpreter of the venv holding the real Python ADK stores
/// (`tests/python/requirements.txt`), from `SESSION_POOL_PYTHON`, which `scripts/test` sets.
/// `None` (test skipped) only outside CI.
pub fn python() -> Option<std::path::PathBuf> {
    python_in("SESSION_POOL_PYTHON")
}

/// The interpreter of a venv `scripts/lib/py.sh` made, from the variable `var` it exports
/// (`SESSION_POOL_PYTHON_SQLSPEC_LATEST` and the others of SQLSpec's releases). `None`
/// (test skipped) only outside CI.
pub fn python_in(var: &str) -> Option<std::path::PathBuf> {
    match std::env::var_os(var) {
        Some(p) if std::path::Path::new(&p).exists() => Some(p.into()),
        p if in_ci() => panic!(
            "CI=true but {var} ({p:?}) is not a Python interpreter: run the tests with \
             scripts/test, which makes the venvs (scripts/lib/py.sh)"
        ),
        _ => {
            eprintln!(
                "skipping: set {var} to a venv's python with the packages of \
                 scripts/lib/py.sh installed (scripts/test does)"
            );
            None
        }
    }
}

/// Waits until a Python script started with a `go_file` is connected and waiting (it
/// writes `<go_file>.ready`; its start-up takes about a second), then lets it go by
/// writing the go file. Returns early if Python has ended: awaiting it then shows why.
pub async fn go_when_ready(
    go: &std::path::Path,
    python: &tokio::task::JoinHandle<serde_json::Value>,
) {
    if python_ready(go, python).await {
        std::fs::write(go, b"").unwrap();
    }
}

/// Waits until a Python script started with a `go_file` has written `<go_file>.ready`;
/// `false` if it ended first (awaiting it then shows why).
pub async fn python_ready(
    go: &std::path::Path,
    python: &tokio::task::JoinHandle<serde_json::Value>,
) -> bool {
    let ready = go.with_extension("ready");
    for _ in 0..3000 {
        if python.is_finished() {
            return false;
        }
        if ready.exists() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("Python did not get ready in 30 s");
}

/// Runs `tests/python/<script>` with one JSON argument and returns the JSON it prints;
/// panics with Python's stderr when it fails.
pub async fn run_python(
    python: &std::path::Path,
    script: &str,
    request: &serde_json::Value,
) -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(script);
    let out = tokio::process::Command::new(python)
        .arg(&path)
        .arg(request.to_string())
        .output()
        .await
        .unwrap_or_else(|e| panic!("running {}: {e}", python.display()));
    assert!(
        out.status.success(),
        "{script} {request} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{script} printed no JSON ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// A pooler's URL `scripts/test` exported (`PGBOUNCER_URL`, `PGBOUNCER_SMALL_URL`,
/// `PGBOUNCER_SESSION_URL`, `PGCAT_URL`…); `None` (test skipped) only outside CI.
pub fn pgbouncer(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if url.starts_with("postgres") => Some(url),
        _ if in_ci() => panic!(
            "CI=true but {var} is not set: run the tests with scripts/test, which starts \
             the poolers (PgBouncer, PgCat) in transaction mode"
        ),
        _ => {
            eprintln!("skipping: set {var} to a pooler's URL (scripts/test does)");
            None
        }
    }
}

/// A bare sqlx connection through a pooler (or to its admin console): no
/// `extra_float_digits` startup parameter (PgBouncer refuses it), no statement cache.
pub async fn pooler_conn(url: &str) -> sqlx::PgConnection {
    use sqlx::Connection;
    let opts: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
    sqlx::PgConnection::connect_with(&opts.extra_float_digits(None).statement_cache_capacity(0))
        .await
        .unwrap_or_else(|e| panic!("pooler at {url}: {e}"))
}

/// Sets one of PgBouncer's settings, in seconds, from its admin console (`admin`, a
/// [`pooler_conn`] to its `pgbouncer` database); it holds for every client until set back.
pub async fn pooler_set(admin: &mut sqlx::PgConnection, setting: &str, seconds: u32) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("SET {setting} = {seconds}")))
        .execute(admin)
        .await
        .unwrap_or_else(|e| panic!("SET {setting} on the pooler's admin console: {e}"));
}

/// `n` transactions held open at once through the pooler at `url`, each on a server
/// connection of its own; end them with [`end_held`].
pub async fn hold_server_connections(url: &str, n: usize) -> Vec<sqlx::PgConnection> {
    let mut held = Vec::new();
    for _ in 0..n {
        let mut c = pooler_conn(url).await;
        sqlx::raw_sql("BEGIN; SELECT 1")
            .execute(&mut c)
            .await
            .unwrap();
        held.push(c);
    }
    held
}

/// Rolls back and closes what [`hold_server_connections`] held.
pub async fn end_held(held: Vec<sqlx::PgConnection>) {
    use sqlx::Connection;
    for mut c in held {
        sqlx::raw_sql("ROLLBACK").execute(&mut c).await.unwrap();
        c.close().await.unwrap();
    }
}

/// The TLS-only server `scripts/test` starts (`pg_tls_start`): its URL without an
/// `sslmode`, the CA that signed its certificate, and a CA that did not.
pub struct TlsServer {
    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub url: String,
    /// The signing CA's certificate (PEM file).
    pub ca: String,
    /// Another CA's certificate, which did not sign the server's.
    pub other_ca: String,
}

/// The TLS-only server from `SESSION_POOL_PG_TLS_*`; `None` (test skipped) only outside CI.
pub fn pg_tls() -> Option<TlsServer> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    match (
        var("SESSION_POOL_PG_TLS_URL"),
        var("SESSION_POOL_PG_TLS_CA"),
        var("SESSION_POOL_PG_TLS_OTHER_CA"),
    ) {
        (Some(url), Some(ca), Some(other_ca)) => Some(TlsServer { url, ca, other_ca }),
        _ if in_ci() => panic!(
            "CI=true but SESSION_POOL_PG_TLS_URL/_CA/_OTHER_CA are not set: run the tests with \
             scripts/test, which starts a TLS-only server"
        ),
        _ => {
            eprintln!("skipping: no TLS-only server (scripts/test starts one)");
            None
        }
    }
}

/// The URL of the streaming standby of the test server that `scripts/test` starts
/// (`SESSION_POOL_REPLICA_URL`); `None` (test skipped) only outside CI.
pub fn replica_url() -> Option<String> {
    match std::env::var("SESSION_POOL_REPLICA_URL") {
        Ok(url) if url.starts_with("postgres") => Some(url),
        _ if in_ci() => panic!(
            "CI=true but SESSION_POOL_REPLICA_URL is not set: run the tests with scripts/test, \
             which starts a standby of the test server"
        ),
        _ => {
            eprintln!("skipping: set SESSION_POOL_REPLICA_URL to a standby (scripts/test does)");
            None
        }
    }
}

/// The URL of the server of the newest PostgreSQL release that `scripts/test` starts beside
/// the main one (`SESSION_POOL_PG_NEWEST_URL`), for what only newer releases have; `None`
/// (test skipped) only outside CI.
pub fn pg_newest_url() -> Option<String> {
    match std::env::var("SESSION_POOL_PG_NEWEST_URL") {
        Ok(url) if url.starts_with("postgres") => Some(url),
        _ if in_ci() => panic!(
            "CI=true but SESSION_POOL_PG_NEWEST_URL is not set: run the tests with \
             scripts/test, which starts a server of the newest PostgreSQL release"
        ),
        _ => {
            eprintln!(
                "skipping: set SESSION_POOL_PG_NEWEST_URL to a PostgreSQL 17 or later server \
                 (scripts/test does)"
            );
            None
        }
    }
}

/// `url` with a server setting for its connections only, in libpq's `options`.
pub fn with_server_setting(url: &str, setting: &str, value: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-c%20{setting}%3D{value}")
}

/// The first column of the one row `sql` returns, on `s` (any session, transaction,
/// snapshot or routed read).
pub async fn scalar<T: session_pool::FromValue>(
    s: &mut impl session_pool::ReadContext,
    sql: &str,
    params: &[session_pool::Value],
) -> T {
    s.execute_sql(sql, params)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .one()
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get::<T>(0)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// A log writer for a `tracing_subscriber::fmt` subscriber, kept for the test to read.
#[derive(Clone, Default)]
pub struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Captured {
    /// What was written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A PostgreSQL database whose connections use a fresh schema of their own (`search_path`),
/// for tables with fixed names (google-adk's `sessions`, `events`, …) that tests running
/// at the same time must not share. Returns the database, the schema and its URL.
pub async fn postgres_in_schema(prefix: &str) -> Option<(Database, String, String)> {
    let mut admin = pg_admin().await?;
    let schema = unique(prefix);
    admin
        .execute_update(&format!("CREATE SCHEMA {schema}"), &[])
        .await
        .expect("create schema");
    let url = with_server_setting(&pg_url()?, "search_path", &schema);
    let db = Database::open(&url)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {url}: {e}"));
    Some((db, schema, url))
}

//! Opening databases: URLs, names, SQLite settings, errors.
mod common;

use session_pool::prelude::*;
use session_pool::{Database, DatabaseOptions, Dialect, Error};

#[tokio::test]
async fn sqlite_file_is_created_with_wal_and_foreign_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested.db");
    assert!(!path.exists());
    let db = Database::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    assert!(path.exists(), "the file is created");
    assert_eq!(db.dialect(), Dialect::Sqlite);
    let canonical = std::fs::canonicalize(&path).unwrap();
    assert_eq!(db.name(), format!("sqlite://{}", canonical.display()));

    let mut s = db.session();
    s.create().await.unwrap();
    let mode = s
        .execute_sql("PRAGMA journal_mode", &[])
        .await
        .unwrap()
        .one()
        .unwrap();
    assert_eq!(mode.get::<String>(0).unwrap().to_lowercase(), "wal");
    let fk = s
        .execute_sql("PRAGMA foreign_keys", &[])
        .await
        .unwrap()
        .one()
        .unwrap();
    assert_eq!(fk.get::<i64>(0).unwrap(), 1);
    let busy = s
        .execute_sql("PRAGMA busy_timeout", &[])
        .await
        .unwrap()
        .one()
        .unwrap();
    assert_eq!(busy.get::<i64>(0).unwrap(), 5000);
}

#[tokio::test]
async fn in_memory_database_is_shared_by_its_sessions_only() {
    let db = Database::open("sqlite::memory:").await.unwrap();
    let mut a = db.session();
    a.create().await.unwrap();
    a.execute_update("CREATE TABLE t (id INTEGER PRIMARY KEY)", &[])
        .await
        .unwrap();
    a.execute_update("INSERT INTO t VALUES (1)", &[])
        .await
        .unwrap();
    a.delete().await.unwrap();

    // Another session sees the table although the first one is gone.
    let mut b = db.session();
    b.create().await.unwrap();
    let n = b
        .execute_sql("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .one()
        .unwrap();
    assert_eq!(n.get::<i64>(0).unwrap(), 1);

    // A second in-memory database is a different one.
    let other = Database::open("sqlite::memory:").await.unwrap();
    assert_ne!(other.name(), db.name());
    let mut c = other.session();
    c.create().await.unwrap();
    assert!(c.execute_sql("SELECT count(*) FROM t", &[]).await.is_err());
}

#[tokio::test]
async fn malformed_and_unsupported_urls_are_typed_errors() {
    for url in [
        "",
        "nonsense",
        "mysql://localhost/db",
        "postgres://u:secret@[bad/db",
        "postgres://u:secret@127.0.0.1:1/db?pgbouncer=maybe",
    ] {
        match Database::open(url).await {
            Err(Error::InvalidUrl { url: shown, reason }) => {
                assert!(!shown.contains("secret"), "password shown: {shown}");
                assert!(!reason.is_empty());
            }
            other => panic!("{url}: expected InvalidUrl, got {other:?}"),
        }
    }
}

/// The URLs Python services sharing the tables are configured with (SQLAlchemy's
/// dialect+driver form) are refused with what to write instead, not taken as aliases:
/// their SQLite paths and TLS parameters mean other things here.
#[tokio::test]
async fn sqlalchemy_urls_say_what_to_write_instead() {
    for (url, scheme) in [
        (
            "postgresql+asyncpg://u:secret@127.0.0.1/db?ssl=require",
            "postgres://",
        ),
        ("postgresql+psycopg://u@127.0.0.1/db", "postgres://"),
        ("sqlite+aiosqlite:///agent.db", "sqlite://"),
    ] {
        match Database::open(url).await {
            Err(Error::InvalidUrl { url: shown, reason }) => {
                assert!(!shown.contains("secret"), "password shown: {shown}");
                assert!(reason.contains("SQLAlchemy"), "{url}: {reason}");
                assert!(
                    reason.contains(&format!("as `{scheme}`")),
                    "{url}: {reason}"
                );
            }
            other => panic!("{url}: expected InvalidUrl, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn unreachable_server_is_a_connect_error() {
    // A port nothing listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://u:secret@127.0.0.1:{port}/db");
    let started = std::time::Instant::now();
    match DatabaseOptions::new(url)
        .connect_timeout(std::time::Duration::from_secs(5))
        .open()
        .await
    {
        Err(Error::Connect { target, .. }) => {
            assert_eq!(target, format!("postgres://127.0.0.1:{port}/db"));
            assert!(!target.contains("secret"));
        }
        other => panic!("expected Connect, got {other:?}"),
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[tokio::test]
async fn postgres_name_is_stable_and_has_no_credentials() {
    let Some(url) = common::pg_url() else { return };
    let a = Database::open(&url).await.unwrap();
    let b = Database::open(&url).await.unwrap();
    assert_eq!(a.name(), b.name());
    assert!(
        a.name().starts_with("postgres://127.0.0.1:"),
        "{}",
        a.name()
    );
    assert!(!a.name().contains('@'));
    assert_eq!(a.dialect(), Dialect::Postgres);
}

#[tokio::test]
async fn wrong_postgres_database_is_a_connect_error() {
    let Some(url) = common::pg_url() else { return };
    let base = url.rsplit_once('/').unwrap().0;
    match Database::open(&format!("{base}/no_such_database_here")).await {
        Err(Error::Connect { source, .. }) => {
            // The server's words, or PgBouncer's or PgCat's when the tests run through one.
            let msg = source.to_string();
            assert!(
                msg.contains("does not exist")
                    || msg.contains("no such database")
                    || msg.contains("No pool configured for database"),
                "{msg}"
            )
        }
        other => panic!("expected Connect, got {other:?}"),
    }
}

/// libpq's socket form with credentials (`user@/db?host=<directory>`, as Cloud SQL's proxy
/// and local servers are reached): the session connects over the server's Unix socket.
#[tokio::test]
async fn a_unix_socket_url_with_credentials_connects() {
    if common::pg_url().is_none() {
        return;
    }
    // scripts/test's server: its socket directory and port.
    let (Ok(dir), Ok(port)) = (std::env::var("SESSION_POOL_PGDIR"), std::env::var("PGPORT")) else {
        assert!(
            !common::in_ci(),
            "CI=true but SESSION_POOL_PGDIR or PGPORT is not set"
        );
        return;
    };
    let url = format!("postgres://postgres@/postgres?host={dir}&port={port}");
    let db = Database::open(&url)
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let mut s = db.session();
    s.create().await.unwrap();
    // No server address: the connection is not TCP.
    let addr: Option<String> = common::scalar(&mut s, "SELECT inet_server_addr()::text", &[]).await;
    assert_eq!(addr, None);
}

/// An IPv6 literal in brackets reaches the address (sqlx kept the brackets and failed to
/// resolve `[::1]`): a listener on `::1` sees the connection.
#[tokio::test]
async fn a_bracketed_ipv6_host_is_connected_to() {
    let listener = tokio::net::TcpListener::bind("[::1]:0")
        .await
        .expect("IPv6 loopback (::1) for this test");
    let port = listener.local_addr().unwrap().port();
    let accepted = tokio::spawn(async move { listener.accept().await.is_ok() });
    // The listener is not PostgreSQL: opening fails, after connecting.
    let url = format!("postgres://u@[::1]:{port}/db");
    let err = DatabaseOptions::new(&url)
        .connect_timeout(std::time::Duration::from_secs(2))
        .open()
        .await
        .expect_err("not a PostgreSQL server");
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(!err.to_string().contains("lookup"), "{err}");
    assert!(accepted.await.unwrap(), "nothing connected to [::1]:{port}");
}

/// libpq's `connect_timeout=<seconds>` in the URL bounds the connection (here to a host
/// that accepts and then says nothing) instead of the 10 s default; a malformed one is an
/// invalid URL.
#[tokio::test]
async fn a_urls_connect_timeout_bounds_a_silent_server() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accepts, holds the socket open, never answers.
    let held = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
        drop(socket);
    });
    let started = std::time::Instant::now();
    let err = Database::open(&format!(
        "postgres://u@127.0.0.1:{port}/db?connect_timeout=2"
    ))
    .await
    .expect_err("a silent server");
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    // 2 s asked, against the 10 s default: well under the default either way.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(8),
        "{err}"
    );
    held.abort();

    let err = Database::open("postgres://u@127.0.0.1:1/db?connect_timeout=soon")
        .await
        .expect_err("malformed");
    assert!(matches!(err, Error::InvalidUrl { .. }), "{err:?}");
}

/// A SQLite file in a directory that does not exist: a Connect error that names the
/// directory (SQLite's own is only "unable to open database file"), and nothing created.
#[tokio::test]
async fn a_sqlite_file_in_a_missing_directory_names_the_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("not-yet");
    let url = format!("sqlite://{}/app.db", missing.display());
    let err = Database::open(&url).await.expect_err("no such directory");
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(err.to_string().contains("not-yet"), "{err}");
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert!(!missing.exists());
    // Once it exists, the same URL opens.
    std::fs::create_dir(&missing).unwrap();
    Database::open(&url).await.unwrap();
}

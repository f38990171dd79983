//! Opening a database (its URL read, its server probed, its replicas opened) and its
//! sessions' connections.

use std::sync::Arc;
use std::time::Duration;

use super::{Database, DatabaseOptions, Inner, Target};
use crate::error::{Error, Result};
use crate::schema::SchemaCache;

#[cfg(feature = "sqlite")]
use sqlx::ConnectOptions;
use sqlx::Connection;
#[cfg(feature = "sqlite")]
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};

/// libpq's `connect_timeout` URL parameter: whole seconds per host, at least 2 (1 reads as
/// 2); zero or less waits as long as the connection takes.
#[cfg(feature = "postgres")]
fn libpq_connect_timeout(value: &str) -> std::result::Result<Duration, String> {
    match value.trim().parse::<i64>() {
        Ok(s) if s <= 0 => Ok(Duration::MAX),
        Ok(s) => Ok(Duration::from_secs(s.max(2) as u64)),
        Err(_) => Err(format!(
            "connect_timeout={value}: expected whole seconds (libpq's form, e.g. 10)"
        )),
    }
}

/// `url` without its query parameter `key`, and that parameter's value.
#[cfg(feature = "postgres")]
fn take_param(url: &str, key: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_owned(), None);
    };
    let mut value = None;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| match pair.split_once('=') {
            Some((k, v)) if k == key => {
                value = Some(v.to_owned());
                false
            }
            None if *pair == key => {
                value = Some("true".to_owned());
                false
            }
            _ => true,
        })
        .collect();
    if kept.is_empty() {
        (base.to_owned(), value)
    } else {
        (format!("{base}?{}", kept.join("&")), value)
    }
}

/// Removes the password from a URL so it can be shown.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}{path}")
        }
        _ => url.to_owned(),
    }
}

impl Database {
    pub(super) async fn open_with(mut opts: DatabaseOptions) -> Result<Database> {
        let replica_urls = std::mem::take(&mut opts.replicas);
        let mut replicas = Vec::with_capacity(replica_urls.len());
        for url in replica_urls {
            if !url.starts_with("postgres") || !opts.url.starts_with("postgres") {
                return Err(Error::InvalidUrl {
                    url: redact(&url),
                    reason: "replicas are PostgreSQL standbys of a PostgreSQL primary".into(),
                });
            }
            let replica = DatabaseOptions {
                url,
                ..opts.clone()
            };
            // Not probed: a replica down at start must not keep the application from
            // starting; reads skip it until it answers.
            replicas.push(Database::open_primary(replica, false).await?);
        }
        let mut db = Database::open_primary(opts, true).await?;
        let inner = Arc::get_mut(&mut db.inner).expect("not shared yet");
        *inner.replica_down.get_mut() = vec![None; replicas.len()];
        inner.replicas = replicas;
        Ok(db)
    }

    /// Opens `opts.url`; `probe` checks that a PostgreSQL server answers.
    async fn open_primary(opts: DatabaseOptions, probe: bool) -> Result<Database> {
        #[cfg(not(feature = "postgres"))]
        let _ = probe;
        let shown = redact(&opts.url);
        let invalid = |reason: String| Error::InvalidUrl {
            url: shown.clone(),
            reason,
        };
        let scheme = opts.url.split(':').next().unwrap_or("");
        match scheme {
            #[cfg(feature = "sqlite")]
            "sqlite" => {
                let parsed: SqliteConnectOptions = opts
                    .url
                    .parse()
                    .map_err(|e: sqlx::Error| invalid(e.to_string()))?;
                let in_memory = parsed.get_filename().to_string_lossy().starts_with("file:")
                    || opts.url.contains(":memory:")
                    || opts.url.contains("mode=memory");
                let mut options = parsed
                    .create_if_missing(true)
                    .foreign_keys(true)
                    .busy_timeout(opts.sqlite_busy_timeout);
                if !in_memory {
                    options = options
                        .journal_mode(SqliteJournalMode::Wal)
                        .synchronous(SqliteSynchronous::Normal);
                }
                let path = options.get_filename().to_path_buf();
                // SQLite creates the file, not its directory, and then says only "unable to
                // open database file".
                if !in_memory
                    && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
                    && !dir.is_dir()
                {
                    return Err(Error::Connect {
                        target: shown.clone(),
                        source: sqlx::Error::Io(std::io::Error::new(
                            std::io::ErrorKind::NotFound,
                            format!(
                                "the directory {} of the SQLite file does not exist: create it \
                                 first (SQLite creates the file, not its directory)",
                                dir.display()
                            ),
                        )),
                    });
                }
                let first =
                    connect_timeout(&shown, opts.connect_timeout, options.connect()).await?;
                let name = if in_memory {
                    format!("sqlite::memory:{}", path.display())
                } else {
                    let abs = std::fs::canonicalize(&path).unwrap_or(path);
                    format!("sqlite://{}", abs.display())
                };
                let keeper = if in_memory {
                    Some(parking_lot::Mutex::new(first))
                } else {
                    // The first connection created the file and switched it to WAL; later
                    // sessions open their own.
                    first.close().await.map_err(crate::error::from_sqlx)?;
                    None
                };
                let telemetry = crate::telemetry::DbMeta {
                    system: "sqlite",
                    namespace: name.strip_prefix("sqlite://").unwrap_or(&name).to_owned(),
                    address: None,
                    port: None,
                    query_text: opts.trace_query_text,
                };
                Ok(Database::from_inner(Inner {
                    name,
                    target: Target::Sqlite(Box::new(options)),
                    connect_timeout: opts.connect_timeout,
                    check_timeout: opts.check_timeout,
                    statement_timeout: opts.statement_timeout,
                    pooler: crate::pooler::PoolerMode::new(Some(false)),
                    #[cfg(feature = "postgres")]
                    signals: Default::default(),
                    replicas: Vec::new(),
                    replica_down: Default::default(),
                    telemetry,
                    schema: SchemaCache::default(),
                    schema_changes: Default::default(),
                    _keeper: keeper,
                }))
            }
            #[cfg(feature = "postgres")]
            "postgres" | "postgresql" => {
                let (url, pgbouncer) = take_param(&opts.url, "pgbouncer");
                let transaction_pooler = match pgbouncer.as_deref() {
                    None => opts.transaction_pooler,
                    Some("true" | "1" | "on" | "yes") => Some(true),
                    Some("false" | "0" | "off" | "no") => Some(false),
                    Some(other) => {
                        return Err(invalid(format!(
                            "pgbouncer={other}: expected true or false"
                        )));
                    }
                };
                let (url, url_timeout) = take_param(&url, "connect_timeout");
                let per_host = match url_timeout.as_deref() {
                    None => opts.connect_timeout,
                    Some(v) => libpq_connect_timeout(v).map_err(invalid)?,
                };
                let (url, attrs) = take_param(&url, "target_session_attrs");
                let mut hosts = crate::hosts::parse(&url, attrs.as_deref()).map_err(invalid)?;
                for options in &mut hosts.options {
                    // Poolers refuse startup parameters they do not know (PgBouncer's
                    // default `ignore_startup_parameters` is empty), and it only shapes text
                    // output.
                    let mut o = options.clone().extra_float_digits(None);
                    if transaction_pooler == Some(true) {
                        o = o.statement_cache_capacity(0);
                    }
                    if o.get_application_name().is_none() {
                        o = o.application_name(&opts.application_name);
                    }
                    *options = o;
                }
                let options = hosts.options[0].clone();
                let name = format!(
                    "postgres://{}/{}",
                    hosts.addresses(),
                    options.get_database().unwrap_or(options.get_username())
                );
                let whole = per_host.saturating_mul(hosts.options.len() as u32);
                if probe {
                    let (conn, _) =
                        connect_timeout(&name, whole, crate::hosts::connect(&hosts, per_host))
                            .await?;
                    conn.close().await.map_err(crate::error::from_sqlx)?;
                }
                let telemetry = crate::telemetry::DbMeta {
                    system: "postgresql",
                    namespace: options
                        .get_database()
                        .unwrap_or(options.get_username())
                        .to_owned(),
                    address: Some(options.get_host().to_owned()),
                    port: Some(options.get_port()),
                    query_text: opts.trace_query_text,
                };
                Ok(Database::from_inner(Inner {
                    name,
                    target: Target::Postgres(hosts),
                    connect_timeout: whole,
                    check_timeout: opts.check_timeout,
                    statement_timeout: opts.statement_timeout,
                    pooler: crate::pooler::PoolerMode::new(transaction_pooler),
                    signals: Default::default(),
                    replicas: Vec::new(),
                    replica_down: Default::default(),
                    telemetry,
                    schema: SchemaCache::default(),
                    schema_changes: Default::default(),
                    #[cfg(feature = "sqlite")]
                    _keeper: None,
                }))
            }
            "" => Err(invalid(
                "the URL has no scheme; use sqlite:// or postgres://".into(),
            )),
            // SQLAlchemy's dialect+driver URLs, as Python services sharing the tables are
            // configured with. Not taken as aliases: their paths (`sqlite:///relative.db`)
            // and parameters (asyncpg's `ssl=`) differ from libpq's and sqlx's.
            other if other.contains('+') => Err(invalid(format!(
                "`{other}://` is a SQLAlchemy URL (dialect+driver); this crate takes libpq's \
                 `postgres://` and sqlx's `sqlite://`: write the scheme as `{}://`, check \
                 the parameters (`sslmode=`, not asyncpg's `ssl=`), and for SQLite the path \
                 (`sqlite:///abs/path.db` here, `sqlite:////abs/path.db` in SQLAlchemy)",
                if other.starts_with("sqlite") {
                    "sqlite"
                } else {
                    "postgres"
                }
            ))),
            other => Err(invalid(format!(
                "unsupported scheme `{other}`; this build supports {}",
                supported_schemes()
            ))),
        }
    }

    fn from_inner(inner: Inner) -> Database {
        tracing::debug!(target: "session_pool::database", name = %inner.name, "database opened");
        Database {
            inner: Arc::new(inner),
        }
    }

    /// Opens one new connection (unbounded: the caller bounds the whole session setup),
    /// and says which host it went to (see [`Backend`](super::Backend)).
    pub(crate) async fn connect(&self) -> Result<(crate::conn::Conn, usize)> {
        let name = &self.inner.name;
        let failed = |e| connect_error(name, e);
        match &self.inner.target {
            #[cfg(feature = "sqlite")]
            Target::Sqlite(o) => Ok((
                crate::conn::Conn::Sqlite(o.connect().await.map_err(failed)?),
                0,
            )),
            #[cfg(feature = "postgres")]
            Target::Postgres(hosts) => {
                let per_host = self.inner.connect_timeout / hosts.options.len().max(1) as u32;
                let (c, host) = crate::hosts::connect(hosts, per_host)
                    .await
                    .map_err(failed)?;
                let conn = if self.inner.pooler.pooled() {
                    crate::conn::Conn::PgPooled(c)
                } else {
                    crate::conn::Conn::Postgres(c)
                };
                Ok((conn, host))
            }
        }
    }

    /// Creates a session's connection and readies it, bounded as a whole by the connect
    /// timeout.
    pub(crate) async fn bounded_connect<T>(
        &self,
        setup: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let timeout = self.inner.connect_timeout;
        match tokio::time::timeout(timeout, setup).await {
            Ok(res) => res,
            Err(_) => Err(Error::Connect {
                target: self.inner.name.clone(),
                source: timed_out(timeout),
            }),
        }
    }
}

fn supported_schemes() -> &'static str {
    match (cfg!(feature = "sqlite"), cfg!(feature = "postgres")) {
        (true, true) => "sqlite:// and postgres://",
        (true, false) => "sqlite:// (enable the `postgres` feature for postgres://)",
        (false, true) => "postgres:// (enable the `sqlite` feature for sqlite://)",
        (false, false) => "nothing: enable the `sqlite` or `postgres` feature",
    }
}

async fn connect_timeout<C>(
    target: &str,
    timeout: Duration,
    fut: impl Future<Output = std::result::Result<C, sqlx::Error>>,
) -> Result<C> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(source)) => Err(connect_error(target, source)),
        Err(_) => Err(Error::Connect {
            target: target.to_owned(),
            source: timed_out(timeout),
        }),
    }
}

/// A failed connection attempt: [`Error::TooManyConnections`] when the server or a pooler
/// has none to spare, else [`Error::Connect`].
fn connect_error(target: &str, source: sqlx::Error) -> Error {
    match crate::error::classify(&source) {
        crate::error::Class::Overloaded { .. } => Error::TooManyConnections {
            message: crate::error::describe(&source).1,
            source: Some(source),
        },
        _ => Error::Connect {
            target: target.to_owned(),
            source,
        },
    }
}

fn timed_out(timeout: Duration) -> sqlx::Error {
    sqlx::Error::Io(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("no session within {timeout:?}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[cfg(feature = "postgres")]
    #[test]
    fn the_pgbouncer_parameter_is_taken_out_of_the_url() {
        use super::take_param;
        let t = |u: &str| take_param(u, "pgbouncer");
        assert_eq!(t("postgres://h/db"), ("postgres://h/db".into(), None));
        assert_eq!(
            t("postgres://h/db?pgbouncer=true"),
            ("postgres://h/db".into(), Some("true".into()))
        );
        assert_eq!(
            t("postgres://h/db?sslmode=disable&pgbouncer=false&application_name=x"),
            (
                "postgres://h/db?sslmode=disable&application_name=x".into(),
                Some("false".into())
            )
        );
        assert_eq!(
            t("postgres://h/db?pgbouncer"),
            ("postgres://h/db".into(), Some("true".into()))
        );
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn connect_timeout_reads_as_libpq_reads_it() {
        use super::libpq_connect_timeout as t;
        use std::time::Duration;
        assert_eq!(t("10"), Ok(Duration::from_secs(10)));
        assert_eq!(t("1"), Ok(Duration::from_secs(2)));
        assert_eq!(t("0"), Ok(Duration::MAX));
        assert_eq!(t("-5"), Ok(Duration::MAX));
        assert!(t("1.5").unwrap_err().contains("connect_timeout=1.5"));
        assert!(t("ten").is_err());
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("postgres://u:secret@h:5/db"),
            "postgres://u:***@h:5/db"
        );
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("sqlite::memory:"), "sqlite::memory:");
    }
}

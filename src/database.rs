//! `Database`: where sessions come from.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::dialect::Dialect;
use crate::error::{Error, Result};
use crate::schema::SchemaCache;

#[cfg(feature = "postgres")]
use sqlx::postgres::PgConnection;
#[cfg(feature = "sqlite")]
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection};

/// How to open a [`Database`]: a URL plus tuning. Start with [`DatabaseOptions::new`].
#[derive(Debug, Clone)]
#[must_use]
pub struct DatabaseOptions {
    url: String,
    sqlite_busy_timeout: Duration,
    connect_timeout: Duration,
    check_timeout: Duration,
    statement_timeout: Option<Duration>,
    trace_query_text: bool,
    application_name: String,
    transaction_pooler: Option<bool>,
    replicas: Vec<String>,
}

impl DatabaseOptions {
    /// Options for `url`, with the defaults: SQLite busy timeout 5 s, connect timeout 10 s,
    /// check timeout 5 s, no statement timeout, PostgreSQL `application_name`
    /// `session-pool` (unless the URL sets one).
    pub fn new(url: impl Into<String>) -> Self {
        DatabaseOptions {
            url: url.into(),
            sqlite_busy_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(10),
            check_timeout: Duration::from_secs(5),
            statement_timeout: None,
            trace_query_text: false,
            application_name: "session-pool".to_owned(),
            transaction_pooler: None,
            replicas: Vec::new(),
        }
    }

    /// How long a SQLite statement waits on a lock held by another connection before it fails
    /// as [`Error::Aborted`] (SQLITE_BUSY). Zero makes conflicts surface at once.
    pub fn sqlite_busy_timeout(mut self, timeout: Duration) -> Self {
        self.sqlite_busy_timeout = timeout;
        self
    }

    /// How long creating a session may take, all of it (connecting, authenticating, learning
    /// its backend pid, assuming its role), before it fails with [`Error::Connect`]. On
    /// PostgreSQL, a URL's `connect_timeout=<seconds>` (libpq's parameter, per host, at
    /// least 2) takes its place.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long a check may take: [`Session::exists`](crate::Session::exists),
    /// [`Session::ping`](crate::Session::ping), the probes of a pool's ping round, the
    /// rollback of an abandoned transaction, and the wait for a cancelled statement to
    /// stop. Past it the session counts as lost, as it does against a server that stopped
    /// answering. Default 5 s.
    pub fn check_timeout(mut self, timeout: Duration) -> Self {
        self.check_timeout = timeout;
        self
    }

    /// Cancels any statement that runs longer than `timeout` (default: none), as asyncpg's
    /// `command_timeout` does, with [`Error::StatementTimeout`]; the session stays usable.
    ///
    /// - PostgreSQL: the server's `statement_timeout`, set when each session is created
    ///   (so it also bounds statements run through [`Session::connection`](crate::Session::connection)).
    ///   If the server does not answer within the timeout plus the check timeout (a hung
    ///   network), the session is dropped as lost.
    /// - SQLite: an interrupt from the connection's progress handler.
    ///
    /// [`ReadContext::with_timeout`](crate::ReadContext::with_timeout) sets one per call.
    pub fn statement_timeout(mut self, timeout: Duration) -> Self {
        self.statement_timeout = Some(timeout);
        self
    }

    /// Puts each statement's text in its tracing span (`db.query.text`); off by default,
    /// since statements may carry what should not be logged.
    pub fn trace_query_text(mut self, on: bool) -> Self {
        self.trace_query_text = on;
        self
    }

    /// PostgreSQL `application_name` of the sessions, when the URL does not set one.
    pub fn application_name(mut self, name: impl Into<String>) -> Self {
        self.application_name = name.into();
        self
    }

    /// PostgreSQL through a transaction-mode pooler (PgBouncer's `pool_mode = transaction`,
    /// Supavisor, Neon's pooled endpoint), where consecutive transactions of one client
    /// connection may run on different server connections. Also set by the URL parameter
    /// `?pgbouncer=true` (as Prisma spells it); `false` (or `?pgbouncer=false`) says there
    /// is none.
    ///
    /// Default: found out. A pooler that keeps prepared statements working in transaction
    /// mode by renaming them (PgBouncer 1.21 and later with `max_prepared_statements`, on
    /// by default since 1.24) gives no error to tell it is there, so until one is
    /// declared either way each new session first asks the server whether its server
    /// connection holds any prepared statement but the one it runs (in the statement that
    /// learns its backend pid, before it sets anything): its own renamed, or another
    /// client's. If so, that session and every later one run in this mode, and a
    /// warning says to add `?pgbouncer=true`. A pooler that passes statement names
    /// through (PgBouncer before 1.21, or 1.21–1.23 with their default
    /// `max_prepared_statements = 0`; PgCat without its statement cache) is found that way
    /// on a server connection another client used, and otherwise by the first statement it
    /// refuses (a session's statement prepared on one server connection is missing on
    /// another): the database goes over to this mode, every session before
    /// its next statement, and the refused statement runs again (in a transaction, it is
    /// a retryable [`Error::Aborted`], which `run_in_transaction` runs again); a warning
    /// says to add `?pgbouncer=true`. Until then sessions run in the direct mode on shared
    /// server connections, so declare the pooler where a
    /// [`statement_timeout`](DatabaseOptions::statement_timeout) is set (each direct
    /// session sets it on the server connection it starts on). A session with a
    /// [`database_role`](crate::SessionOptions) cannot go over and fails with
    /// [`Error::UndeclaredPooler`], which names the fix. Session-mode pooling renames
    /// nothing and keeps the direct mode.
    ///
    /// In this mode:
    ///
    /// - Each statement is one simple-protocol message, its parameters written into the
    ///   text as typed, escaped literals (`E'…'::text`, `'42'::int8`…; see the crate's
    ///   tests for the round trips): one round trip, no prepared statement, nothing that
    ///   spans two protocol Syncs. Results come back in text form, which reads into the
    ///   same [`Value`](crate::Value)s (floats exactly on PostgreSQL 12 and later).
    /// - Sessions set nothing on the server at creation or release (no `statement_timeout`,
    ///   no reset): such settings would land on a shared server connection. A statement
    ///   timeout ([`statement_timeout`](DatabaseOptions::statement_timeout) or
    ///   [`with_timeout`](crate::ReadContext::with_timeout)) is sent with each statement as
    ///   `SET LOCAL statement_timeout` in the same message, so the server cancels it.
    /// - A [`database_role`](crate::SessionOptions) is [`Error::Unsupported`]: connect as
    ///   that role instead.
    /// - A session is a link to the pooler, not to a server backend: `exists()` and
    ///   `ping()` check that link (the pooler connects to the server per transaction), and
    ///   sessions have no backend pid.
    /// - Transactions, snapshots, batches, `run_in_transaction` and the stores work as
    ///   elsewhere: a transaction holds one server connection from `BEGIN` to the end.
    /// - Each statement's text starts with a comment naming a random key of the session's
    ///   own (`/* session-pool 0123456789abcdef */`), by which a statement cut off by a
    ///   dropped future is found in `pg_stat_activity` and cancelled.
    ///
    /// Statement texts are read as `standard_conforming_strings = on` reads them (the
    /// default since PostgreSQL 9.1) to find the `$n` placeholders. sqlx's startup
    /// parameter `extra_float_digits` is never sent, in any mode, so PgBouncer's default
    /// `ignore_startup_parameters` accepts the connection.
    pub fn transaction_pooler(mut self, on: bool) -> Self {
        self.transaction_pooler = Some(on);
        self
    }

    /// Adds a read replica of this PostgreSQL database (a streaming standby; call once per
    /// replica). Reads with a [`Staleness`](crate::Staleness) bound go to a replica that is
    /// fresh enough, through [`Session::read_at`](crate::Session::read_at),
    /// [`Session::snapshot_at`](crate::Session::snapshot_at) and the stores'
    /// `with_staleness`; writes and strong reads stay on this database. Each replica is
    /// opened with these same options (its URL may carry its own parameters).
    pub fn replica(mut self, url: impl Into<String>) -> Self {
        self.replicas.push(url.into());
        self
    }

    /// Parses the URL, checks that the database can be reached (creating a SQLite file if it
    /// is missing) and returns the [`Database`].
    pub async fn open(self) -> Result<Database> {
        Database::open_with(self).await
    }
}

enum Target {
    #[cfg(feature = "sqlite")]
    Sqlite(Box<SqliteConnectOptions>),
    #[cfg(feature = "postgres")]
    Postgres(crate::hosts::Hosts),
}

pub(crate) struct Inner {
    name: String,
    target: Target,
    connect_timeout: Duration,
    check_timeout: Duration,
    statement_timeout: Option<Duration>,
    /// PostgreSQL through a transaction pooler: declared, or found.
    pooler: crate::pooler::PoolerMode,
    /// Cancels and terminations waiting to be sent, gathered (see `signals.rs`).
    #[cfg(feature = "postgres")]
    signals: crate::signals::Signals,
    /// Read replicas, in the order given.
    replicas: Vec<Database>,
    /// Until when each replica is skipped after it could not be reached.
    replica_down: parking_lot::Mutex<Vec<Option<std::time::Instant>>>,
    telemetry: crate::telemetry::DbMeta,
    pub(crate) schema: SchemaCache,
    /// Stale statements met by its sessions (`session/prepared.rs`).
    schema_changes: crate::session::SchemaChanges,
    /// Keeps an in-memory SQLite database alive while the `Database` lives, so that its
    /// sessions share it even when none is open.
    #[cfg(feature = "sqlite")]
    _keeper: Option<parking_lot::Mutex<SqliteConnection>>,
}

/// A database that sessions connect to (Spanner's `Database`). Cheap to clone.
///
/// ```no_run
/// # async fn demo() -> session_pool::Result<()> {
/// use session_pool::Database;
/// let db = Database::open("sqlite://app.db").await?;          // a file, created if missing
/// let mem = Database::open("sqlite::memory:").await?;         // in-memory, shared by its sessions
/// let pg = Database::open("postgres://user@localhost/app").await?;
/// println!("{}", db.name());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Database {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Database")
            .field("name", &self.inner.name)
            .field("dialect", &self.dialect())
            .finish()
    }
}

/// A PostgreSQL backend a session runs on: which of the database's hosts, and its pid
/// there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Backend {
    pub(crate) host: usize,
    pub(crate) pid: i32,
}

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
    /// Opens `url` with default [`DatabaseOptions`].
    ///
    /// URLs: `sqlite://path/to/file.db` (created if missing), `sqlite::memory:` (one
    /// in-memory database shared by all sessions of this `Database`), `postgres://…` or
    /// `postgresql://…`. A malformed URL is [`Error::InvalidUrl`]; an unreachable server
    /// is [`Error::Connect`].
    pub async fn open(url: &str) -> Result<Database> {
        DatabaseOptions::new(url).open().await
    }

    async fn open_with(mut opts: DatabaseOptions) -> Result<Database> {
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

    /// A stable resource name: `sqlite:///abs/path.db`, `sqlite::memory:…` or
    /// `postgres://host:port/dbname` (never a password).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Which SQL dialect this database speaks.
    pub fn dialect(&self) -> Dialect {
        match self.inner.target {
            #[cfg(feature = "sqlite")]
            Target::Sqlite(_) => Dialect::Sqlite,
            #[cfg(feature = "postgres")]
            Target::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Forgets the primary-key and index columns learned for `read` and mutations; call it
    /// after changing a table's key or indexes under a live `Database`.
    pub fn clear_schema_cache(&self) {
        self.inner.schema.clear();
    }

    /// The count of stale statements its sessions met, which each session's statement
    /// cache follows.
    pub(crate) fn schema_changes(&self) -> &crate::session::SchemaChanges {
        &self.inner.schema_changes
    }

    /// How long a check (exists, ping, rollback of an abandoned transaction) may take.
    pub(crate) fn check_timeout(&self) -> Duration {
        self.inner.check_timeout
    }

    /// What tracing spans say about this database.
    pub(crate) fn telemetry(&self) -> &crate::telemetry::DbMeta {
        &self.inner.telemetry
    }

    /// The database-wide statement timeout, if any.
    /// The read replicas ([`DatabaseOptions::replica`]), each a database of its own.
    pub fn replicas(&self) -> &[Database] {
        &self.inner.replicas
    }

    /// Whether replica `i` may be tried: not marked down in the last second.
    #[cfg(feature = "postgres")]
    pub(crate) fn replica_up(&self, i: usize) -> bool {
        self.inner
            .replica_down
            .lock()
            .get(i)
            .copied()
            .flatten()
            .is_none_or(|until| std::time::Instant::now() >= until)
    }

    /// Skips replica `i` for a second: it could not be reached.
    #[cfg(feature = "postgres")]
    pub(crate) fn replica_failed(&self, i: usize) {
        if let Some(slot) = self.inner.replica_down.lock().get_mut(i) {
            *slot = Some(std::time::Instant::now() + Duration::from_secs(1));
        }
    }

    /// Whether sessions go through a transaction pooler: declared
    /// ([`DatabaseOptions::transaction_pooler`], `?pgbouncer=true`), or found by a session
    /// since the database was opened.
    pub fn transaction_pooler(&self) -> bool {
        self.inner.pooler.pooled()
    }

    /// A new direct session should check whether a pooler renames its statements.
    pub(crate) fn detects_pooler(&self) -> bool {
        self.inner.pooler.detects()
    }

    /// A session found a transaction pooler: later sessions connect in the pooler mode.
    pub(crate) fn found_pooler(&self) {
        self.inner.pooler.found(&self.inner.name);
    }

    /// No pooler was declared either way (`?pgbouncer=`), so sessions may find one.
    #[cfg(feature = "postgres")]
    pub(crate) fn pooler_undeclared(&self) -> bool {
        self.inner.pooler.undeclared()
    }

    /// A session was moved to another server connection than its statements were
    /// prepared on: the sessions go over to the pooler mode.
    #[cfg(feature = "postgres")]
    pub(crate) fn found_passing_pooler(&self) {
        self.inner.pooler.found_passing(&self.inner.name);
    }

    pub(crate) fn statement_timeout(&self) -> Option<Duration> {
        self.inner.statement_timeout
    }

    /// Opens one new connection (unbounded: the caller bounds the whole session setup),
    /// and says which host it went to (see [`Backend`]).
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

    /// Asks the server to cancel what `backend` is running (PostgreSQL
    /// `pg_cancel_backend`, from a connection of its own to the same host, which sqlx's
    /// lack of a cancel request makes necessary). Returns whether the server found it.
    #[cfg(feature = "postgres")]
    pub(crate) async fn cancel_backend(&self, backend: Backend) -> Result<bool> {
        let pid = format!("SELECT {}::int4 AS pid", backend.pid);
        self.signal_backend("pg_cancel_backend", backend.host, pid)
            .await
    }

    /// Ends `backend` (PostgreSQL `pg_terminate_backend`): its transaction rolls back and
    /// its locks go. Returns whether the server found it.
    #[cfg(feature = "postgres")]
    pub(crate) async fn terminate_backend(&self, backend: Backend) -> Result<bool> {
        let pid = format!("SELECT {}::int4 AS pid", backend.pid);
        self.signal_backend("pg_terminate_backend", backend.host, pid)
            .await
    }

    /// Cancels the statement with the mark `mark` running through the pooler (see
    /// [`Mark`](crate::pooler::Mark)). Returns whether a backend was running it.
    #[cfg(feature = "postgres")]
    pub(crate) async fn cancel_marked(&self, mark: crate::pooler::Mark) -> Result<bool> {
        self.signal_backend("pg_cancel_backend", mark.host, mark.running())
            .await
    }

    /// Sends `function` (`pg_cancel_backend`, `pg_terminate_backend`) to the backends
    /// `pids` (a query) names on host `host`, from a connection of its own (a pid means
    /// nothing on another server), together with any other signals waiting (see
    /// `signals.rs`). Returns whether its batch reached any backend.
    #[cfg(feature = "postgres")]
    async fn signal_backend(
        &self,
        function: &'static str,
        host: usize,
        pids: String,
    ) -> Result<bool> {
        let queue = self.inner.signals.queue(host);
        queue
            .send(function, pids, |batch| self.signal_batch(batch))
            .await
            .map_err(|message| Error::Connect {
                target: self.inner.name.clone(),
                source: sqlx::Error::Protocol(message),
            })
    }

    /// Sends one batch of signals from a new connection to its host.
    #[cfg(feature = "postgres")]
    #[allow(irrefutable_let_patterns)] // refutable once SQLite is built too
    async fn signal_batch(
        &self,
        batch: crate::signals::Batch,
    ) -> std::result::Result<bool, String> {
        let Target::Postgres(hosts) = &self.inner.target else {
            return Ok(false);
        };
        let Some(options) = hosts.options.get(batch.host) else {
            return Ok(false);
        };
        let mut conn: PgConnection = options.connect().await.map_err(|e| e.to_string())?;
        let found: bool = sqlx::raw_sql(sqlx::AssertSqlSafe(batch.sql))
            .fetch_one(&mut conn)
            .await
            .and_then(|row| {
                use sqlx::Row;
                row.try_get::<bool, _>(0)
            })
            .map_err(|e| e.to_string())?;
        let _ = conn.close().await;
        Ok(found)
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

//! [`DatabaseSessionTables`]: the tables google-adk's own `DatabaseSessionService` keeps
//! sessions in (`sessions`, `events`, `app_states`, `user_states` and
//! `adk_internal_metadata`, schema version 1), so that a Python ADK app and this crate's
//! [`SessionService`](super::SessionService) share one database.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use parking_lot::RwLock;

use self::json_type::JsonTypes;
use super::event::{Event, JsonMap};
use crate::error::{Error, Result};
use crate::param::Param;
use crate::pool::{AbstractSessionPool, SessionCheckout, SharedPool};
use crate::session::{Context, ReadContext, WriteContext};
use crate::support::{checkout, create_idempotent, is_postgres};

mod decode;
mod event_data;
mod json_type;
mod legacy;
mod read;
mod sql;
mod write;

/// The tables of google-adk's `DatabaseSessionService` (Python: schema version 1, as
/// google-adk 1.22 and later through 2.x create them, or the legacy version 0), over any
/// [`AbstractSessionPool`].
///
/// Give it to [`SessionService::on_tables`](super::SessionService::on_tables): the service
/// then reads and writes what Python's `DatabaseSessionService(db_url=…)` does, in its
/// form, so either side may create the tables and each sees the other's sessions, events
/// and `app:` / `user:` state:
///
/// - sessions are keyed by app, user and id together; state is JSON on PostgreSQL (JSONB
///   in tables google-adk made before 2.15: both are read and written, each in its own
///   type, so a JSON column keeps key order and numbers as written) and JSON text on
///   SQLite; times are naive UTC, as SQLAlchemy stores them;
/// - in version 1, each event is kept whole in `event_data`, as pydantic's
///   `model_dump(exclude_none=True, mode="json")` writes it (fields ADK has and
///   [`Event`] does not stay in [`Event::extra`] and are written back);
/// - `app:` and `user:` keys live in `app_states` and `user_states` without their prefix;
///   creating a session makes both rows, as Python's service needs them to append;
/// - an append is a compare-and-swap on the session's `update_time`, which becomes the
///   event's timestamp, as in Python: a copy older than the stored session is
///   [`Error::StaleSession`] here and `StaleSessionError` there;
/// - `list_sessions` returns ADK's order, oldest update first.
///
/// **The legacy schema version 0** (google-adk before 1.22, and databases not migrated
/// since, which google-adk 2.x still reads and writes with a warning): one column per
/// event field and `actions` pickled. Found in the catalog and used as it is, through the
/// columns the events table has (older ADK versions made fewer); actions are written as
/// the pickle google-adk's restricted unpickler loads, and fields the table has no column
/// for are not stored, as in Python. `create_tables` adds the missing tables around it
/// and never converts it: that is `adk migrate session`.
///
/// **google-adk's `SqliteSessionService`** (`sqlite://` session URIs, `adk web`'s local
/// storage): on SQLite, version 1's tables without the metadata table and with times as
/// `REAL` Unix seconds. Found in the catalog by the sessions' `update_time` type and used
/// in that form, session ids with whitespace around them taken trimmed as that service
/// takes them; `create_tables` beside it adds no metadata table. On an empty file,
/// `create_tables` makes `DatabaseSessionService`'s form, or this one after
/// [`sqlite_session_service`](Self::sqlite_session_service).
///
/// Other schema versions are [`Error::Unsupported`]. The version is asked of the catalog
/// once, and again when a read or an append finds a column or table missing (the tables
/// dropped and made again at the other version under a running process). The table names
/// are ADK's and fixed; on PostgreSQL they are looked up in the connection's
/// `search_path`.
///
/// **Lost sessions.** Reads (`get_session`, `list_sessions`, `get_user_state`) and deletes
/// that meet a session lost to a restart or failover run once more on another, as the
/// store's do; creates and appends return the error (the first attempt may have been
/// applied: an append retried from the same copy is then refused as stale).
///
/// ```no_run
/// # async fn demo() -> session_pool::Result<()> {
/// use session_pool::adk::{DatabaseSessionTables, GetSessionConfig, SessionService};
/// use session_pool::{Database, FixedSizePool};
///
/// // The database of Python's DatabaseSessionService("sqlite+aiosqlite:///agent.db").
/// let db = Database::open("sqlite://agent.db").await?;
/// let tables = DatabaseSessionTables::new(FixedSizePool::builder().size(4).build(&db).await?);
/// tables.create_tables().await?;
/// let service = SessionService::on_tables(tables);
/// if let Some(session) = service
///     .get_session("assistant", "user_1", "a-python-session", &GetSessionConfig::default())
///     .await?
/// {
///     println!("{} events, state {:?}", session.events.len(), session.state);
/// }
/// # Ok(()) }
/// ```
pub struct DatabaseSessionTables {
    pool: SharedPool,
    /// The tables' schema and its statements, learned once (until a statement finds the
    /// tables changed) and shared with clones.
    schema: Arc<RwLock<Option<Arc<Schema>>>>,
    /// SQLite: `create_tables` on an empty file makes `SqliteSessionService`'s tables.
    sqlite_service: bool,
}

impl Clone for DatabaseSessionTables {
    fn clone(&self) -> Self {
        DatabaseSessionTables {
            pool: Arc::clone(&self.pool),
            schema: Arc::clone(&self.schema),
            sqlite_service: self.sqlite_service,
        }
    }
}

impl fmt::Debug for DatabaseSessionTables {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let schema = self.schema.read();
        let version = schema
            .as_ref()
            .map(|s| if s.legacy.is_some() { 0 } else { 1 });
        let epoch = schema.as_ref().map(|s| s.epoch);
        f.debug_struct("DatabaseSessionTables")
            .field("schema_version", &version)
            .field("sqlite_session_service", &epoch)
            .finish_non_exhaustive()
    }
}

/// Which of ADK's schemas the tables have, and the statements built for it.
#[derive(Debug)]
struct Schema {
    /// Version 0's columns; `None` for version 1.
    legacy: Option<legacy::Legacy>,
    /// SQLite: times are `REAL` Unix seconds (google-adk's `SqliteSessionService`), not
    /// SQLAlchemy's naive text.
    epoch: bool,
    /// PostgreSQL: the JSON columns' types, which the statements and their binds follow.
    types: JsonTypes,
    /// The session read: newest events first, then oldest first.
    get: [String; 2],
    /// PostgreSQL's one-statement create.
    create_pg: String,
    /// PostgreSQL's one-statement append of one event.
    append_pg: String,
    /// The event columns an insert writes after the ones every version has.
    insert_columns: String,
    /// SQLite's event insert.
    insert_sqlite: String,
}

impl Schema {
    fn new(postgres: bool, shape: Shape) -> Schema {
        let Shape {
            legacy,
            epoch,
            types,
        } = shape;
        let (element, sqlite_values) = match &legacy {
            Some(l) => (l.element(types.events), l.insert_values(7, types.events)),
            None => (sql::v1_element(postgres, types.events), "$7".to_owned()),
        };
        let insert_columns = match &legacy {
            Some(l) => l.insert_columns(),
            None => "event_data".to_owned(),
        };
        let mut schema = Schema {
            get: [
                sql::get(postgres, false, &element, types.events),
                sql::get(postgres, true, &element, types.events),
            ],
            create_pg: sql::create_pg(types),
            append_pg: String::new(),
            insert_sqlite: sql::insert_event_sqlite(&insert_columns, &sqlite_values),
            insert_columns,
            types,
            legacy,
            epoch,
        };
        schema.append_pg = schema.build_append_pg(1);
        schema
    }

    /// PostgreSQL's one-statement append of `n` events (see [`sql::append_pg`]); one
    /// event's, the common case, is built once.
    fn append_pg(&self, n: usize) -> Cow<'_, str> {
        if n == 1 {
            Cow::Borrowed(&self.append_pg)
        } else {
            Cow::Owned(self.build_append_pg(n))
        }
    }

    fn build_append_pg(&self, n: usize) -> String {
        let values = |first| match &self.legacy {
            Some(l) => l.insert_values(first, self.types.events),
            None => self.types.events.bind(first),
        };
        sql::append_pg(
            &self.insert_columns,
            &values,
            self.append_width(),
            n,
            self.types,
        )
    }

    /// How many binds each event of an append takes: id, invocation id, time and its
    /// columns' values.
    pub(super) fn append_width(&self) -> usize {
        3 + self
            .legacy
            .as_ref()
            .map_or(1, legacy::Legacy::written_count)
    }
}

/// The form the catalog found the tables in.
#[derive(Debug)]
struct Shape {
    /// Version 0's columns; `None` for version 1.
    legacy: Option<legacy::Legacy>,
    /// SQLite: times are Unix seconds (google-adk's `SqliteSessionService`).
    epoch: bool,
    /// PostgreSQL: the JSON columns' types.
    types: JsonTypes,
}

/// What the catalog says of ADK's tables.
#[derive(Debug)]
enum Found {
    /// Version 1, or 0 with its columns.
    Ready(Shape),
    /// No events table yet.
    Missing,
}

/// A session as read, with its app's and user's state.
pub(crate) struct Loaded {
    pub(crate) id: String,
    pub(crate) user_id: String,
    pub(crate) state: JsonMap,
    pub(crate) app: JsonMap,
    pub(crate) user: JsonMap,
    pub(crate) update_time: DateTime<Utc>,
    pub(crate) events: Vec<Event>,
}

impl DatabaseSessionTables {
    /// The tables on `pool`'s database. Nothing is sent until a call.
    pub fn new(pool: impl AbstractSessionPool) -> Self {
        DatabaseSessionTables {
            pool: Arc::new(pool),
            schema: Arc::default(),
            sqlite_service: false,
        }
    }

    /// On SQLite, `create_tables` on an empty file makes the tables of google-adk's
    /// `SqliteSessionService` (what Python's `sqlite://` session URIs and `adk web`'s local
    /// storage use: times as `REAL` Unix seconds, no metadata table) rather than
    /// `DatabaseSessionService`'s, for a Python app on that service to share the file.
    /// Tables already there are used in the form they have, whichever this says.
    /// PostgreSQL has only `DatabaseSessionService`'s form: there it changes nothing.
    pub fn sqlite_session_service(mut self) -> Self {
        self.sqlite_service = true;
        self
    }

    /// The pool the tables are reached through.
    pub fn pool(&self) -> &SharedPool {
        &self.pool
    }

    /// Creates the five tables and the events index if they do not exist, as Python's
    /// `DatabaseSessionService.prepare_tables` does, and records schema version 1. Running
    /// it again, or after Python made them, changes nothing. Beside a version-0 events
    /// table it adds only the missing session and state tables, as Python does; beside
    /// `SqliteSessionService`'s tables (or on an empty SQLite file after
    /// [`sqlite_session_service`](Self::sqlite_session_service)), only that service's
    /// missing tables, with no version row; tables of another version are
    /// [`Error::Unsupported`], before anything is added.
    pub async fn create_tables(&self) -> Result<()> {
        // Python's `create_all` takes no lock of ours: see `create_idempotent`.
        create_idempotent(|| self.create_tables_once()).await
    }

    async fn create_tables_once(&self) -> Result<()> {
        let mut session = checkout(&self.pool).await?;
        let postgres = is_postgres(session.database().dialect());
        let mut tx = session.transaction().await?;
        if postgres {
            // Concurrent `CREATE TABLE IF NOT EXISTS` can still collide in the catalog.
            tx.execute_sql(
                "SELECT pg_advisory_xact_lock(hashtext('session_pool.adk.database_tables'))",
                &[],
            )
            .await?;
        }
        let (v0, epoch) = match inspect(&mut tx, postgres).await? {
            Found::Ready(shape) => (shape.legacy.is_some(), shape.epoch),
            Found::Missing => (false, self.sqlite_service && !postgres),
        };
        // Version 0 and SqliteSessionService's tables have no metadata table: made empty,
        // Python would take the tables for malformed ones.
        if !v0 && !epoch {
            tx.execute_update(sql::METADATA_DDL, &[]).await?;
        }
        let ddl: &[&str] = if epoch {
            &sql::DDL_SQLITE_SERVICE
        } else {
            sql::ddl(postgres)
        };
        for statement in ddl {
            tx.execute_update(statement, &[]).await?;
        }
        if !v0 && !epoch {
            tx.execute_update(sql::mark_version(postgres), &[]).await?;
        }
        // Asked again: the tables there before keep their columns' types, the ones just
        // made have this crate's. This transaction sees what it made, so they are there.
        let Found::Ready(shape) = inspect(&mut tx, postgres).await? else {
            return Err(Error::NotFound(
                "ADK's session tables are missing right after create_tables made them".into(),
            ));
        };
        tx.commit().await?;
        *self.schema.write() = Some(Arc::new(Schema::new(postgres, shape)));
        tracing::debug!(target: "session_pool::adk", schema_version = if v0 { 0 } else { 1 },
            sqlite_session_service = epoch, "ADK session tables ready");
        Ok(())
    }

    /// A session checked out, whether it is PostgreSQL's, and the tables' schema. A
    /// session found lost while the catalog is first asked is replaced once, as reads
    /// replace theirs.
    async fn session(&self) -> Result<(SessionCheckout, bool, Arc<Schema>)> {
        let mut retried = false;
        loop {
            let mut session = checkout(&self.pool).await?;
            let postgres = is_postgres(session.database().dialect());
            match self.ensure(&mut *session, postgres).await {
                Ok(schema) => return Ok((session, postgres, schema)),
                Err(e) if e.is_lost_in_passing() && !retried => retried = true,
                Err(e) => return Err(e),
            }
        }
    }

    /// The tables' schema, asked of the catalog once (until forgotten).
    async fn ensure(&self, ctx: &mut impl Context, postgres: bool) -> Result<Arc<Schema>> {
        if let Some(schema) = self.schema.read().as_ref() {
            return Ok(Arc::clone(schema));
        }
        match Box::pin(inspect(ctx, postgres)).await? {
            Found::Ready(shape) => {
                if shape.legacy.is_some() {
                    tracing::warn!(target: "session_pool::adk",
                        "ADK's session tables are the legacy schema version 0 (pickled \
                         actions); google-adk recommends `adk migrate session`");
                }
                let schema = Arc::new(Schema::new(postgres, shape));
                *self.schema.write() = Some(Arc::clone(&schema));
                Ok(schema)
            }
            Found::Missing => Err(Error::NotFound(
                "the tables of ADK's DatabaseSessionService (sessions, events, app_states, \
                 user_states) are not in this database: call \
                 DatabaseSessionTables::create_tables, or let Python's service create them"
                    .into(),
            )),
        }
    }
}

impl DatabaseSessionTables {
    /// The id a session is kept under. On `SqliteSessionService`'s tables, as google-adk
    /// 2.x's `_resolve_session_id`: an id with whitespace around it means its trimmed form,
    /// unless a session is stored under the id as given (one migrated from
    /// `DatabaseSessionService`). Elsewhere ids are taken as given, as
    /// `DatabaseSessionService` takes them.
    async fn resolve<'i>(
        ctx: &mut impl Context,
        schema: &Schema,
        app: &str,
        user: &str,
        id: &'i str,
    ) -> Result<&'i str> {
        let trimmed = id.trim();
        if !schema.epoch || trimmed.len() == id.len() {
            return Ok(id);
        }
        let stored = ctx
            .exec()
            .await?
            .map_rows(
                sql::SESSION_EXISTS,
                &[Param::Text(app), Param::Text(user), Param::Text(id)],
                |r| r.get::<i64>(0),
            )
            .await?;
        Ok(if stored.is_empty() { trimmed } else { id })
    }

    /// Runs `call`, and once more when it failed on a table or column missing, or a column
    /// of another type, while a schema was known: the tables were dropped and made again
    /// (perhaps at the other version, or JSON where they were JSONB) under this process, so
    /// the catalog is asked again. The failed statement wrote nothing, so the second run is
    /// safe for writes too.
    async fn relearning<T, F>(&self, call: impl FnMut() -> F) -> Result<T>
    where
        F: std::future::Future<Output = Result<T>>,
    {
        let forget = || self.schema.write().take().is_some();
        crate::support::relearning("events", forget, call).await
    }
}

/// What the catalog says of the tables: version 1 or 0, or none yet; any other schema is
/// [`Error::Unsupported`].
async fn inspect(ctx: &mut impl Context, postgres: bool) -> Result<Found> {
    let rows = ctx
        .exec()
        .await?
        .map_rows(sql::columns(postgres), &[] as &[Param<'_>], |r| {
            Ok((
                r.get::<String>(0)?,
                r.get::<String>(1)?,
                r.get::<Option<String>>(2)?.unwrap_or_default(),
            ))
        })
        .await?;
    let has = |table: &str, column: &str| rows.iter().any(|(t, c, _)| t == table && c == column);
    let has_table = |table: &str| rows.iter().any(|(t, _, _)| t == table);
    let types = if postgres {
        JsonTypes::of(
            rows.iter()
                .map(|(t, c, d)| (t.as_str(), c.as_str(), d.as_str())),
        )
    } else {
        JsonTypes::default()
    };
    if has_table("adk_internal_metadata") {
        let version = ctx
            .exec()
            .await?
            .map_rows(sql::VERSION, &[] as &[Param<'_>], |r| r.get::<String>(0))
            .await?;
        match version.first().map(String::as_str) {
            Some("1") => {}
            Some(other) => {
                return Err(Error::Unsupported(format!(
                    "ADK's session tables are at schema version {other}; this crate reads \
                     and writes versions 1 (google-adk 1.22 to 2.x) and 0 (earlier)"
                )));
            }
            // Python's `prepare_tables` adds the row to a table it just made.
            None if !has_table("events") => return Ok(Found::Missing),
            None => {
                return Err(Error::Unsupported(
                    "adk_internal_metadata holds no schema_version: the ADK session \
                     tables are malformed (Python's DatabaseSessionService refuses them too)"
                        .into(),
                ));
            }
        }
    } else if has("events", "actions") && !has("events", "event_data") {
        // Version 0, as Python's `_get_schema_version_impl` tells it.
        for column in ["author", "timestamp", "invocation_id", "session_id"] {
            if !has("events", column) {
                return Err(not_adk("events", column, 0));
            }
        }
        return Ok(Found::Ready(Shape {
            legacy: Some(legacy::Legacy::new(postgres, |c| has("events", c))),
            epoch: false,
            types,
        }));
    }
    if !has_table("events") && !has_table("sessions") {
        return Ok(Found::Missing);
    }
    for (table, column) in [
        ("sessions", "app_name"),
        ("sessions", "update_time"),
        ("events", "event_data"),
        ("events", "session_id"),
    ] {
        if !has(table, column) {
            return Err(not_adk(table, column, 1));
        }
    }
    // Version 1's columns and no metadata table: on SQLite, google-adk's
    // `SqliteSessionService` (what `sqlite://` URIs and `adk web`'s local storage use),
    // whose times are `REAL` Unix seconds.
    let epoch = !postgres
        && !has_table("adk_internal_metadata")
        && ctx
            .exec()
            .await?
            .map_rows(sql::SESSION_TIME_TYPE, &[] as &[Param<'_>], |r| {
                r.get::<String>(0)
            })
            .await?
            .first()
            .is_some_and(|t| t.eq_ignore_ascii_case("REAL"));
    Ok(Found::Ready(Shape {
        legacy: None,
        epoch,
        types,
    }))
}

fn not_adk(table: &str, column: &str, version: u8) -> Error {
    Error::Unsupported(format!(
        "the `{table}` table has no `{column}` column: it is not the table of ADK's \
         DatabaseSessionService (schema version {version}). Point this pool at another \
         database or schema"
    ))
}

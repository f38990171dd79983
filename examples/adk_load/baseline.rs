//! `--driver sqlx`: the same conversations written straight on sqlx, as a careful
//! hand-written program would: one `PgConnection` per worker (as many as the pool size, as
//! pgbench's clients), no pool, the store's exact SQL, typed binds, and rows decoded with
//! `try_get` into the same records. The crate is not in the path, so the difference between
//! this and `--driver store` in the same run is what the pool and the store cost.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

use serde_json::json;
use session_pool::adk::EventRecord;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, Connection, PgConnection, Row};

use super::{APP, Params, Result, Tally, event};

const SESSION_COLUMNS: &str = "id, app_name, user_id, state, create_time, update_time";
const EVENT_COLUMNS: &str = "id, session_id, app_name, user_id, invocation_id, author, \
     actions, long_running_tool_ids_json, branch, timestamp, content, grounding_metadata, \
     custom_metadata, partial, turn_complete, interrupted, error_code, error_message";
const EVENT_VALUES: &str = "$1::varchar, $2::varchar, $3::varchar, $4::varchar, $5::varchar, \
     $6::varchar, $7::bytea, $8::text, $9::varchar, $10::timestamptz, $11::jsonb, $12::jsonb, \
     $13::jsonb, $14::boolean, $15::boolean, $16::boolean, $17::varchar, $18::varchar";
const SET_STATE: &str = "update_time = GREATEST(CURRENT_TIMESTAMP, update_time + interval \
     '1 microsecond')";

/// The statements `AdkStore` sends on PostgreSQL with the default table names (taken from
/// the server's statement log), built once and shared without copying.
struct Sql {
    create: Arc<str>,
    append: Arc<str>,
    update: Arc<str>,
    append_and_update: Arc<str>,
    recent: Arc<str>,
    get: Arc<str>,
    list: Arc<str>,
    delete: Arc<str>,
}

impl Sql {
    fn new() -> Sql {
        let (s, e) = ("\"adk_sessions\"", "\"adk_events\"");
        Sql {
            create: format!(
                "INSERT INTO {s} (id, app_name, user_id, state) VALUES ($1, $2, $3, $4) \
                 RETURNING {SESSION_COLUMNS}"
            )
            .into(),
            append: format!(
                "INSERT INTO {e} ({EVENT_COLUMNS}) SELECT {EVENT_VALUES} FROM {s} \
                 WHERE id = $2 AND app_name = $3 AND user_id = $4"
            )
            .into(),
            update: format!(
                "UPDATE {s} SET state = $1::jsonb, {SET_STATE} WHERE id = $2 \
                 RETURNING {SESSION_COLUMNS}"
            )
            .into(),
            append_and_update: format!(
                "WITH s AS (UPDATE {s} SET state = $19::jsonb, {SET_STATE} WHERE id = $2 \
                 AND app_name = $3 AND user_id = $4 AND update_time = $20 RETURNING \
                 {SESSION_COLUMNS}), e AS (INSERT INTO {e} ({EVENT_COLUMNS}) SELECT \
                 {EVENT_VALUES} FROM s RETURNING 1) SELECT * FROM s"
            )
            .into(),
            recent: format!(
                "SELECT {EVENT_COLUMNS} FROM (SELECT {EVENT_COLUMNS} FROM {e} WHERE \
                 session_id = $1 ORDER BY timestamp DESC, id DESC LIMIT $2) AS newest \
                 ORDER BY timestamp ASC, id ASC"
            )
            .into(),
            get: format!("SELECT {SESSION_COLUMNS} FROM {s} WHERE id = $1").into(),
            list: format!(
                "SELECT {SESSION_COLUMNS} FROM {s} WHERE app_name = $1 AND user_id = $2 \
                 ORDER BY update_time DESC, id DESC"
            )
            .into(),
            delete: format!("DELETE FROM {s} WHERE id = $1").into(),
        }
    }
}

type Query<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// Binds the 18 event columns in [`EVENT_COLUMNS`] order.
fn bind_event<'q>(q: Query<'q>, e: &'q EventRecord) -> Query<'q> {
    q.bind(&e.id)
        .bind(&e.session_id)
        .bind(&e.app_name)
        .bind(&e.user_id)
        .bind(&e.invocation_id)
        .bind(&e.author)
        .bind(&e.actions)
        .bind(&e.long_running_tool_ids_json)
        .bind(&e.branch)
        .bind(e.timestamp)
        .bind(e.content.as_ref().map(Json))
        .bind(e.grounding_metadata.as_ref().map(Json))
        .bind(e.custom_metadata.as_ref().map(Json))
        .bind(e.partial)
        .bind(e.turn_complete)
        .bind(e.interrupted)
        .bind(&e.error_code)
        .bind(&e.error_message)
}

fn json(r: &PgRow, i: usize) -> sqlx::Result<Option<serde_json::Value>> {
    Ok(r.try_get::<Option<Json<serde_json::Value>>, _>(i)?
        .map(|j| j.0))
}

/// The store's `SessionRecord`, decoded the same way (the crate's records are
/// `#[non_exhaustive]`, so the baseline keeps its own of the same shape).
#[allow(dead_code)]
struct SessionRow {
    id: String,
    app_name: String,
    user_id: String,
    owner_id: Option<String>,
    state: serde_json::Value,
    create_time: chrono::DateTime<chrono::Utc>,
    update_time: chrono::DateTime<chrono::Utc>,
}

/// The store's `EventRecord`, decoded the same way.
#[allow(dead_code)]
struct EventRow {
    id: String,
    session_id: String,
    app_name: String,
    user_id: String,
    invocation_id: Option<String>,
    author: Option<String>,
    actions: Option<Vec<u8>>,
    long_running_tool_ids_json: Option<String>,
    branch: Option<String>,
    timestamp: chrono::DateTime<chrono::Utc>,
    content: Option<serde_json::Value>,
    grounding_metadata: Option<serde_json::Value>,
    custom_metadata: Option<serde_json::Value>,
    partial: Option<bool>,
    turn_complete: Option<bool>,
    interrupted: Option<bool>,
    error_code: Option<String>,
    error_message: Option<String>,
}

fn session(r: &PgRow) -> sqlx::Result<SessionRow> {
    Ok(SessionRow {
        id: r.try_get(0)?,
        app_name: r.try_get(1)?,
        user_id: r.try_get(2)?,
        owner_id: None,
        state: r.try_get::<Json<serde_json::Value>, _>(3)?.0,
        create_time: r.try_get(4)?,
        update_time: r.try_get(5)?,
    })
}

fn event_record(r: &PgRow) -> sqlx::Result<EventRow> {
    Ok(EventRow {
        id: r.try_get(0)?,
        session_id: r.try_get(1)?,
        app_name: r.try_get(2)?,
        user_id: r.try_get(3)?,
        invocation_id: r.try_get(4)?,
        author: r.try_get(5)?,
        actions: r.try_get(6)?,
        long_running_tool_ids_json: r.try_get(7)?,
        branch: r.try_get(8)?,
        timestamp: r.try_get(9)?,
        content: json(r, 10)?,
        grounding_metadata: json(r, 11)?,
        custom_metadata: json(r, 12)?,
        partial: r.try_get(13)?,
        turn_complete: r.try_get(14)?,
        interrupted: r.try_get(15)?,
        error_code: r.try_get(16)?,
        error_message: r.try_get(17)?,
    })
}

/// One conversation, statement for statement what `super::conversation` makes the store send.
async fn conversation(
    c: &mut PgConnection,
    sql: &Sql,
    p: &Params,
    run: &str,
    conv: usize,
    tally: &mut Tally,
) -> Result<()> {
    let q = |s: &Arc<str>| sqlx::query(AssertSqlSafe(Arc::clone(s)));
    let session_id = format!("{run}-{conv}");
    let user_id = format!("user-{conv}");
    let mut state = json!({"stage": "start", "turns": 0});
    let row = q(&sql.create)
        .bind(&session_id)
        .bind(APP)
        .bind(&user_id)
        .bind(Json(&state))
        .fetch_one(&mut *c)
        .await?;
    let mut version = session(&row)?.update_time;
    tally.ops += 1;
    for turn in 0..p.turns {
        let started = Instant::now();
        let user = event(&session_id, &user_id, turn, "user", conv);
        let n = bind_event(q(&sql.append), &user).execute(&mut *c).await?;
        if n.rows_affected() != 1 {
            return Err(format!("session {session_id} is missing").into());
        }
        state["turns"] = json!(turn + 1);
        state["stage"] = json!(format!("turn-{turn}"));
        let reply = event(&session_id, &user_id, turn, "assistant", conv);
        if p.atomic {
            let row = bind_event(q(&sql.append_and_update), &reply)
                .bind(Json(&state))
                .bind(version)
                .fetch_optional(&mut *c)
                .await?
                .ok_or_else(|| format!("session {session_id} changed under the load"))?;
            version = session(&row)?.update_time;
        } else {
            bind_event(q(&sql.append), &reply).execute(&mut *c).await?;
            let row = q(&sql.update)
                .bind(Json(&state))
                .bind(&session_id)
                .fetch_one(&mut *c)
                .await?;
            session(&row)?;
        }
        let rows = q(&sql.recent)
            .bind(&session_id)
            .bind(20_i64)
            .fetch_all(&mut *c)
            .await?;
        let recent = rows
            .iter()
            .map(event_record)
            .collect::<sqlx::Result<Vec<_>>>()?;
        if recent.len() != (2 * (turn + 1)).min(20) {
            return Err(format!("session {session_id}: {} recent events", recent.len()).into());
        }
        tally.turn_micros.push(started.elapsed().as_micros() as u64);
        tally.ops += if p.atomic { 3 } else { 4 };
    }
    let stored = q(&sql.get)
        .bind(&session_id)
        .fetch_optional(&mut *c)
        .await?;
    if stored
        .map(|r| session(&r))
        .transpose()?
        .is_none_or(|s| s.state != state)
    {
        return Err(format!("session {session_id} lost its state").into());
    }
    let listed = q(&sql.list)
        .bind(APP)
        .bind(&user_id)
        .fetch_all(&mut *c)
        .await?;
    listed
        .iter()
        .map(session)
        .collect::<sqlx::Result<Vec<_>>>()?;
    q(&sql.delete).bind(&session_id).execute(&mut *c).await?;
    tally.ops += 3;
    Ok(())
}

/// Runs `p.conversations` conversations on `p.pool_size` connections; returns every
/// worker's tally. The tables must exist.
pub(crate) async fn run(
    url: &str,
    p: &Params,
    run: &str,
    done: Arc<AtomicUsize>,
) -> Result<Vec<Tally>> {
    let sql = Arc::new(Sql::new());
    let next = Arc::new(AtomicUsize::new(0));
    let mut connections = Vec::with_capacity(p.pool_size);
    for _ in 0..p.pool_size {
        connections.push(PgConnection::connect(url).await?);
    }
    let workers: Vec<_> = connections
        .into_iter()
        .map(|mut c| {
            let (sql, p, run) = (Arc::clone(&sql), p.clone(), run.to_owned());
            let (next, done) = (Arc::clone(&next), Arc::clone(&done));
            tokio::spawn(async move {
                let mut tally = Tally::default();
                loop {
                    let conv = next.fetch_add(1, Relaxed);
                    if conv >= p.conversations {
                        c.close().await?;
                        return Ok::<_, super::BoxError>(tally);
                    }
                    conversation(&mut c, &sql, &p, &run, conv, &mut tally).await?;
                    done.fetch_add(1, Relaxed);
                }
            })
        })
        .collect();
    let mut tallies = Vec::with_capacity(workers.len());
    for w in workers {
        tallies.push(w.await??);
    }
    Ok(tallies)
}

//! `adk-session` 2.3's `PostgresSessionService` or `SqliteSessionService` through the turn
//! an ADK runner makes, as `adk_load --mode service` runs it through this crate: per
//! conversation `create`; per turn `get` with the newest 20 events, then two
//! `append_event`s carrying state deltas (`user:` every turn, `app:` on the first); then a
//! final `get` to see what was persisted. Prints one JSON line.
//!
//! ```sh
//! adk-session-turns postgres|sqlite URL CONVERSATIONS CONCURRENCY POOL_SIZE TURNS
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use adk_core::{Content, Event, Part};
use adk_session::{CreateRequest, GetRequest, SessionService};
use serde_json::{Value, json};
use tokio::sync::Mutex;

const APP: &str = "peers_app";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn event(author: &str, conv: usize, turn: usize, delta: HashMap<String, Value>) -> Event {
    let mut e = Event::new(format!("inv-{turn}"));
    e.author = author.into();
    e.llm_response.content = Some(Content {
        role: if author == "user" { "user" } else { "model" }.into(),
        parts: vec![Part::Text {
            text: format!(
                "Turn {turn} of conversation {conv}: a message of ordinary length, about what \
                 an assistant and a user say to each other in one exchange, padded to a \
                 typical size."
            ),
        }],
    });
    e.actions.state_delta = delta;
    e
}

fn get(user: &str, session: &str, recent: Option<usize>) -> GetRequest {
    GetRequest {
        app_name: APP.into(),
        user_id: user.into(),
        session_id: session.into(),
        num_recent_events: recent,
        after: None,
    }
}

#[derive(Default)]
struct Check {
    sessions: usize,
    state_persisted: usize,
    user_scope_persisted: usize,
    newest_events: usize,
}

async fn conversation(
    service: &dyn SessionService,
    run: &str,
    conv: usize,
    turns: usize,
    latencies: &Mutex<Vec<f64>>,
    check: &Mutex<Check>,
) -> Result<(), BoxError> {
    let session_id = format!("{run}-{conv}");
    let user_id = format!("user-{conv}");
    service
        .create(CreateRequest {
            app_name: APP.into(),
            user_id: user_id.clone(),
            session_id: Some(session_id.clone()),
            state: HashMap::from([
                ("stage".to_string(), json!("start")),
                ("turns".to_string(), json!(0)),
            ]),
        })
        .await?;
    for turn in 0..turns {
        let started = Instant::now();
        let session = service.get(get(&user_id, &session_id, Some(20))).await?;
        let _ = session.events().len();
        let asked = event(
            "user",
            conv,
            turn,
            HashMap::from([("user:last_turn".into(), json!(turn))]),
        );
        service.append_event(&session_id, asked).await?;
        let mut delta = HashMap::from([
            ("turns".to_string(), json!(turn + 1)),
            ("stage".to_string(), json!(format!("turn-{turn}"))),
        ]);
        if turn == 0 {
            delta.insert("app:last_conversation".into(), json!(conv));
        }
        let mut answer = event("assistant", conv, turn, delta);
        answer.llm_response.turn_complete = true;
        service.append_event(&session_id, answer).await?;
        latencies.lock().await.push(started.elapsed().as_secs_f64());
    }
    let stored = service.get(get(&user_id, &session_id, None)).await?;
    let state = stored.state().all();
    // Which 2 events come back: the newest (the last turn's) or the oldest.
    let recent = service.get(get(&user_id, &session_id, Some(2))).await?;
    let n = recent.events().len();
    let last = (n > 0).then(|| recent.events().at(n - 1)).flatten();
    let mut c = check.lock().await;
    c.sessions += 1;
    c.state_persisted += usize::from(state.get("turns") == Some(&json!(turns)));
    c.user_scope_persisted += usize::from(state.get("user:last_turn") == Some(&json!(turns - 1)));
    c.newest_events +=
        usize::from(last.is_some_and(|e| e.invocation_id == format!("inv-{}", turns - 1)));
    Ok(())
}

// The same `/proc` readers as `adk_load`.
#[path = "../../examples/adk_load/proc_stats.rs"]
mod proc_stats;
use proc_stats::{cpu_seconds, peak_rss};

fn peak_rss_mib() -> Option<f64> {
    peak_rss().map(|b| (b as f64 / 1048576.0 * 10.0).round() / 10.0)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let [
        _,
        backend,
        url,
        conversations,
        concurrency,
        pool_size,
        turns,
    ] = args.as_slice()
    else {
        return Err("usage: adk-session-turns postgres|sqlite URL CONVERSATIONS CONCURRENCY POOL_SIZE TURNS".into());
    };
    let (conversations, concurrency, pool_size, turns): (usize, usize, u32, usize) = (
        conversations.parse()?,
        concurrency.parse()?,
        pool_size.parse()?,
        turns.parse()?,
    );
    let service: Arc<dyn SessionService> = match backend.as_str() {
        "postgres" => {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(pool_size)
                .min_connections(pool_size)
                .connect(url)
                .await?;
            let s = adk_session::PostgresSessionService::from_pool(pool);
            s.migrate().await?;
            Arc::new(s)
        }
        "sqlite" => {
            let opts: sqlx::sqlite::SqliteConnectOptions = url.parse()?;
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(pool_size)
                .min_connections(pool_size)
                .connect_with(
                    // The settings `Database::open` gives this crate's SQLite files.
                    opts.create_if_missing(true)
                        .foreign_keys(true)
                        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                        .synchronous(sqlx::sqlite::SqliteSynchronous::Normal),
                )
                .await?;
            let s = adk_session::SqliteSessionService::from_pool(pool);
            s.migrate().await?;
            Arc::new(s)
        }
        other => return Err(format!("unknown backend {other}").into()),
    };
    let run = format!("{:x}", chrono::Utc::now().timestamp_micros());
    let next = Arc::new(AtomicUsize::new(0));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let check = Arc::new(Mutex::new(Check::default()));
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (service, run, next, latencies, check) = (
                service.clone(),
                run.clone(),
                next.clone(),
                latencies.clone(),
                check.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let conv = next.fetch_add(1, Ordering::Relaxed);
                    if conv >= conversations {
                        return Ok::<_, BoxError>(());
                    }
                    conversation(&*service, &run, conv, turns, &latencies, &check).await?;
                }
            })
        })
        .collect();
    for w in workers {
        w.await??;
    }
    let seconds = t0.elapsed().as_secs_f64();
    let cpu = cpu0.zip(cpu_seconds()).map(|(a, b)| b - a);
    let mut l = latencies.lock().await.clone();
    l.sort_by(f64::total_cmp);
    let n = l.len().max(1);
    let c = check.lock().await;
    let out = json!({
        "contender": format!("adk-session {backend}"),
        "turns": l.len(),
        "seconds": (seconds * 1000.0).round() / 1000.0,
        "turns_per_s": (l.len() as f64 / seconds * 10.0).round() / 10.0,
        "turn_p50_ms": (l.get(n / 2).copied().unwrap_or(0.0) * 1e6).round() / 1e3,
        "turn_p99_ms": (l.get((n * 99 / 100).min(n - 1)).copied().unwrap_or(0.0) * 1e6).round() / 1e3,
        "cpu_us_per_turn": cpu.map(|c| (c * 1e6 / n as f64 * 10.0).round() / 10.0),
        "peak_rss_mib": peak_rss_mib(),
        "persisted": {
            "sessions": c.sessions,
            "state_persisted": c.state_persisted,
            "user_scope_persisted": c.user_scope_persisted,
            "newest_events": c.newest_events,
        },
    });
    println!("{out}");
    Ok(())
}

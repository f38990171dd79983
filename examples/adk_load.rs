//! A load generator for the ADK store: many simulated agent conversations at once, through
//! one `FixedSizePool`, against `DATABASE_URL` (PostgreSQL) or an embedded SQLite file.
//!
//! Each conversation: `create_session`; per turn `append_event` (user), `append_event`
//! (model), `update_session_state`, `get_events(limit 20)`; then `get_session`,
//! `list_sessions(app, user)`, `delete_session`. Every store call is one op. With
//! `--mode atomic` a turn is `append_event` (user), `append_event_and_update_state` (model
//! event and state in one step), `get_events(limit 20)`. `--mode service` runs the turn an
//! ADK runner makes, through the `SessionService`: `get_session` with the newest 20
//! events, then two `append_event`s carrying state deltas (the user's with a `user:` key,
//! the model's with session keys, and an `app:` key on a conversation's first turn).
//!
//! ```sh
//! cargo run --release --example adk_load                     # SQLite file, temp directory
//! DATABASE_URL=postgres://… cargo run --release --example adk_load -- --mode atomic
//! cargo run --release --example adk_load -- --conversations 1000 --concurrency 64
//! ```
//!
//! Flags (or environment variables): `--conversations` (`ADK_LOAD_CONVERSATIONS`, 200),
//! `--concurrency` (`ADK_LOAD_CONCURRENCY`, 32), `--pool-size` (`ADK_LOAD_POOL_SIZE`, 10),
//! `--turns` (`ADK_LOAD_TURNS`, 10), `--mode separate|atomic|service` (`ADK_LOAD_MODE`,
//! separate),
//! `--driver store|sqlx` (`ADK_LOAD_DRIVER`, store), `--actions json|pickle`
//! (`ADK_LOAD_ACTIONS`, json), `--mode service` only: the format the service writes event
//! actions in; `pickle` is what a table shared with Python's SQLSpec store holds, and what
//! every `get_session` then decodes. `--tables seed|adk` (`ADK_LOAD_TABLES`, seed),
//! `--mode service` only: `adk` keeps the sessions in google-adk's own
//! `DatabaseSessionService` tables (`SessionService::on_tables`). `--appends
//! single|batched` (`ADK_LOAD_APPENDS`, single), `--mode service` only: `batched` stores the
//! turn's two events in one `append_events` call, as ADK's `BufferedSessionService` would.
//!
//! `--driver sqlx` (PostgreSQL only) runs the same conversations straight on sqlx, without
//! this crate: one connection per worker, as many as the pool size, the store's exact SQL
//! (see `adk_load/baseline.rs`). Run in the same session as the default, it shows what the
//! driver alone costs and what the pool and store add to it.
//!
//! It prints one JSON line on stdout: ops, seconds, ops_per_s, turns_per_s, turn_p50_ms,
//! turn_p99_ms, the CPU the run took (cpu_s, cpu_us_per_op) and the process's peak RSS; on
//! a terminal, a progress line on stderr.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use serde_json::json;
use session_pool::adk::{
    ActionsCodec, AdkConfig, AdkStore, DatabaseSessionTables, Event, EventRecord, GetSessionConfig,
    SessionService,
};
use session_pool::{Database, Dialect, FixedSizePool};

#[path = "adk_load/proc_stats.rs"]
mod proc_stats;
use proc_stats::{cpu_seconds, peak_rss};

#[path = "adk_load/baseline.rs"]
mod baseline;

/// Store and driver errors, and the load generator's own checks.
type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Result<T> = std::result::Result<T, BoxError>;

const APP: &str = "load_app";

/// The run's parameters.
#[derive(Debug, Clone)]
struct Params {
    conversations: usize,
    concurrency: usize,
    pool_size: usize,
    turns: usize,
    atomic: bool,
    /// `--mode service`: the runner's turn through the `SessionService`.
    service: bool,
    /// `--driver sqlx`: the baseline without this crate.
    raw_sqlx: bool,
    /// `--actions pickle`: event actions written as Python's stores write them.
    pickle: bool,
    /// `--tables adk`: the service on google-adk's `DatabaseSessionService` tables.
    adk_tables: bool,
    /// `--appends batched`: the turn's two events in one `append_events` call.
    batched: bool,
}

impl Params {
    fn parse() -> std::result::Result<Params, String> {
        let env = |name: &str, default: usize| -> std::result::Result<usize, String> {
            match std::env::var(name) {
                Ok(v) => v.parse().map_err(|_| format!("{name}={v} is not a count")),
                Err(_) => Ok(default),
            }
        };
        let mut p = Params {
            conversations: env("ADK_LOAD_CONVERSATIONS", 200)?,
            concurrency: env("ADK_LOAD_CONCURRENCY", 32)?,
            pool_size: env("ADK_LOAD_POOL_SIZE", 10)?,
            turns: env("ADK_LOAD_TURNS", 10)?,
            atomic: std::env::var("ADK_LOAD_MODE").is_ok_and(|m| m == "atomic"),
            service: std::env::var("ADK_LOAD_MODE").is_ok_and(|m| m == "service"),
            raw_sqlx: std::env::var("ADK_LOAD_DRIVER").is_ok_and(|d| d == "sqlx"),
            pickle: std::env::var("ADK_LOAD_ACTIONS").is_ok_and(|a| a == "pickle"),
            adk_tables: std::env::var("ADK_LOAD_TABLES").is_ok_and(|t| t == "adk"),
            batched: std::env::var("ADK_LOAD_APPENDS").is_ok_and(|a| a == "batched"),
        };
        let mut args = std::env::args().skip(1);
        while let Some(flag) = args.next() {
            let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
            let count = |v: String| {
                v.parse::<usize>()
                    .map_err(|_| format!("{flag} {v}: not a count"))
            };
            match flag.as_str() {
                "--conversations" => p.conversations = count(value()?)?,
                "--concurrency" => p.concurrency = count(value()?)?,
                "--pool-size" => p.pool_size = count(value()?)?,
                "--turns" => p.turns = count(value()?)?,
                "--mode" => match value()?.as_str() {
                    "separate" => (p.atomic, p.service) = (false, false),
                    "atomic" => (p.atomic, p.service) = (true, false),
                    "service" => (p.atomic, p.service) = (false, true),
                    other => {
                        return Err(format!(
                            "--mode {other}: expected separate, atomic or service"
                        ));
                    }
                },
                "--driver" => match value()?.as_str() {
                    "store" => p.raw_sqlx = false,
                    "sqlx" => p.raw_sqlx = true,
                    other => return Err(format!("--driver {other}: expected store or sqlx")),
                },
                "--actions" => match value()?.as_str() {
                    "json" => p.pickle = false,
                    "pickle" => p.pickle = true,
                    other => return Err(format!("--actions {other}: expected json or pickle")),
                },
                "--tables" => match value()?.as_str() {
                    "seed" => p.adk_tables = false,
                    "adk" => p.adk_tables = true,
                    other => return Err(format!("--tables {other}: expected seed or adk")),
                },
                "--appends" => match value()?.as_str() {
                    "single" => p.batched = false,
                    "batched" => p.batched = true,
                    other => {
                        return Err(format!("--appends {other}: expected single or batched"));
                    }
                },
                "-h" | "--help" => {
                    return Err("usage: adk_load [--conversations N] [--concurrency N] \
                                [--pool-size N] [--turns N] [--mode separate|atomic|service] \
                                [--driver store|sqlx] [--actions json|pickle] \
                                [--tables seed|adk] [--appends single|batched]"
                        .into());
                }
                other => return Err(format!("unknown flag {other} (try --help)")),
            }
        }
        if p.service && p.raw_sqlx {
            return Err(
                "--mode service runs the crate's SessionService: not with --driver sqlx".into(),
            );
        }
        if p.pickle && !p.service {
            return Err("--actions pickle: only --mode service writes event actions".into());
        }
        if p.adk_tables && (!p.service || p.pickle) {
            return Err("--tables adk: only with --mode service and JSON actions".into());
        }
        if p.batched && !p.service {
            return Err("--appends batched: only with --mode service".into());
        }
        if p.concurrency == 0 || p.pool_size == 0 {
            return Err("--concurrency and --pool-size must be at least 1".into());
        }
        Ok(p)
    }

    /// Store calls in one conversation.
    fn ops_per_conversation(&self) -> usize {
        let per_turn = match (self.atomic, self.service, self.batched) {
            (_, true, true) => 2,
            (true, _, _) | (_, true, false) => 3,
            _ => 4,
        };
        1 + self.turns * per_turn + 3
    }

    fn mode(&self) -> &'static str {
        match (self.atomic, self.service) {
            (_, true) => "service",
            (true, _) => "atomic",
            _ => "separate",
        }
    }
}

/// What one worker measured.
#[derive(Debug, Default)]
struct Tally {
    ops: usize,
    turn_micros: Vec<u64>,
}

/// About 250 bytes of JSON, as a chat message of ADK's `Content` shape.
fn content(role: &str, conversation: usize, turn: usize) -> serde_json::Value {
    json!({
        "role": role,
        "parts": [{
            "text": format!(
                "Turn {turn} of conversation {conversation}: a message of ordinary length, \
                 about what an assistant and a user say to each other in one exchange, \
                 padded to a typical size for a chat turn."
            )
        }]
    })
}

fn event(session_id: &str, user_id: &str, turn: usize, author: &str, conv: usize) -> EventRecord {
    let role = if author == "user" { "user" } else { "model" };
    let mut e = EventRecord::new(
        format!("{session_id}-{turn}-{role}"),
        session_id,
        APP,
        user_id,
    );
    e.invocation_id = Some(format!("inv-{turn}"));
    e.author = Some(author.to_owned());
    e.content = Some(content(role, conv, turn));
    e.turn_complete = (role == "model").then_some(true);
    e
}

/// One whole conversation; returns the ops done.
async fn conversation(
    store: &AdkStore,
    p: &Params,
    run: &str,
    conv: usize,
    tally: &mut Tally,
) -> Result<()> {
    let session_id = format!("{run}-{conv}");
    let user_id = format!("user-{conv}");
    let mut state = json!({"stage": "start", "turns": 0});
    let created = store
        .create_session(&session_id, APP, &user_id, &state, None)
        .await?;
    let mut version = created.update_time;
    tally.ops += 1;
    for turn in 0..p.turns {
        let started = Instant::now();
        store
            .append_event(&event(&session_id, &user_id, turn, "user", conv))
            .await?;
        state["turns"] = json!(turn + 1);
        state["stage"] = json!(format!("turn-{turn}"));
        let reply = event(&session_id, &user_id, turn, "assistant", conv);
        if p.atomic {
            let record = store
                .append_event_and_update_state(&reply, &state, Some(version))
                .await?;
            version = record.update_time;
        } else {
            store.append_event(&reply).await?;
            store.update_session_state(&session_id, &state).await?;
        }
        let recent = store.get_events(&session_id, None, Some(20)).await?;
        if recent.len() != (2 * (turn + 1)).min(20) {
            return Err(format!(
                "session {session_id} has {} recent events after turn {turn}",
                recent.len()
            )
            .into());
        }
        tally.turn_micros.push(started.elapsed().as_micros() as u64);
        tally.ops += if p.atomic { 3 } else { 4 };
    }
    let stored = store.get_session(&session_id).await?;
    if stored.is_none_or(|s| s.state != state) {
        return Err(format!("session {session_id} lost its state").into());
    }
    store.list_sessions(APP, Some(&user_id)).await?;
    store.delete_session(&session_id).await?;
    tally.ops += 3;
    Ok(())
}

/// One whole conversation through the `SessionService`, as an ADK runner drives it.
async fn service_conversation(
    service: &SessionService,
    p: &Params,
    run: &str,
    conv: usize,
    tally: &mut Tally,
) -> Result<()> {
    let session_id = format!("{run}-{conv}");
    let user_id = format!("user-{conv}");
    let initial = json!({"stage": "start", "turns": 0});
    service
        .create_session(
            APP,
            &user_id,
            initial.as_object().cloned(),
            Some(&session_id),
        )
        .await?;
    tally.ops += 1;
    let newest = GetSessionConfig::default().num_recent_events(20);
    for turn in 0..p.turns {
        let started = Instant::now();
        let mut session = service
            .get_session(APP, &user_id, &session_id, &newest)
            .await?
            .ok_or_else(|| format!("session {session_id} vanished"))?;
        if session.events.len() != (2 * turn).min(20) {
            return Err(format!(
                "session {session_id} has {} recent events before turn {turn}",
                session.events.len()
            )
            .into());
        }
        let asked = Event::new("user")
            .with_content(content("user", conv, turn))
            .with_invocation_id(format!("inv-{turn}"))
            .with_state_delta("user:last_turn", json!(turn));
        let mut answer = Event::new("assistant")
            .with_content(content("model", conv, turn))
            .with_invocation_id(format!("inv-{turn}"))
            .with_state_delta("turns", json!(turn + 1))
            .with_state_delta("stage", json!(format!("turn-{turn}")));
        if turn == 0 {
            answer = answer.with_state_delta("app:last_conversation", json!(conv));
        }
        answer.turn_complete = Some(true);
        if p.batched {
            service
                .append_events(&mut session, vec![asked, answer])
                .await?;
            tally.ops += 2;
        } else {
            service.append_event(&mut session, asked).await?;
            service.append_event(&mut session, answer).await?;
            tally.ops += 3;
        }
        tally.turn_micros.push(started.elapsed().as_micros() as u64);
    }
    let stored = service
        .get_session(
            APP,
            &user_id,
            &session_id,
            &GetSessionConfig::default().num_recent_events(0),
        )
        .await?
        .ok_or_else(|| format!("session {session_id} vanished"))?;
    if stored.state.get("turns") != Some(&json!(p.turns))
        || (p.turns > 0 && stored.state.get("user:last_turn") != Some(&json!(p.turns - 1)))
    {
        return Err(format!("session {session_id} lost its state: {:?}", stored.state).into());
    }
    service.list_sessions(APP, Some(&user_id)).await?;
    service.delete_session(APP, &user_id, &session_id).await?;
    tally.ops += 3;
    Ok(())
}

fn percentile_ms(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i] as f64 / 1000.0
}

/// Runs the conversations through the store: `concurrency` workers share the pool.
async fn through_store(
    store: &AdkStore,
    tables: Option<&DatabaseSessionTables>,
    p: &Params,
    run: &str,
    done: &Arc<AtomicUsize>,
) -> Result<Vec<Tally>> {
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..p.concurrency)
        .map(|_| {
            let (store, p, run) = (store.clone(), p.clone(), run.to_owned());
            let (next, done) = (Arc::clone(&next), Arc::clone(done));
            let service = match tables {
                Some(t) => SessionService::on_tables(t.clone()),
                None => SessionService::new(store.clone()),
            };
            tokio::spawn(async move {
                let mut tally = Tally::default();
                loop {
                    let conv = next.fetch_add(1, Relaxed);
                    if conv >= p.conversations {
                        return Ok::<_, BoxError>(tally);
                    }
                    if p.service {
                        service_conversation(&service, &p, &run, conv, &mut tally).await?;
                    } else {
                        conversation(&store, &p, &run, conv, &mut tally).await?;
                    }
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

#[tokio::main]
async fn main() -> Result<()> {
    let p = match Params::parse() {
        Ok(p) => p,
        Err(msg) => {
            eprintln!("adk_load: {msg}");
            std::process::exit(2);
        }
    };
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| {
        let path = std::env::temp_dir().join("session-pool-adk-load.db");
        format!("sqlite://{}", path.display())
    });
    let db = Database::open(&url).await?;
    let pool = FixedSizePool::builder()
        .size(p.pool_size)
        .default_timeout(Duration::from_secs(60))
        .build(&db)
        .await?;
    let codec = if p.pickle {
        ActionsCodec::Pickle
    } else {
        ActionsCodec::Json
    };
    let store = AdkStore::new(pool.clone(), AdkConfig::default().actions_codec(codec))?;
    let tables = p
        .adk_tables
        .then(|| DatabaseSessionTables::new(pool.clone()));
    match &tables {
        Some(t) => t.create_tables().await?,
        None => store.create_tables().await?,
    }

    let run = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    let done = Arc::new(AtomicUsize::new(0));
    let progress = std::io::stderr().is_terminal().then(|| {
        let done = Arc::clone(&done);
        let total = p.conversations;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                eprint!("\radk_load: {}/{total} conversations", done.load(Relaxed));
                let _ = std::io::stderr().flush();
            }
        })
    });

    if p.raw_sqlx && db.dialect() != Dialect::Postgres {
        eprintln!("adk_load: --driver sqlx needs DATABASE_URL=postgres://…");
        std::process::exit(2);
    }
    let started = Instant::now();
    let cpu_before = cpu_seconds();
    let tallies = if p.raw_sqlx {
        // The pool only created the tables; the baseline opens its own connections.
        pool.close().await;
        baseline::run(&url, &p, &run, Arc::clone(&done)).await?
    } else {
        through_store(&store, tables.as_ref(), &p, &run, &done).await?
    };
    let mut ops = 0;
    let mut turns = Vec::new();
    for tally in tallies {
        ops += tally.ops;
        turns.extend(tally.turn_micros);
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu_before.zip(cpu_seconds()).map(|(a, b)| b - a);
    if let Some(task) = progress {
        task.abort();
        eprintln!(
            "\radk_load: {}/{} conversations",
            done.load(Relaxed),
            p.conversations
        );
    }
    debug_assert_eq!(ops, p.conversations * p.ops_per_conversation());
    turns.sort_unstable();
    let line = json!({
        "backend": format!("{:?}", db.dialect()).to_lowercase(),
        "mode": p.mode(),
        "driver": if p.raw_sqlx { "sqlx" } else { "store" },
        "actions": if p.pickle { "pickle" } else { "json" },
        "tables": if p.adk_tables { "adk" } else { "seed" },
        "appends": if p.batched { "batched" } else { "single" },
        "conversations": p.conversations,
        "concurrency": if p.raw_sqlx { p.pool_size } else { p.concurrency },
        "pool_size": p.pool_size,
        "turns": p.turns,
        "ops": ops,
        "seconds": (seconds * 1000.0).round() / 1000.0,
        "ops_per_s": (ops as f64 / seconds).round(),
        "turns_per_s": (turns.len() as f64 / seconds).round(),
        "turn_p50_ms": percentile_ms(&turns, 0.50),
        "turn_p99_ms": percentile_ms(&turns, 0.99),
        "cpu_s": cpu,
        "cpu_us_per_op": cpu.map(|c| (c * 1e6 / ops as f64 * 10.0).round() / 10.0),
        "peak_rss_bytes": peak_rss(),
        "peak_rss_mib": peak_rss().map(|b| (b as f64 / 1048576.0 * 10.0).round() / 10.0),
    });
    println!("{line}");
    pool.close().await;
    Ok(())
}

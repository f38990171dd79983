//! A simulated agent conversation through the ADK `SessionService`: a user asks, a scripted
//! "model" answers, each turn records state deltas (with a `temp:` key that is never stored),
//! and at the end the session is read back and printed with its state and events.
//!
//! ```sh
//! cargo run --example adk_chat                        # SQLite file in the temp directory
//! DATABASE_URL=postgres://… cargo run --example adk_chat
//! ```

use serde_json::json;
use session_pool::adk::{AdkConfig, AdkStore, Event, GetSessionConfig, JsonMap, SessionService};
use session_pool::{Database, FixedSizePool, Result};

const SCRIPT: [(&str, &str, &str); 4] = [
    (
        "Hi! I'd like to plan a trip.",
        "Happy to help. Where would you like to go?",
        "greeting",
    ),
    (
        "Lisbon, in May.",
        "Lisbon in May is lovely: warm, not yet crowded.",
        "destination",
    ),
    (
        "Find me a hotel near the river.",
        "I found three hotels in Cais do Sodré.",
        "hotels",
    ),
    (
        "Book the second one.",
        "Booked: Hotel Ribeira, 12-15 May.",
        "booked",
    ),
];

#[tokio::main]
async fn main() -> Result<()> {
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| {
        let path = std::env::temp_dir().join("session-pool-adk-chat.db");
        format!("sqlite://{}", path.display())
    });
    let db = Database::open(&url).await?;
    let pool = FixedSizePool::builder().size(4).build(&db).await?;
    let store = AdkStore::new(pool.clone(), AdkConfig::default())?;
    store.create_tables().await?;
    let service = SessionService::new(store);
    println!("database  {}", db.name());

    let mut initial = JsonMap::new();
    initial.insert("language".into(), json!("en"));
    let mut session = service
        .create_session("travel_agent", "user_42", Some(initial), None)
        .await?;
    println!("session   {}", session.id);

    for (turn, (question, answer, stage)) in SCRIPT.iter().enumerate() {
        let invocation = format!("inv_{turn}");
        let user = Event::text("user", "user", question).with_invocation_id(&invocation);
        service.append_event(&mut session, user).await?;

        let mut reply = Event::text("travel_agent", "model", answer)
            .with_invocation_id(&invocation)
            .with_state_delta("stage", json!(stage))
            .with_state_delta("turns", json!(turn + 1))
            .with_state_delta("temp:draft", json!("scratch work, never stored"));
        reply.turn_complete = Some(true);
        if *stage == "booked" {
            reply =
                reply.with_state_delta("booking", json!({"hotel": "Hotel Ribeira", "nights": 3}));
        }
        service.append_event(&mut session, reply).await?;
    }

    // A streaming chunk: returned as is, neither stored nor applied.
    let mut chunk = Event::text("travel_agent", "model", "Anything el");
    chunk.partial = Some(true);
    service.append_event(&mut session, chunk).await?;

    let stored = service
        .get_session(
            "travel_agent",
            "user_42",
            &session.id,
            &GetSessionConfig::default(),
        )
        .await?
        .expect("the session was just written");
    println!(
        "\nstate     {}",
        serde_json::to_string_pretty(&stored.state).unwrap_or_default()
    );
    println!("events    {}", stored.events.len());
    for e in &stored.events {
        println!(
            "  {}  {:<13} {}{}",
            e.timestamp.format("%H:%M:%S%.6f"),
            e.author,
            e.first_text().unwrap_or(""),
            if e.actions.state_delta.is_empty() {
                String::new()
            } else {
                format!(
                    "   Δ {}",
                    serde_json::Value::Object(e.actions.state_delta.clone())
                )
            }
        );
    }
    // `temp:` keys live for the invocation, in memory only; everything else is stored.
    assert_eq!(session.state["temp:draft"], "scratch work, never stored");
    let mut held = session.state.clone();
    held.retain(|k, _| !k.starts_with(session_pool::adk::TEMP_PREFIX));
    assert_eq!(
        stored.state, held,
        "what is stored is what the service holds"
    );
    assert!(!stored.state.contains_key("temp:draft"));

    let recent = service
        .get_session(
            "travel_agent",
            "user_42",
            &session.id,
            &GetSessionConfig::default().num_recent_events(2),
        )
        .await?
        .expect("still there");
    println!("\nlast turn {} events", recent.events.len());
    println!(
        "sessions  {} for user_42",
        service
            .list_sessions("travel_agent", Some("user_42"))
            .await?
            .len()
    );
    service
        .delete_session("travel_agent", "user_42", &session.id)
        .await?;
    println!("deleted   {} (events cascade)", session.id);
    pool.close().await;
    Ok(())
}

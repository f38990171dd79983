//! One database shared with a Python ADK app: the tables of google-adk's own
//! `DatabaseSessionService`, through `SessionService::on_tables`. This side writes a
//! conversation with `app:` and `user:` state; Python's service reads it as its own, and
//! sessions Python writes read here the same way.
//!
//! ```sh
//! cargo run --example adk_with_python                  # SQLite file in the temp directory
//! DATABASE_URL=postgres://… cargo run --example adk_with_python
//! ```
//!
//! The Python side, on the same database (`pip install google-adk aiosqlite`):
//!
//! ```python
//! from google.adk.sessions import DatabaseSessionService
//! service = DatabaseSessionService(db_url="sqlite+aiosqlite:////tmp/session-pool-adk-python.db")
//! session = await service.get_session(app_name="support", user_id="ann", session_id=…)
//! ```

use serde_json::json;
use session_pool::adk::{DatabaseSessionTables, Event, GetSessionConfig, SessionService};
use session_pool::{Database, FixedSizePool, Result};

#[tokio::main]
async fn main() -> Result<()> {
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| {
        let path = std::env::temp_dir().join("session-pool-adk-python.db");
        format!("sqlite://{}", path.display())
    });
    let db = Database::open(&url).await?;
    let tables = DatabaseSessionTables::new(FixedSizePool::builder().size(4).build(&db).await?);
    // What Python's `prepare_tables` makes (or nothing, if Python made them first).
    tables.create_tables().await?;
    let service = SessionService::on_tables(tables);
    println!("database  {}  ({tables:?})", db.name(), tables = service);

    let mut session = service.create_session("support", "ann", None, None).await?;
    let asked = Event::text("user", "user", "My order has not arrived.")
        .with_invocation_id("inv_1")
        .with_state_delta("user:name", json!("Ann"));
    service.append_event(&mut session, asked).await?;
    let mut answer = Event::text("support_agent", "model", "Sorry! Let me check order 1234.")
        .with_invocation_id("inv_1")
        .with_state_delta("order", json!(1234))
        .with_state_delta("app:open_tickets", json!(1))
        .with_state_delta("temp:lookup", json!("never stored"));
    answer.turn_complete = Some(true);
    service.append_event(&mut session, answer).await?;

    let stored = service
        .get_session("support", "ann", &session.id, &GetSessionConfig::default())
        .await?
        .expect("the session was just written");
    println!("session   {}", stored.id);
    println!(
        "state     {}",
        serde_json::Value::Object(stored.state.clone())
    );
    for e in &stored.events {
        println!("  {:<14} {}", e.author, e.first_text().unwrap_or(""));
    }
    assert_eq!(stored.state["user:name"], "Ann");
    assert_eq!(stored.state["app:open_tickets"], 1);
    assert!(!stored.state.contains_key("temp:lookup"));
    println!(
        "user      {}",
        serde_json::Value::Object(service.get_user_state("support", "ann").await?)
    );

    // The app's sessions, in ADK's order (oldest update first), as Python lists them.
    let listed = service.list_sessions("support", Some("ann")).await?;
    println!("listed    {} session(s) of ann", listed.len());
    service
        .delete_session("support", "ann", &session.id)
        .await?;
    Ok(())
}

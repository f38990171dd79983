//! JSON numbers keep their exact value through the crate. Python writes floats with the
//! shortest text that reads back to the same bits (`repr`); a reader that parses them a
//! bit off (serde_json's default parser is off by one unit in the last place for about
//! one float in eight of this size) changes state values when it writes them back, and
//! event times by a microsecond. These floats are among those it misread.
mod common;

use serde_json::{Value, json};
use session_pool::Database;
use session_pool::Dialect;
use session_pool::adk::{AdkConfig, AdkStore, Event, GetSessionConfig, SessionService};
use session_pool::prelude::*;

const FLOATS: [&str; 4] = [
    "1796559518.0565515",
    "1796559518.6068017",
    "1796559518.4448543",
    "1796559518.2361233",
];

fn exact(text: &str) -> f64 {
    text.parse().unwrap()
}

/// A value read from a JSON column is the float its text says.
async fn read_from_a_json_column(db: Database) {
    let mut s = db.session();
    s.create().await.unwrap();
    let cast = if db.dialect() == Dialect::Postgres {
        "::jsonb"
    } else {
        ""
    };
    for text in FLOATS {
        let sql = format!("SELECT '{{\"x\": [{text}]}}'{cast}");
        let v: Value = common::scalar(&mut s, &sql, &[]).await;
        let got = v["x"][0].as_f64().unwrap();
        assert_eq!(got.to_bits(), exact(text).to_bits(), "{text} read as {got}");
    }
}

/// A state Python wrote keeps its floats when this crate appends to the session and
/// writes the state back; floats of this crate's own deltas read back the same.
async fn state_floats_survive_an_append(db: Database) {
    let postgres = db.dialect() == Dialect::Postgres;
    let (sessions, events) = (common::unique("fl_s"), common::unique("fl_e"));
    let config = AdkConfig::default()
        .session_table(&sessions)
        .events_table(&events)
        .app_state_table(common::unique("fl_a"))
        .user_state_table(common::unique("fl_u"));
    let store = AdkStore::new(common::fixed_pool(&db, 2).await, config).unwrap();
    store.create_tables().await.unwrap();
    let svc = SessionService::new(store);
    svc.create_session("app", "u", None, Some("s"))
        .await
        .unwrap();
    // As Python's `json.dumps` writes them, straight into the row.
    let [a, b, c, d] = FLOATS;
    let text = format!(r#"{{"a": {a}, "list": [{b}], "nested": {{"c": {c}}}}}"#);
    let mut admin = db.session();
    admin.create().await.unwrap();
    let cast = if postgres { "::jsonb" } else { "" };
    admin
        .execute_update(
            &format!("UPDATE {sessions} SET state = '{text}'{cast} WHERE id = 's'"),
            &[],
        )
        .await
        .unwrap();

    let cfg = GetSessionConfig::default();
    let mut session = svc
        .get_session("app", "u", "s", &cfg)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        session.state["a"].as_f64().unwrap().to_bits(),
        exact(a).to_bits()
    );
    let delta = Event::text("agent", "model", "hi").with_state_delta("d", json!(exact(d)));
    svc.append_event(&mut session, delta).await.unwrap();

    // The row as Python reads it: the same numbers, to the last digit.
    let stored_text: String = common::scalar(
        &mut admin,
        &format!("SELECT CAST(state AS TEXT) FROM {sessions} WHERE id = 's'"),
        &[],
    )
    .await;
    for f in FLOATS {
        assert!(stored_text.contains(f), "{f} not in {stored_text}");
    }
    let back = svc
        .get_session("app", "u", "s", &cfg)
        .await
        .unwrap()
        .unwrap();
    for (key, text) in [("a", a), ("d", d)] {
        assert_eq!(
            back.state[key].as_f64().unwrap().to_bits(),
            exact(text).to_bits(),
            "{key}"
        );
    }
    assert_eq!(back.state["list"][0].as_f64(), Some(exact(b)));
    assert_eq!(back.state["nested"]["c"].as_f64(), Some(exact(c)));
}

on_both!(read_from_a_json_column, state_floats_survive_an_append);

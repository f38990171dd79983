//! SQLSpec's whole-event ADK stores (`tests/python/adk_interop.py`, one venv per release,
//! made by `scripts/lib/py.sh`) on the same tables as this crate, both ways with Python's
//! real service. SQLSpec made three generations of these tables, and this crate finds each
//! in the catalog and reads and writes it in its form:
//!
//! - 0.42–0.50 (tested: 0.50.1): PostgreSQL keeps each event in `event_json`, with no id
//!   column; SQLite in `event_data`, with an `author` column; no app or user tables: the
//!   session's row holds its whole state, `app:` and `user:` keys included, so this crate
//!   writes those keys there too;
//! - 0.51–0.60 (tested: 0.60.0): `event_data` beside the event's id; app and user tables
//!   with the keys' prefix; on PostgreSQL no `app_name` / `user_id` columns on events;
//! - 0.61 on (tested: 0.69.0): the same with `app_name` and `user_id` on events.
//!
//! - PostgreSQL: Python creates the tables and writes a session (with `app:` and `user:`
//!   keys); this crate reads every field of it; Python appends again, so this crate's copy
//!   is stale and its append refused until it reads again; then it appends while Python
//!   holds the session as loaded, and SQLSpec's service refuses Python's stale append in
//!   turn; it writes a session of its own; Python's service loads both, scopes included.
//! - SQLite: SQLSpec 0.69's own SQLite service fails its first append (a stale-session
//!   check on its rounded Julian-day times), so Python creates the tables and a session,
//!   this crate appends and writes, and Python loads both.
mod common;

use serde_json::{Value, json};
use session_pool::ErrorKind;
use session_pool::adk::{
    ActionsCodec, AdkConfig, AdkStore, AgentSession, Event, GetSessionConfig, SessionService,
};

use common::unique;

/// A SQLSpec release with a venv of its own.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Release {
    /// 0.42–0.50: `event_json` (PostgreSQL), the whole state in the session's row.
    V050,
    /// 0.51–0.60: `event_data`, app and user tables; no owners on PostgreSQL's events.
    V060,
    /// 0.61 on.
    V069,
}

impl Release {
    /// The variable `scripts/lib/py.sh` exports the venv's interpreter in.
    fn var(self) -> &'static str {
        match self {
            Release::V050 => "SESSION_POOL_PYTHON_SQLSPEC_050",
            Release::V060 => "SESSION_POOL_PYTHON_SQLSPEC_060",
            Release::V069 => "SESSION_POOL_PYTHON_SQLSPEC_LATEST",
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Release::V050 => "sq50",
            Release::V060 => "sq60",
            Release::V069 => "sq69",
        }
    }

    /// Python's service keeps `app:` and `user:` keys in app and user tables, shared by
    /// sessions; before 0.51, in each session's row.
    fn scope_tables(self) -> bool {
        self != Release::V050
    }

    /// The whole-event column on PostgreSQL.
    fn pg_column(self) -> &'static str {
        match self {
            Release::V050 => "event_json",
            _ => "event_data",
        }
    }
}

struct Names {
    release: Release,
    sessions: String,
    events: String,
    app: String,
    user: String,
    meta: String,
}

impl Names {
    fn new(release: Release) -> Self {
        let name = |what: &str| unique(&format!("{}_{what}", release.tag()));
        Names {
            release,
            sessions: name("s"),
            events: name("e"),
            app: name("a"),
            user: name("u"),
            meta: name("m"),
        }
    }

    fn config(&self) -> AdkConfig {
        AdkConfig::default()
            .session_table(&self.sessions)
            .events_table(&self.events)
            .app_state_table(&self.app)
            .user_state_table(&self.user)
    }

    fn request(&self, url: &str, extra: Value) -> Value {
        let mut r = json!({
            "backend": if url.starts_with("postgres") { "postgres" } else { "sqlite" },
            "url": url,
            "session_table": self.sessions, "events_table": self.events,
            "app_state_table": self.app, "user_state_table": self.user,
            "metadata_table": self.meta,
        });
        r.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        r
    }
}

/// The event this crate writes, with every field the table keeps.
fn full_event() -> Event {
    let mut e = Event::text("agent", "model", "Hello from Rust \u{1F980} 'quotes' \\ $$")
        .with_invocation_id("inv-rs-1")
        .with_state_delta("topic", json!("event_data"))
        .with_state_delta("app:plan", json!("pro"))
        .with_state_delta("user:lang", json!("fr"))
        .with_state_delta("temp:scratch", json!(1))
        .with_state_delta(
            "nested",
            json!({"list": [1, -2, 2.5, null, true], "k": i64::MIN}),
        );
    e.branch = Some("root.support".into());
    e.turn_complete = Some(true);
    e.long_running_tool_ids = Some(vec!["call_9".into()]);
    e.custom_metadata = Some(json!({"trace": "rs"}));
    e.actions.transfer_to_agent = Some("support".into());
    e.actions.artifact_delta.insert("report.pdf".into(), 3);
    e.actions.extra.insert("end_of_agent".into(), json!(true));
    e.extra
        .insert("usage_metadata".into(), json!({"total_token_count": 42}));
    e
}

/// What Python's service loaded of `rust`'s events and state.
fn assert_python_read(py: &Value, rust: &AgentSession) {
    let state = py["state"].as_object().unwrap();
    for (k, v) in &rust.state {
        if k.starts_with("temp:") {
            assert!(!state.contains_key(k), "temp key {k} stored: {py}");
        } else {
            assert_eq!(state.get(k), Some(v), "state {k}: {py}");
        }
    }
    let events = py["events"].as_array().unwrap();
    assert_eq!(events.len(), rust.events.len(), "{py}");
    for (p, r) in events.iter().zip(&rust.events) {
        let what = &r.id;
        assert_eq!(p["id"], json!(r.id), "{what}");
        assert_eq!(p["author"], json!(r.author), "{what}");
        assert_eq!(
            p["invocation_id"],
            json!(r.invocation_id.clone().unwrap_or_default()),
            "{what}"
        );
        assert_eq!(p["branch"], json!(r.branch), "{what}");
        assert_eq!(
            p["content"],
            r.content.clone().unwrap_or(Value::Null),
            "{what}"
        );
        assert_eq!(p["custom_metadata"], json!(r.custom_metadata), "{what}");
        assert_eq!(p["turn_complete"], json!(r.turn_complete), "{what}");
        assert_eq!(
            p["long_running_tool_ids"],
            json!(r.long_running_tool_ids),
            "{what}"
        );
        // The actions as Python's model holds them: every field this crate set.
        let actions = serde_json::to_value(&r.actions).unwrap();
        for (k, v) in actions.as_object().unwrap() {
            assert_eq!(&p["actions"][k], v, "{what} actions.{k}: {p}");
        }
        let t = r.timestamp.timestamp_micros() as f64 / 1e6;
        let pt = p["timestamp"].as_f64().unwrap();
        assert!((t - pt).abs() < 1e-4, "{what}: {t} vs {pt}");
    }
}

async fn python(release: Release, request: &Value) -> Option<Value> {
    let python = common::python_in(release.var())?;
    Some(common::run_python(&python, "adk_interop.py", request).await)
}

async fn postgres_both_ways(release: Release) {
    let (Some(db), Some(url)) = (common::postgres().await, common::pg_url()) else {
        return;
    };
    let n = Names::new(release);
    let (app, user) = ("interop", "u1");
    let ids = json!({"app": app, "user": user, "session_id": "py-a", "scoped": true});
    let Some(answer) = python(
        n.release,
        &n.request(
            &url,
            json!({"create_tables": true, "write": ids, "read": ids}),
        ),
    )
    .await
    else {
        return;
    };
    let py_a = &answer["read"];
    let store = AdkStore::new(common::fixed_pool(&db, 4).await, n.config()).unwrap();
    // What a service does at start-up: SQLSpec's tables are left as they are.
    store.create_tables().await.unwrap();
    let service = SessionService::new(store.clone());

    // Every field of Python's events, its extra fields (`node_info`) and the scopes.
    let mut a = service
        .get_session(app, user, "py-a", &GetSessionConfig::default())
        .await
        .unwrap()
        .expect("Python's session");
    assert_eq!(a.state["app:tier"], "gold");
    assert_eq!(a.state["user:theme"], "dark");
    assert_eq!(a.state["topic"], "rust");
    assert_eq!(a.events.len(), 2);
    let (first, second) = (&a.events[0], &a.events[1]);
    let p0 = &py_a["events"][0];
    assert_eq!(json!(first.id), p0["id"]);
    assert_eq!(first.author, "user");
    assert_eq!(first.invocation_id.as_deref(), Some("inv-py-1"));
    assert_eq!(first.content.as_ref(), Some(&p0["content"]));
    assert_eq!(first.custom_metadata, Some(json!({"trace": "t1"})));
    assert_eq!(
        first.long_running_tool_ids.as_ref().map(|v| v.len()),
        Some(2)
    );
    assert_eq!(first.actions.transfer_to_agent.as_deref(), Some("billing"));
    assert_eq!(first.actions.state_delta["big"], json!(1u64 << 40));
    assert_eq!(first.actions.artifact_delta["notes.txt"], 2);
    assert!(first.extra.contains_key("node_info"), "{first:?}");
    assert_eq!(second.branch.as_deref(), Some("root.billing"));
    assert_eq!(second.turn_complete, Some(true));
    assert_eq!(second.actions.skip_summarization, Some(true));
    assert_eq!(
        second.actions.extra["compaction"]["compacted_content"]["parts"][0]["text"],
        "summary"
    );
    let t = first.timestamp.timestamp_micros() as f64 / 1e6;
    assert!((t - p0["timestamp"].as_f64().unwrap()).abs() < 1e-4);

    // Python appends after this crate read the session: this crate's copy is stale, and
    // its append is refused (nothing written) until it reads the session again.
    let more = json!({"app": app, "user": user, "session_id": "py-a",
        "state_delta": {"user:theme": "light"}});
    python(n.release, &n.request(&url, json!({"append": more})))
        .await
        .unwrap();
    let err = service
        .append_event(&mut a, full_event())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert_eq!(a.events.len(), 2);
    let mut a = service
        .get_session(app, user, "py-a", &GetSessionConfig::default())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.events.len(), 3);
    assert_eq!(a.state["user:theme"], "light");

    // This crate appends while Python holds the session as it loaded it: Python's copy is
    // stale, and SQLSpec's service refuses its append.
    let dir = tempfile::tempdir().unwrap();
    let go = dir.path().join("go");
    let held = {
        let request = n.request(
            &url,
            json!({"append": {"app": app, "user": user, "session_id": "py-a"}, "go_file": go}),
        );
        let release = n.release;
        tokio::spawn(async move { python(release, &request).await.unwrap() })
    };
    assert!(common::python_ready(&go, &held).await, "{:?}", held.await);
    service.append_event(&mut a, full_event()).await.unwrap();
    std::fs::write(&go, b"").unwrap();
    let answer = held.await.unwrap();
    assert_eq!(answer["stale"], true, "{answer}");
    let mut b = service
        .create_session(
            app,
            user,
            Some(
                json!({"lang": "rs", "user:since": 2024})
                    .as_object()
                    .unwrap()
                    .clone(),
            ),
            Some("rs-b"),
        )
        .await
        .unwrap();
    service.append_event(&mut b, full_event()).await.unwrap();
    service
        .append_event(&mut b, Event::text("user", "user", "thanks"))
        .await
        .unwrap();

    // Python's service loads both, this crate's keys in its scopes.
    for (id, ours) in [("py-a", &a), ("rs-b", &b)] {
        let ids = json!({"app": app, "user": user, "session_id": id});
        let answer = python(n.release, &n.request(&url, json!({"read": ids})))
            .await
            .unwrap();
        assert_python_read(&answer["read"], ours);
    }
    let answer = python(
        n.release,
        &n.request(
            &url,
            json!({"read": {"app": app, "user": user, "session_id": "rs-b"}}),
        ),
    )
    .await
    .unwrap();
    let state = &answer["read"]["state"];
    assert_eq!(state["app:plan"], "pro", "{answer}");
    assert_eq!(state["user:since"], 2024, "{answer}");
    if release.scope_tables() {
        assert_eq!(state["user:theme"], "light", "{answer}");
    } else {
        // Before 0.51 a user's keys are not shared: Python wrote this one in py-a's row.
        assert!(state.get("user:theme").is_none(), "{answer}");
    }

    // Stored as SQLSpec stores them: keys with their prefix, no null members.
    let mut s = db.session();
    s.create().await.unwrap();
    let scope: Value = common::scalar(
        &mut s,
        &format!("SELECT state FROM {} WHERE app_name = $1", n.app),
        &[app.into()],
    )
    .await;
    if release.scope_tables() {
        assert_eq!(scope, json!({"app:tier": "gold", "app:plan": "pro"}));
    } else {
        // Python's `app:tier` lives in py-a's row; this crate's key in both places.
        assert_eq!(scope, json!({"app:plan": "pro"}));
        let row: Value = common::scalar(
            &mut s,
            &format!("SELECT state FROM {} WHERE id = 'py-a'", n.sessions),
            &[],
        )
        .await;
        for key in ["app:tier", "app:plan", "user:theme", "user:lang", "topic"] {
            assert!(row.get(key).is_some(), "{key} not in py-a's row: {row}");
        }
        assert!(row.get("temp:scratch").is_none(), "{row}");
    }
    let data: Value = common::scalar(
        &mut s,
        &format!(
            "SELECT {} FROM {} WHERE session_id = 'rs-b' ORDER BY timestamp LIMIT 1",
            release.pg_column(),
            n.events
        ),
        &[],
    )
    .await;
    assert!(
        data.as_object().unwrap().values().all(|v| !v.is_null()),
        "{data}"
    );
    assert_eq!(data["usage_metadata"]["total_token_count"], 42, "{data}");
    assert!(data["timestamp"].is_f64(), "{data}");
    assert!(
        data["actions"]["state_delta"].get("temp:scratch").is_none(),
        "{data}"
    );

    // The newest events only, and the store's own reads, on the layout too.
    let newest = service
        .get_session(
            app,
            user,
            "py-a",
            &GetSessionConfig::default().num_recent_events(1),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(newest.events.len(), 1);
    assert_eq!(newest.events[0].id, a.events.last().unwrap().id);
    let records = store.get_events("rs-b", None, Some(1)).await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].author.as_deref(), Some("user"));
    // Its id, app and user, whether the table has such columns or not.
    assert_eq!(records[0].id, b.events.last().unwrap().id);
    assert_eq!(
        (records[0].app_name.as_str(), records[0].user_id.as_str()),
        (app, user)
    );

    // The same event again is refused, also where no index would (`event_json` has no
    // id column), and nothing is written.
    let err = store.append_event(&records[0]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    let err = store
        .append_event_and_update_state(&records[0], &json!({}), None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    assert_eq!(
        store.get_events("rs-b", None, None).await.unwrap().len(),
        b.events.len()
    );

    // A pickle cannot live in `event_data`: refused before anything is written.
    let pickled = SessionService::new(
        AdkStore::new(
            common::fixed_pool(&db, 2).await,
            n.config().actions_codec(ActionsCodec::Pickle),
        )
        .unwrap(),
    );
    let before = b.events.len();
    let err = pickled
        .append_event(
            &mut b,
            Event::text("user", "user", "pickled").with_state_delta("x", json!(1)),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    assert_eq!(b.events.len(), before);
    let again = service
        .get_session(app, user, "rs-b", &GetSessionConfig::default())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.events.len(), before);
}

async fn sqlite_both_ways(release: Release) {
    let (db, dir) = common::sqlite().await;
    let path = dir.path().join("test.db").display().to_string();
    let n = Names::new(release);
    let (app, user) = ("interop", "u1");
    let ids = json!({"app": app, "user": user, "session_id": "py-a", "session_only": true});
    let Some(answer) = python(
        n.release,
        &n.request(&path, json!({"create_tables": true, "write": ids})),
    )
    .await
    else {
        return;
    };
    assert_eq!(answer["written"]["state"], json!({"lang": "py", "n": 1}));
    let store = AdkStore::new(common::fixed_pool(&db, 2).await, n.config()).unwrap();
    store.create_tables().await.unwrap();
    let service = SessionService::new(store);
    let mut a = service
        .get_session(app, user, "py-a", &GetSessionConfig::default())
        .await
        .unwrap()
        .expect("Python's session");
    assert_eq!(a.state["lang"], "py");
    service.append_event(&mut a, full_event()).await.unwrap();
    let mut b = service
        .create_session(
            app,
            user,
            Some(json!({"user:since": 2024}).as_object().unwrap().clone()),
            Some("rs-b"),
        )
        .await
        .unwrap();
    service.append_event(&mut b, full_event()).await.unwrap();

    // This crate reads its own writes back as it wrote them.
    let back = service
        .get_session(app, user, "rs-b", &GetSessionConfig::default())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back.events.len(), 1);
    let (r, w) = (&back.events[0], &b.events[0]);
    assert_eq!(r.content, w.content);
    assert_eq!(r.actions, w.actions);
    assert_eq!(r.extra, w.extra);
    assert_eq!(r.custom_metadata, w.custom_metadata);
    assert_eq!(r.turn_complete, Some(true));
    assert_eq!(back.state["user:since"], 2024);
    assert_eq!(back.state["app:plan"], "pro");

    for (id, ours) in [("py-a", &a), ("rs-b", &b)] {
        let ids = json!({"app": app, "user": user, "session_id": id});
        let answer = python(n.release, &n.request(&path, json!({"read": ids})))
            .await
            .unwrap();
        assert_python_read(&answer["read"], ours);
    }
}

macro_rules! releases {
    ($($release:ident: $pg:ident, $sqlite:ident;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $pg() {
            postgres_both_ways(Release::$release).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $sqlite() {
            sqlite_both_ways(Release::$release).await;
        }
    )*};
}

releases! {
    V050: postgres_sqlspec_050, sqlite_sqlspec_050;
    V060: postgres_sqlspec_060, sqlite_sqlspec_060;
    V069: postgres_sqlspec_069, sqlite_sqlspec_069;
}

//! The real Python stores on the same tables: the OpenAI Agents SDK's `SQLAlchemySession`
//! (openai-agents 0.25.0, `tests/python/items_interop.py`, in the venv `scripts/test`
//! makes), on SQLite and PostgreSQL, and the SDK's built-in `SQLiteSession` (its default
//! store: the same table names, its own DDL) and `AsyncSQLiteSession` (aiosqlite, the same
//! DDL) on SQLite.
//!
//! - Either side creates the tables and the other reads and writes them: items written by
//!   one are read by the other in the same order, newest-N included; pops take the newest
//!   item whoever wrote it; a clear by one side empties the conversation for both.
//! - The tables this crate creates reflect (SQLAlchemy's inspector) exactly as the SDK's.
//! - Both sides adding to, then popping from, one conversation at the same time lose and
//!   duplicate nothing.
//! - Rows that are not JSON are read and popped past as the SDK does.
mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use session_pool::Database;
use session_pool::items::{ItemsConfig, ItemsStore};
use session_pool::prelude::*;

use common::unique;

/// Who runs `create_tables` first.
#[derive(Clone, Copy, PartialEq)]
enum Creator {
    Python,
    Rust,
}

/// One conversation's tables, as both sides name them.
#[derive(Clone)]
struct Tables {
    sessions: String,
    messages: String,
    python_url: String,
    /// The Python store: `sqlalchemy`, `sqlite_session` or `async_sqlite`.
    python_impl: &'static str,
}

impl Tables {
    fn new(python_url: &str) -> Self {
        Tables {
            sessions: unique("oa_s"),
            messages: unique("oa_m"),
            python_url: python_url.to_owned(),
            python_impl: "sqlalchemy",
        }
    }

    /// The SDK's built-in `SQLiteSession` instead of `SQLAlchemySession`.
    fn builtin(mut self) -> Self {
        self.python_impl = "sqlite_session";
        self
    }

    /// The SDK's `AsyncSQLiteSession` (aiosqlite; `SQLiteSession`'s tables).
    fn builtin_async(mut self) -> Self {
        self.python_impl = "async_sqlite";
        self
    }

    async fn store(&self, db: &Database) -> ItemsStore {
        let config = ItemsConfig::default()
            .sessions_table(&self.sessions)
            .messages_table(&self.messages);
        ItemsStore::new(common::fixed_pool(db, 4).await, config).unwrap()
    }

    /// Runs `ops` through Python's `SQLAlchemySession` on conversation `id`.
    async fn python(&self, python: &Path, id: &str, create: bool, ops: Value) -> Value {
        self.python_with(python, id, create, ops, json!({})).await
    }

    async fn python_with(
        &self,
        python: &Path,
        id: &str,
        create: bool,
        ops: Value,
        extra: Value,
    ) -> Value {
        let mut request = json!({
            "backend": if self.python_url.starts_with("postgres") { "postgres" } else { "sqlite" },
            "url": self.python_url,
            "sessions_table": self.sessions,
            "messages_table": self.messages,
            "create_tables": create,
            "session_id": id,
            "ops": ops,
            "impl": self.python_impl,
        });
        request
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        common::run_python(python, "items_interop.py", &request).await
    }
}

fn item(who: &str, i: usize) -> Value {
    json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": format!("{who} {i}")}]})
}

async fn interop(db: Database, t: Tables, creator: Creator) {
    let Some(python) = common::python() else {
        return;
    };
    let store = t.store(&db).await;
    if creator == Creator::Rust {
        store.create_tables().await.unwrap();
    }
    // Non-ASCII text: Python writes it escaped (`ensure_ascii`), this crate as UTF-8.
    let a = json!({"role": "user", "content": "café ☕, 東京"});
    let b = json!("a plain string item");
    let c = json!({"type": "function_call_output", "call_id": "call_1", "output": "{\"ok\":true}"});

    // Python writes into tables either side created.
    let answer = t
        .python(
            &python,
            "conv",
            creator == Creator::Python,
            json!([["add", [a, b]], ["add_each", [c]], ["get", null]]),
        )
        .await;
    assert_eq!(answer["results"][2], json!([a, b, c]), "{answer}");
    if creator == Creator::Python {
        // What a service does at start-up: a no-op on the SDK's tables.
        store.create_tables().await.unwrap();
    }

    // This crate reads Python's items, in order, and its stored text as Python wrote it.
    let conv = store.session("conv").unwrap();
    assert_eq!(
        conv.get_items(None).await.unwrap(),
        vec![a.clone(), b.clone(), c.clone()]
    );
    assert_eq!(
        conv.get_items(Some(2)).await.unwrap(),
        vec![b.clone(), c.clone()]
    );
    let raw = conv.get_raw_items(Some(3)).await.unwrap();
    assert!(
        raw[0].contains(r"caf\u00e9"),
        "Python's text kept: {}",
        raw[0]
    );

    // Python reads what this crate adds after its items; the newest N are this crate's.
    let (d, e) = (item("rust", 1), item("rust", 2));
    conv.add_items(&[d.clone(), e.clone()]).await.unwrap();
    let answer = t
        .python(
            &python,
            "conv",
            false,
            json!([["get", null], ["get", 2], ["pop", 1]]),
        )
        .await;
    let r = &answer["results"];
    assert_eq!(r[0], json!([a, b, c, d, e]), "{answer}");
    assert_eq!(r[1], json!([d, e]), "{answer}");
    assert_eq!(
        r[2],
        json!([e]),
        "Python pops this crate's newest item: {answer}"
    );

    // This crate pops next, then sees what is left.
    assert_eq!(conv.pop_item().await.unwrap(), Some(d));
    assert_eq!(
        conv.get_items(None).await.unwrap(),
        vec![a, b.clone(), c.clone()]
    );

    // A clear by either side empties the conversation for the other, parent row included.
    conv.clear_session().await.unwrap();
    let f = item("python", 9);
    let answer = t
        .python(&python, "conv", false, json!([["get", null], ["add", [f]]]))
        .await;
    assert_eq!(answer["results"][0], json!([]), "{answer}");
    assert_eq!(conv.get_items(None).await.unwrap(), vec![f]);
    let answer = t
        .python(&python, "conv", false, json!([["clear", null]]))
        .await;
    assert_eq!(answer["results"], json!([null]));
    assert!(conv.get_items(None).await.unwrap().is_empty());
    assert_eq!(conv.pop_item().await.unwrap(), None);
    let sql = format!(
        "SELECT COUNT(*) FROM \"{}\" WHERE session_id = $1",
        t.sessions
    );
    let mut s = store.pool().get(None).await.unwrap();
    let parents: i64 = common::scalar(&mut *s, &sql, &["conv".into()]).await;
    drop(s);
    assert_eq!(parents, 0, "Python's clear removed the parent row");

    // Another conversation in the same tables is untouched by all of it.
    let other = store.session("other").unwrap();
    other.add_items(std::slice::from_ref(&b)).await.unwrap();
    let answer = t
        .python(&python, "other", false, json!([["get", null]]))
        .await;
    assert_eq!(answer["results"][0], json!([b]));
}

/// The tables this crate creates, as SQLAlchemy reflects them, against the SDK's own.
async fn same_tables(db: Database, python_url: String) {
    let Some(python) = common::python() else {
        return;
    };
    let (ours, theirs) = (Tables::new(&python_url), Tables::new(&python_url));
    ours.store(&db).await.create_tables().await.unwrap();
    let reflect = json!({"reflect": true});
    let ours = ours
        .python_with(&python, "x", false, json!([]), reflect.clone())
        .await;
    let theirs = theirs
        .python_with(&python, "x", true, json!([["get", null]]), reflect)
        .await;
    assert_eq!(ours["schema"], theirs["schema"]);
    // Not vacuous: the description holds the columns, keys and the index.
    let messages = &theirs["schema"]["messages"];
    assert_eq!(messages["columns"].as_array().unwrap().len(), 4, "{theirs}");
    assert_eq!(
        messages["foreign_keys"][0]["ondelete"], "CASCADE",
        "{theirs}"
    );
    assert_eq!(
        messages["indexes"][0]["columns"],
        json!(["session_id", "id"]),
        "{theirs}"
    );
}

/// Both sides add to one conversation at the same time, then pop it empty at the same time.
async fn concurrent(db: Database, t: Tables) {
    let Some(python) = common::python() else {
        return;
    };
    const N: usize = 40;
    let store = t.store(&db).await;
    store.create_tables().await.unwrap();
    let conv = store.session("busy").unwrap();
    let dir = tempfile::tempdir().unwrap();

    // Python waits for the go file, so both sides start once its imports are done.
    let go = |name: &str| -> PathBuf { dir.path().join(name) };
    let py_items: Vec<Value> = (0..N).map(|i| item("python", i)).collect();
    let rust_items: Vec<Value> = (0..N).map(|i| item("rust", i)).collect();
    let adds = {
        let go = go("adds");
        let extra = json!({"go_file": go});
        let ops = json!([["add_each", py_items]]);
        let python = python.clone();
        let t = t.clone();
        tokio::spawn(async move { t.python_with(&python, "busy", false, ops, extra).await })
    };
    common::go_when_ready(&go("adds"), &adds).await;
    for it in &rust_items {
        conv.add_items(std::slice::from_ref(it)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    adds.await.unwrap();
    let all = conv.get_items(None).await.unwrap();
    assert_eq!(all.len(), 2 * N);
    // Each side's items kept their own order.
    let of = |who: &str| -> Vec<Value> {
        all.iter()
            .filter(|v| v.to_string().contains(&format!("\"{who} ")))
            .cloned()
            .collect()
    };
    assert_eq!(of("python"), py_items);
    assert_eq!(of("rust"), rust_items);

    // Pops from both sides at once: every item popped once, none lost, none twice.
    let pops = {
        let extra = json!({"go_file": go("pops")});
        let ops = json!([["pop", N]]);
        let python = python.clone();
        let t = t.clone();
        tokio::spawn(async move { t.python_with(&python, "busy", false, ops, extra).await })
    };
    common::go_when_ready(&go("pops"), &pops).await;
    let mut popped = Vec::new();
    for _ in 0..N {
        popped.push(conv.pop_item().await.unwrap());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let answer = pops.await.unwrap();
    let py_popped: Vec<Value> = serde_json::from_value(answer["results"][0].clone()).unwrap();
    let mut every: Vec<String> = popped
        .into_iter()
        .map(|v| v.expect("this crate's pop found an item").to_string())
        .chain(py_popped.iter().map(|v| {
            assert!(!v.is_null(), "Python's pop found an item: {answer}");
            v.to_string()
        }))
        .collect();
    every.sort();
    let mut expected: Vec<String> = all.iter().map(Value::to_string).collect();
    expected.sort();
    assert_eq!(every, expected);
    assert!(conv.get_items(None).await.unwrap().is_empty());
}

/// Rows that are not JSON among a conversation's newest: this crate's reads and pops give
/// what the SDK's give on a copy of the same rows (limits count items that decode; pops
/// remove such rows on the way to the newest item that decodes).
async fn corrupt_rows(db: Database, t: Tables) {
    let Some(python) = common::python() else {
        return;
    };
    let store = t.store(&db).await;
    store.create_tables().await.unwrap();
    let x = |i| item("x", i);
    let insert_bad = format!(
        "INSERT INTO \"{}\" (session_id, message_data) VALUES ($1, $2)",
        t.messages
    );
    for id in ["p", "r"] {
        let conv = store.session(id).unwrap();
        conv.add_items(&[x(0)]).await.unwrap();
        let mut s = store.pool().get(None).await.unwrap();
        s.execute_update(&insert_bad, &[id.into(), "{not json".into()])
            .await
            .unwrap();
        drop(s);
        conv.add_items(&[x(2)]).await.unwrap();
        let mut s = store.pool().get(None).await.unwrap();
        s.execute_update(&insert_bad, &[id.into(), "[1, 2".into()])
            .await
            .unwrap();
        drop(s);
        conv.add_items(&[x(4)]).await.unwrap();
    }
    let answer = t
        .python(
            &python,
            "p",
            false,
            json!([
                ["get", null],
                ["get", 1],
                ["get", 2],
                ["get", 3],
                ["get", 9],
                ["pop", 4]
            ]),
        )
        .await;
    let ours = store.session("r").unwrap();
    let mut results = Vec::new();
    for limit in [None, Some(1), Some(2), Some(3), Some(9)] {
        results.push(json!(ours.get_items(limit).await.unwrap()));
    }
    let mut pops = Vec::new();
    for _ in 0..4 {
        pops.push(ours.pop_item().await.unwrap());
    }
    results.push(json!(pops));
    assert_eq!(json!(results), answer["results"], "ours, then the SDK's");
    // Not vacuous: the SDK's answers are the ones expected.
    assert_eq!(answer["results"][2], json!([x(2), x(4)]), "{answer}");
    assert_eq!(
        answer["results"][5],
        json!([x(4), x(2), x(0), null]),
        "{answer}"
    );
    // Both removed every row, the corrupt ones included.
    let count = format!("SELECT COUNT(*) FROM \"{}\"", t.messages);
    let mut s = store.pool().get(None).await.unwrap();
    let left: i64 = common::scalar(&mut *s, &count, &[]).await;
    assert_eq!(left, 0);
}

fn sqlite_path(dir: &Path) -> String {
    dir.join("test.db").display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_python_creates() {
    let (db, dir) = common::sqlite().await;
    interop(db, Tables::new(&sqlite_path(dir.path())), Creator::Python).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_rust_creates() {
    let (db, dir) = common::sqlite().await;
    interop(db, Tables::new(&sqlite_path(dir.path())), Creator::Rust).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_same_tables() {
    let (db, dir) = common::sqlite().await;
    same_tables(db, sqlite_path(dir.path())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_concurrent() {
    let (db, dir) = common::sqlite().await;
    concurrent(db, Tables::new(&sqlite_path(dir.path()))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_python_creates() {
    if let (Some(db), Some(url)) = (common::postgres().await, common::pg_url()) {
        interop(db, Tables::new(&url), Creator::Python).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_rust_creates() {
    if let (Some(db), Some(url)) = (common::postgres().await, common::pg_url()) {
        interop(db, Tables::new(&url), Creator::Rust).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_same_tables() {
    if let (Some(db), Some(url)) = (common::postgres().await, common::pg_url()) {
        same_tables(db, url).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_concurrent() {
    if let (Some(db), Some(url)) = (common::postgres().await, common::pg_url()) {
        concurrent(db, Tables::new(&url)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_builtin_session_python_creates() {
    let (db, dir) = common::sqlite().await;
    let t = Tables::new(&sqlite_path(dir.path())).builtin();
    interop(db, t, Creator::Python).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_builtin_session_rust_creates() {
    let (db, dir) = common::sqlite().await;
    let t = Tables::new(&sqlite_path(dir.path())).builtin();
    interop(db, t, Creator::Rust).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_builtin_session_concurrent() {
    let (db, dir) = common::sqlite().await;
    concurrent(db, Tables::new(&sqlite_path(dir.path())).builtin()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_async_session_python_creates() {
    let (db, dir) = common::sqlite().await;
    let t = Tables::new(&sqlite_path(dir.path())).builtin_async();
    interop(db, t, Creator::Python).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_async_session_rust_creates() {
    let (db, dir) = common::sqlite().await;
    let t = Tables::new(&sqlite_path(dir.path())).builtin_async();
    interop(db, t, Creator::Rust).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_async_session_concurrent() {
    let (db, dir) = common::sqlite().await;
    concurrent(db, Tables::new(&sqlite_path(dir.path())).builtin_async()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_corrupt_rows() {
    let (db, dir) = common::sqlite().await;
    corrupt_rows(db, Tables::new(&sqlite_path(dir.path()))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_builtin_session_corrupt_rows() {
    let (db, dir) = common::sqlite().await;
    corrupt_rows(db, Tables::new(&sqlite_path(dir.path())).builtin()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_corrupt_rows() {
    if let (Some(db), Some(url)) = (common::postgres().await, common::pg_url()) {
        corrupt_rows(db, Tables::new(&url)).await;
    }
}

//! The items store beside openai-agents' `AdvancedSQLiteSession` (0.25.0, in the venv
//! `scripts/test` makes, through `tests/python/items_interop.py`), whose `message_structure`
//! and `turn_usage` tables sit beside the same items table on SQLite.
//!
//! - Items this crate adds get the structure rows the SDK would write for them (the same
//!   types, tool names, sequence and turn numbers), so Python reads them, counts their
//!   turns and tools, and does not delete them as orphans.
//! - Reads follow one branch in its order; pops remove a branch's newest item and keep a
//!   message another branch shares; a clear removes every branch and moves the clear
//!   generation on.
//! - A branch other than `main` on tables without that layout is refused, on both backends.
//! - Tables the SDK adds after this store started are followed from the next write (and a
//!   read within a second); tables removed are forgotten.
mod common;

use std::path::PathBuf;

use serde_json::{Value, json};
use session_pool::items::{ItemsConfig, ItemsSession, ItemsStore};
use session_pool::prelude::*;
use session_pool::{Database, Error};

use common::unique;

/// One database file's tables, as both sides name them.
struct Side {
    db: Database,
    store: ItemsStore,
    url: String,
    sessions: String,
    messages: String,
    python: PathBuf,
    _dir: tempfile::TempDir,
}

impl Side {
    /// A fresh file; `None` (skipped) only outside CI without the venv.
    async fn new() -> Option<Side> {
        let python = common::python()?;
        let (db, dir) = common::sqlite().await;
        let url = dir.path().join("test.db").display().to_string();
        let (sessions, messages) = (unique("oa_s"), unique("oa_m"));
        let config = ItemsConfig::default()
            .sessions_table(&sessions)
            .messages_table(&messages);
        let store = ItemsStore::new(common::fixed_pool(&db, 4).await, config).unwrap();
        Some(Side {
            db,
            store,
            url,
            sessions,
            messages,
            python,
            _dir: dir,
        })
    }

    /// Runs `ops` through Python's `AdvancedSQLiteSession` on conversation `id`; `create`
    /// makes (and claims) its tables first.
    async fn python(&self, id: &str, create: bool, ops: Value) -> Value {
        let request = json!({
            "backend": "sqlite",
            "impl": "advanced",
            "url": self.url,
            "sessions_table": self.sessions,
            "messages_table": self.messages,
            "create_tables": create,
            "session_id": id,
            "ops": ops,
        });
        let answer = common::run_python(&self.python, "items_interop.py", &request).await;
        answer["results"].clone()
    }

    fn conv(&self, id: &str) -> ItemsSession {
        self.store.session(id).unwrap()
    }

    /// The structure rows of conversation `id`, as the SDK numbers them (ids apart).
    async fn structure(&self, id: &str) -> Vec<Value> {
        let mut s = self.store.pool().get(None).await.unwrap();
        let rows = s
            .execute_sql(
                "SELECT branch_id, message_type, sequence_number, user_turn_number, \
                 branch_turn_number, tool_name FROM message_structure WHERE session_id = $1 \
                 ORDER BY sequence_number",
                &[id.into()],
            )
            .await
            .unwrap();
        rows.rows
            .iter()
            .map(|r| {
                json!([
                    r.get::<String>(0).unwrap(),
                    r.get::<String>(1).unwrap(),
                    r.get::<i64>(2).unwrap(),
                    r.get::<Option<i64>>(3).unwrap(),
                    r.get::<Option<i64>>(4).unwrap(),
                    r.get::<Option<String>>(5).unwrap(),
                ])
            })
            .collect()
    }

    async fn count(&self, sql: &str, id: &str) -> i64 {
        let mut s = self.store.pool().get(None).await.unwrap();
        common::scalar(&mut *s, sql, &[id.into()]).await
    }
}

fn user(text: &str) -> Value {
    json!({"role": "user", "content": text})
}

fn assistant(text: &str) -> Value {
    json!({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": text}]})
}

/// Items of every kind the SDK classifies apart, two user messages in one batch included.
fn batches() -> [Vec<Value>; 2] {
    [
        vec![
            user("weather in Paris?"),
            json!({"type": "reasoning", "id": "rs_1", "summary": []}),
            json!({"type": "function_call", "name": "get_weather", "call_id": "c1", "arguments": "{}"}),
            json!({"type": "function_call_output", "call_id": "c1", "output": "sunny"}),
            json!({"type": "function_call", "name": "lookup", "namespace": "geo", "call_id": "c2", "arguments": "{}"}),
            json!({"type": "mcp_call", "server_label": "docs", "name": "search", "id": "m1"}),
            json!({"type": "web_search_call", "id": "w1", "status": "completed"}),
            assistant("It is sunny."),
        ],
        vec![
            user("and Rome?"),
            user("and Oslo?"),
            json!({"type": "tool_search_call", "id": "t1"}),
            "a plain string item".into(),
            assistant("Both are mild."),
        ],
    ]
}

/// Items added by this crate get the structure rows Python writes for the same items;
/// Python reads them, counts their turns and tools, and keeps them when it pops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn structure_rows_as_the_sdk_writes_them() {
    let Some(side) = Side::new().await else {
        return;
    };
    let [first, second] = batches();
    // Python makes and claims the tables, and writes conversation "p".
    side.python(
        "p",
        true,
        json!([["add", first.clone()], ["add", second.clone()]]),
    )
    .await;
    // This crate writes the same items into conversation "r".
    let r = side.conv("r");
    r.add_items(&first).await.unwrap();
    r.add_items(&second).await.unwrap();
    let (ours, theirs) = (side.structure("r").await, side.structure("p").await);
    assert_eq!(ours, theirs, "this crate's structure rows, then Python's");
    assert_eq!(theirs.len(), 13);
    assert_eq!(
        theirs[9],
        json!(["main", "user", 10, 3, 3, null]),
        "the second user message of one batch starts turn 3: {theirs:?}"
    );

    // Python reads this crate's items, their turns and their tools, as its own.
    let all: Vec<Value> = first.iter().chain(&second).cloned().collect();
    let answer = side
        .python(
            "r",
            false,
            json!([["get", null], ["get", 3], ["turns", null], ["tools", null]]),
        )
        .await;
    assert_eq!(answer[0], json!(all));
    assert_eq!(answer[1], json!(all[10..]));
    assert_eq!(
        answer[2],
        json!([[1, "weather in Paris?"], [2, "and Rome?"], [3, "and Oslo?"]])
    );
    let theirs = side
        .python("p", false, json!([["turns", null], ["tools", null]]))
        .await;
    assert_eq!(
        answer.as_array().unwrap()[2..],
        theirs.as_array().unwrap()[..]
    );

    // A Python pop removes this crate's newest item and deletes nothing else (Python
    // deletes items without structure rows as orphans); then this crate pops the next.
    let answer = side.python("r", false, json!([["pop", 1]])).await;
    assert_eq!(answer[0], json!([all[12]]));
    assert_eq!(r.pop_item().await.unwrap(), Some(all[11].clone()));
    assert_eq!(r.get_items(None).await.unwrap(), all[..11]);
    assert_eq!(r.get_items(Some(2)).await.unwrap(), all[9..11]);
}

/// One branch at a time, in its order; pops keep what another branch shares; a clear
/// removes every branch and moves the clear generation on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn branches() {
    let Some(side) = Side::new().await else {
        return;
    };
    let (u1, a1, u2, a2) = (user("u1"), assistant("a1"), user("u2"), assistant("a2"));
    let (b2, c2) = (user("u2 again"), assistant("a2 again"));
    // Python: two turns on main, then a branch from turn 2 with another second turn.
    let answer = side
        .python(
            "c",
            true,
            json!([
                ["add", [u1, a1, u2, a2]],
                ["branch", [2, "alt"]],
                ["add", [b2, c2]],
            ]),
        )
        .await;
    assert_eq!(answer[1], "alt");
    let main = side.conv("c");
    let alt = side.conv("c").on_branch("alt").unwrap();
    assert_eq!(alt.branch(), "alt");
    assert_eq!(
        main.get_items(None).await.unwrap(),
        [u1.clone(), a1.clone(), u2.clone(), a2.clone()]
    );
    assert_eq!(
        alt.get_items(None).await.unwrap(),
        [u1.clone(), a1.clone(), b2.clone(), c2.clone()]
    );
    assert_eq!(alt.get_items(Some(3)).await.unwrap(), [a1.clone(), b2, c2]);
    let nowhere = side.conv("c").on_branch("nowhere").unwrap();
    assert!(nowhere.get_items(None).await.unwrap().is_empty());

    // This crate adds a turn on the branch; Python, switched to it, reads it as turn 3.
    let u3 = user("u3");
    alt.add_items(std::slice::from_ref(&u3)).await.unwrap();
    let answer = side
        .python(
            "c",
            false,
            json!([
                ["switch", "alt"],
                ["turns", null],
                ["get_on", [null, "main"]]
            ]),
        )
        .await;
    assert_eq!(
        answer[1],
        json!([[1, "u1"], [2, "u2 again"], [3, "u3"]]),
        "{answer}"
    );
    assert_eq!(
        answer[2],
        json!([u1, a1, u2, a2]),
        "main untouched: {answer}"
    );

    // A usage row for each of alt's turns 2 and 3, as `store_run_usage` writes them.
    let mut s = side.store.pool().get(None).await.unwrap();
    for turn in [2, 3] {
        s.execute_update(
            "INSERT INTO turn_usage (session_id, branch_id, user_turn_number, requests) \
             VALUES ('c', 'alt', $1, 1)",
            &[session_pool::Value::Int(turn)],
        )
        .await
        .unwrap();
    }
    drop(s);
    // Pops take alt's newest items only; a message main shares stays where main has it.
    assert_eq!(alt.pop_item().await.unwrap(), Some(u3));
    let usage = "SELECT COUNT(*) FROM turn_usage WHERE session_id = $1";
    assert_eq!(
        side.count(usage, "c").await,
        1,
        "turn 3's usage went with it"
    );
    for _ in 0..4 {
        alt.pop_item().await.unwrap().unwrap();
    }
    assert_eq!(side.count(usage, "c").await, 0, "turn 2's usage went too");
    assert_eq!(alt.pop_item().await.unwrap(), None);
    assert_eq!(
        main.get_items(None).await.unwrap(),
        [u1.clone(), a1.clone(), u2.clone(), a2.clone()],
        "main keeps the messages it shared with alt"
    );
    let messages = format!(
        "SELECT COUNT(*) FROM \"{}\" WHERE session_id = $1",
        side.messages
    );
    assert_eq!(side.count(&messages, "c").await, 4, "alt's own are gone");

    // A clear by this crate: every branch, and the generation moves on.
    alt.add_items(&[user("again")]).await.unwrap();
    main.clear_session().await.unwrap();
    assert!(alt.get_items(None).await.unwrap().is_empty());
    let structure = "SELECT COUNT(*) FROM message_structure WHERE session_id = $1";
    assert_eq!(side.count(structure, "c").await, 0);
    assert_eq!(side.count(&messages, "c").await, 0);
    let generation = "SELECT generation FROM session_clear_generations WHERE session_id = $1";
    assert_eq!(side.count(generation, "c").await, 1);
    let reserved = "SELECT COUNT(*) FROM branch_reservations WHERE session_id = $1";
    assert_eq!(
        side.count(reserved, "c").await,
        2,
        "main and alt stay reserved"
    );
    // Python starts again on main, and cannot reuse the name alt.
    let answer = side
        .python(
            "c",
            false,
            json!([["get", null], ["add", [u1]], ["get", null]]),
        )
        .await;
    assert_eq!(answer[0], json!([]));
    assert_eq!(answer[2], json!([u1]));
    assert_eq!(main.get_items(None).await.unwrap(), [u1]);
}

/// Tables the SDK claims after this store started writing are followed from the next
/// call on; structure tables dropped under a running store are forgotten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_added_and_removed_under_a_running_store() {
    let Some(side) = Side::new().await else {
        return;
    };
    side.store.create_tables().await.unwrap();
    let conv = side.conv("x");
    conv.add_items(&[user("before")]).await.unwrap();
    assert_eq!(conv.get_items(None).await.unwrap(), [user("before")]);
    // Python's store arrives: its history starts empty (the item above has no structure
    // row, as a plain SQLiteSession's history has none).
    let answer = side.python("x", true, json!([["get", null]])).await;
    assert_eq!(answer[0], json!([]));
    // The next write learns of them in its own statement and writes through them; reads
    // follow from then on.
    conv.add_items(&[user("after")]).await.unwrap();
    let answer = side.python("x", false, json!([["get", null]])).await;
    assert_eq!(answer[0], json!([user("after")]));
    assert_eq!(conv.get_items(None).await.unwrap(), [user("after")]);
    // A store that has only read so far learns of them at its first read.
    let reader = ItemsStore::new(
        common::fixed_pool(&side.db, 1).await,
        ItemsConfig::default()
            .sessions_table(&side.sessions)
            .messages_table(&side.messages),
    )
    .unwrap();
    let x = reader.session("x").unwrap();
    assert_eq!(x.get_items(None).await.unwrap(), [user("after")]);

    // The structure tables dropped: this crate reads the items table again.
    let mut s = side.store.pool().get(None).await.unwrap();
    for table in ["message_structure", "turn_usage"] {
        s.execute_update(&format!("DROP TABLE {table}"), &[])
            .await
            .unwrap();
    }
    drop(s);
    assert_eq!(
        conv.get_items(None).await.unwrap(),
        [user("before"), user("after")]
    );
    assert_eq!(conv.pop_item().await.unwrap(), Some(user("after")));
}

/// Structure tables that belong to another pair of tables in the same file (the SDK keeps
/// one pair's per file) are not this store's: it reads and writes its own tables plainly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_pairs_structure_tables_are_left_alone() {
    let Some(side) = Side::new().await else {
        return;
    };
    side.python("a", true, json!([["add", [user("theirs")]]]))
        .await;
    let other = ItemsStore::new(
        common::fixed_pool(&side.db, 2).await,
        ItemsConfig::default()
            .sessions_table(unique("oa_s"))
            .messages_table(unique("oa_m")),
    )
    .unwrap();
    other.create_tables().await.unwrap();
    let conv = other.session("a").unwrap();
    conv.add_items(&[user("ours"), user("ours 2")])
        .await
        .unwrap();
    assert_eq!(
        conv.get_items(None).await.unwrap(),
        [user("ours"), user("ours 2")]
    );
    assert_eq!(conv.pop_item().await.unwrap(), Some(user("ours 2")));
    let structure = "SELECT COUNT(*) FROM message_structure WHERE session_id = $1";
    assert_eq!(side.count(structure, "a").await, 1, "only Python's own row");
    let err = conv.clone().on_branch("alt").unwrap().get_items(None).await;
    assert!(matches!(err, Err(Error::InvalidArgument(_))), "{err:?}");
    conv.clear_session().await.unwrap();
    let answer = side.python("a", false, json!([["get", null]])).await;
    assert_eq!(answer[0], json!([user("theirs")]));
}

/// A branch needs `AdvancedSQLiteSession`'s tables: elsewhere it is refused, with nothing
/// written, on both backends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_branch_without_the_tables_is_refused() {
    let (db, _dir) = common::sqlite().await;
    refused(db).await;
    if let Some(db) = common::postgres().await {
        refused(db).await;
    }
}

async fn refused(db: Database) {
    let store = common::items_store(&db).await;
    let plain = store.session("b").unwrap();
    plain.add_items(&[user("u")]).await.unwrap();
    let branch = store.session("b").unwrap().on_branch("alt").unwrap();
    for err in [
        branch.get_items(None).await.unwrap_err(),
        branch.add_items(&[user("v")]).await.unwrap_err(),
        branch.pop_item().await.unwrap_err(),
        branch.clear_session().await.unwrap_err(),
    ] {
        assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
        assert!(err.to_string().contains("message_structure"), "{err}");
    }
    assert_eq!(plain.get_items(None).await.unwrap(), [user("u")]);
    for bad in ["", "a\0b"] {
        let err = store.session("b").unwrap().on_branch(bad).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    }
    // `main` is every conversation's one branch.
    let main = store.session("b").unwrap().on_branch("main").unwrap();
    assert_eq!(main.get_items(None).await.unwrap(), [user("u")]);
}

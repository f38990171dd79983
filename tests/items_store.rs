//! The conversation-items store: get/add/pop/clear, newest-N, concurrent first writes,
//! concurrent pops, corrupt rows and bad input, on both backends.
mod common;

use session_pool::prelude::*;
use std::collections::HashSet;
use std::sync::Arc;

use serde_json::{Value as Json, json};
use session_pool::items::{ItemsConfig, ItemsStore};
use session_pool::{Database, Error};

fn msg(i: usize) -> Json {
    json!({"role": if i.is_multiple_of(2) { "user" } else { "assistant" }, "content": format!("m{i}"), "n": i})
}

async fn count(store: &ItemsStore, sql: &str, id: &str) -> i64 {
    let mut s = store.pool().get(None).await.unwrap();
    let n = s
        .execute_sql(sql, &[id.into()])
        .await
        .unwrap()
        .one()
        .unwrap()
        .get(0)
        .unwrap();
    session_pool::AbstractSessionPool::put(&**store.pool(), s).unwrap();
    n
}

async fn get_add_pop_clear(db: Database) {
    let store = common::items_store(&db).await;
    let conv = store.session("conv").unwrap();
    assert!(conv.get_items(None).await.unwrap().is_empty());
    assert_eq!(conv.pop_item().await.unwrap(), None);

    conv.add_items(&[msg(0), msg(1), msg(2)]).await.unwrap();
    conv.add_items(&[msg(3), msg(4)]).await.unwrap();
    conv.add_items(&[]).await.unwrap();
    let all = conv.get_items(None).await.unwrap();
    assert_eq!(all, (0..5).map(msg).collect::<Vec<_>>());
    assert_eq!(conv.get_items(Some(2)).await.unwrap(), vec![msg(3), msg(4)]);
    assert_eq!(conv.get_items(Some(50)).await.unwrap().len(), 5);
    assert!(conv.get_items(Some(0)).await.unwrap().is_empty());

    assert_eq!(conv.pop_item().await.unwrap(), Some(msg(4)));
    assert_eq!(conv.pop_item().await.unwrap(), Some(msg(3)));
    assert_eq!(conv.get_items(None).await.unwrap().len(), 3);

    // Another conversation is separate.
    let other = store.session("other").unwrap();
    other
        .add_items(&[json!("plain string item")])
        .await
        .unwrap();
    conv.clear_session().await.unwrap();
    assert!(conv.get_items(None).await.unwrap().is_empty());
    assert_eq!(conv.pop_item().await.unwrap(), None);
    assert_eq!(
        other.get_items(None).await.unwrap(),
        vec![json!("plain string item")]
    );
    // Clearing removed the parent row too; adding again recreates it.
    conv.add_items(&[msg(9)]).await.unwrap();
    assert_eq!(conv.get_items(None).await.unwrap(), vec![msg(9)]);
}

async fn items_are_stored_as_compact_json(db: Database) {
    let store = common::items_store(&db).await;
    let conv = store.session("c").unwrap();
    let item = json!({"type": "message", "content": [{"type": "output_text", "text": "é \"q\""}]});
    conv.add_items(std::slice::from_ref(&item)).await.unwrap();
    let mut s = store.pool().get(None).await.unwrap();
    let text: String = s
        .execute_sql(
            &format!(
                "SELECT message_data FROM \"{}\" WHERE session_id = $1",
                store.messages_table()
            ),
            &["c".into()],
        )
        .await
        .unwrap()
        .one()
        .unwrap()
        .get(0)
        .unwrap();
    session_pool::AbstractSessionPool::put(&**store.pool(), s).unwrap();
    assert_eq!(text, item.to_string());
}

async fn concurrent_first_writes(db: Database) {
    let store = common::items_store(&db).await;
    const WRITERS: usize = 8;
    for round in 0..5 {
        let id = format!("first{round}");
        let barrier = Arc::new(tokio::sync::Barrier::new(WRITERS));
        let tasks: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (conv, barrier) = (store.session(&id).unwrap(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    let items: Vec<Json> = (0..5).map(|i| json!({"w": w, "i": i})).collect();
                    conv.add_items(&items).await
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let items = store.session(&id).unwrap().get_items(None).await.unwrap();
        assert_eq!(items.len(), WRITERS * 5);
        // Each writer's items stay in its order.
        for w in 0..WRITERS {
            let mine: Vec<i64> = items
                .iter()
                .filter(|it| it["w"] == w)
                .map(|it| it["i"].as_i64().unwrap())
                .collect();
            assert_eq!(mine, [0, 1, 2, 3, 4]);
        }
        let parents = format!(
            "SELECT COUNT(*) FROM \"{}\" WHERE session_id = $1",
            store.sessions_table()
        );
        assert_eq!(count(&store, &parents, &id).await, 1);
    }
}

async fn concurrent_pops_take_distinct_items(db: Database) {
    let store = common::items_store(&db).await;
    let conv = store.session("stack").unwrap();
    conv.add_items(&(0..40).map(msg).collect::<Vec<_>>())
        .await
        .unwrap();
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let conv = conv.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                for _ in 0..10 {
                    got.push(conv.pop_item().await.unwrap().expect("items remain"));
                }
                got
            })
        })
        .collect();
    let mut seen = HashSet::new();
    for t in tasks {
        for item in t.await.unwrap() {
            assert!(
                seen.insert(item["n"].as_i64().unwrap()),
                "popped twice: {item}"
            );
        }
    }
    assert_eq!(seen.len(), 40);
    assert_eq!(conv.pop_item().await.unwrap(), None);
}

/// PostgreSQL: a writer that follows the SDK's protocol for changing a conversation (its
/// parent row locked, then its newest items) replaces the two newest items with a summary,
/// as the SDK's compaction does. A pop meanwhile waits for it, then takes the summary: not
/// an item from before the two it replaced, which a pop skipping locked rows would take.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pop_waits_for_a_writer_holding_the_conversation() {
    let Some(db) = common::postgres().await else {
        return;
    };
    let store = common::items_store(&db).await;
    let conv = store.session("compacted").unwrap();
    conv.add_items(&(0..5).map(msg).collect::<Vec<_>>())
        .await
        .unwrap();
    let (s, m) = (store.sessions_table(), store.messages_table());
    let mut writer = store.pool().get(None).await.unwrap();
    let mut tx = writer.transaction().await.unwrap();
    tx.execute_sql(
        &format!("SELECT 1 FROM \"{s}\" WHERE session_id = $1 FOR UPDATE"),
        &["compacted".into()],
    )
    .await
    .unwrap();
    let newest = tx
        .execute_sql(
            &format!(
                "SELECT id FROM \"{m}\" WHERE session_id = $1 \
                 ORDER BY id DESC LIMIT 2 FOR UPDATE"
            ),
            &["compacted".into()],
        )
        .await
        .unwrap();
    let ids: Vec<i64> = newest.into_iter().map(|r| r.get(0).unwrap()).collect();
    let summary = json!({"role": "assistant", "content": "summary of m3 and m4"});
    tx.execute_update(
        &format!("INSERT INTO \"{m}\" (session_id, message_data) VALUES ($1, $2)"),
        &["compacted".into(), summary.to_string().into()],
    )
    .await
    .unwrap();
    tx.execute_update(
        &format!("DELETE FROM \"{m}\" WHERE id = $1 OR id = $2"),
        &[ids[0].into(), ids[1].into()],
    )
    .await
    .unwrap();

    let pop = tokio::spawn({
        let conv = conv.clone();
        async move { conv.pop_item().await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !pop.is_finished(),
        "the pop waits for the conversation's writer"
    );
    tx.commit().await.unwrap();
    assert_eq!(pop.await.unwrap().unwrap(), Some(summary));
    assert_eq!(
        conv.get_items(None).await.unwrap(),
        (0..3).map(msg).collect::<Vec<_>>()
    );
}

/// PostgreSQL: a pop cancelled while it waits for a writer holding the conversation leaves
/// no lock behind once that writer is done: the next pop (and an add) go through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_pop_leaves_the_conversation_unlocked() {
    let Some(db) = common::postgres().await else {
        return;
    };
    let store = common::items_store(&db).await;
    let conv = store.session("held").unwrap();
    conv.add_items(&(0..3).map(msg).collect::<Vec<_>>())
        .await
        .unwrap();
    let s = store.sessions_table();
    let mut writer = store.pool().get(None).await.unwrap();
    let mut tx = writer.transaction().await.unwrap();
    tx.execute_sql(
        &format!("SELECT 1 FROM \"{s}\" WHERE session_id = $1 FOR UPDATE"),
        &["held".into()],
    )
    .await
    .unwrap();
    let waited = tokio::time::timeout(std::time::Duration::from_millis(300), conv.pop_item()).await;
    assert!(
        waited.is_err(),
        "the pop was waiting for the lock: {waited:?}"
    );
    tx.commit().await.unwrap();
    drop(writer);
    let next = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        let popped = conv.pop_item().await.unwrap();
        conv.add_items(&[msg(7)]).await.unwrap();
        popped
    })
    .await
    .expect("the conversation is not left locked by the cancelled pop");
    assert_eq!(next, Some(msg(2)));
    assert_eq!(
        conv.get_items(None).await.unwrap(),
        vec![msg(0), msg(1), msg(7)]
    );
}

async fn corrupt_rows_are_skipped(db: Database) {
    let store = common::items_store(&db).await;
    let conv = store.session("c").unwrap();
    conv.add_items(&[msg(0)]).await.unwrap();
    let mut s = store.pool().get(None).await.unwrap();
    s.execute_update(
        &format!(
            "INSERT INTO \"{}\" (session_id, message_data) VALUES ($1, $2)",
            store.messages_table()
        ),
        &["c".into(), "{not json".into()],
    )
    .await
    .unwrap();
    session_pool::AbstractSessionPool::put(&**store.pool(), s).unwrap();
    conv.add_items(&[msg(2)]).await.unwrap();

    assert_eq!(conv.get_items(None).await.unwrap(), vec![msg(0), msg(2)]);
    // The limit counts items that decode: the read goes past the corrupt row.
    assert_eq!(
        conv.get_items(Some(2)).await.unwrap(),
        vec![msg(0), msg(2)],
        "the newest 2 items, a corrupt row among them"
    );
    assert_eq!(conv.get_items(Some(1)).await.unwrap(), vec![msg(2)]);
    assert_eq!(conv.get_items(Some(5)).await.unwrap(), vec![msg(0), msg(2)]);
    assert_eq!(
        conv.get_raw_items(Some(2)).await.unwrap(),
        vec!["{not json".to_owned(), msg(2).to_string()],
        "raw reads count rows"
    );
    assert_eq!(conv.pop_item().await.unwrap(), Some(msg(2)));
    // The corrupt row is now the newest: pop deletes it and returns the item before it,
    // as the SDK does.
    assert_eq!(conv.pop_item().await.unwrap(), Some(msg(0)));
    assert_eq!(
        conv.get_raw_items(None).await.unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(conv.pop_item().await.unwrap(), None);
}

async fn bad_input(db: Database) {
    let store = common::items_store(&db).await;
    let err = store.session("").unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    assert!(store.session("a\0b").is_err());
    // No length cap beyond the schema's (VARCHAR): a long id works end to end.
    let long = store.session(&"é".repeat(1000)).unwrap();
    long.add_items(&[msg(1)]).await.unwrap();
    assert_eq!(long.get_items(None).await.unwrap(), vec![msg(1)]);
    let pool = common::fixed_pool(&db, 1).await;
    for config in [
        ItemsConfig::default().sessions_table("bad name"),
        ItemsConfig::default().messages_table("m; DROP TABLE x"),
        ItemsConfig::default().messages_table("agent_sessions"),
    ] {
        let err = ItemsStore::new(pool.clone(), config).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    }
}

async fn rerun_is_a_no_op(db: Database) {
    let store = common::items_store(&db).await;
    let conv = store.session("c").unwrap();
    conv.add_items(&[msg(0)]).await.unwrap();
    store.create_tables().await.unwrap();
    store.create_tables().await.unwrap();
    assert_eq!(conv.get_items(None).await.unwrap(), vec![msg(0)]);
}

/// The names of the indexes on `table`, besides its primary key.
async fn index_names(db: &Database, store: &ItemsStore, table: &str) -> Vec<String> {
    let sql = match db.dialect() {
        session_pool::Dialect::Postgres => {
            "SELECT indexname::text FROM pg_indexes WHERE tablename = $1 \
             AND indexname NOT LIKE '%_pkey' ORDER BY 1"
        }
        _ => {
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = $1 \
             AND name NOT LIKE 'sqlite_autoindex%' ORDER BY 1"
        }
    };
    let mut s = store.pool().get(None).await.unwrap();
    let rows = s.execute_sql(sql, &[table.into()]).await.unwrap();
    rows.into_iter().map(|r| r.get(0).unwrap()).collect()
}

/// New tables get the SDK's index on `(session_id, id)` (openai-agents 0.25's name); an
/// items table already there, as an earlier SDK made it, keeps its own and gets no other,
/// as the SDK's `create_all` leaves it. Items come back in the order of their ids, as the
/// SDK reads them, whatever their `created_at` says (the time each adding transaction
/// began).
async fn the_index_comes_with_a_new_table(db: Database) {
    let store = common::items_store(&db).await;
    let m = store.messages_table().to_owned();
    assert_eq!(
        index_names(&db, &store, &m).await,
        [format!("idx_{m}_session_id")]
    );

    // openai-agents 0.24's tables: its index on (session_id, created_at).
    let config = ItemsConfig::default()
        .sessions_table(format!("{}_old", store.sessions_table()))
        .messages_table(format!("{m}_old"));
    let old = ItemsStore::new(store.pool().clone(), config).unwrap();
    let (os, om) = (old.sessions_table(), old.messages_table());
    let (id, ts) = match db.dialect() {
        session_pool::Dialect::Postgres => ("id SERIAL NOT NULL PRIMARY KEY", "TIMESTAMP"),
        _ => ("id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT", "TIMESTAMP"),
    };
    let mut s = store.pool().get(None).await.unwrap();
    for ddl in [
        format!(
            "CREATE TABLE \"{os}\" (session_id VARCHAR NOT NULL PRIMARY KEY, \
             created_at {ts} DEFAULT CURRENT_TIMESTAMP NOT NULL, \
             updated_at {ts} DEFAULT CURRENT_TIMESTAMP NOT NULL)"
        ),
        format!(
            "CREATE TABLE \"{om}\" ({id}, session_id VARCHAR NOT NULL, \
             message_data TEXT NOT NULL, created_at {ts} DEFAULT CURRENT_TIMESTAMP NOT NULL, \
             FOREIGN KEY (session_id) REFERENCES \"{os}\" (session_id) ON DELETE CASCADE)"
        ),
        format!("CREATE INDEX \"idx_{om}_session_time\" ON \"{om}\" (session_id, created_at)"),
    ] {
        s.execute_update(&ddl, &[]).await.unwrap();
    }
    drop(s);
    old.create_tables().await.unwrap();
    assert_eq!(
        index_names(&db, &old, om).await,
        [format!("idx_{om}_session_time")]
    );

    // Added in this order; the second add's `created_at` says it came first.
    let conv = old.session("c").unwrap();
    conv.add_items(&[msg(0)]).await.unwrap();
    conv.add_items(&[msg(1)]).await.unwrap();
    let mut s = store.pool().get(None).await.unwrap();
    s.execute_update(
        &format!(
            "UPDATE \"{om}\" SET created_at = '2001-01-01 00:00:00' \
             WHERE id = (SELECT MAX(id) FROM \"{om}\")"
        ),
        &[],
    )
    .await
    .unwrap();
    drop(s);
    assert_eq!(conv.get_items(None).await.unwrap(), vec![msg(0), msg(1)]);
    assert_eq!(conv.get_items(Some(1)).await.unwrap(), vec![msg(1)]);
    assert_eq!(conv.pop_item().await.unwrap(), Some(msg(1)));
}

async fn raw_items_are_kept_byte_for_byte(db: Database) {
    let store = common::items_store(&db).await;
    let conv = store.session("raw").unwrap();
    let raw = [
        r#"{"n": 123456789012345678901234567890, "x": 1.10, "b": 1e400}"#,
        r#"{"z":1,  "a":[1 ,2]}"#,
        r#""just a string""#,
    ];
    conv.add_raw_items(&raw).await.unwrap();
    assert_eq!(conv.get_raw_items(None).await.unwrap(), raw);
    assert_eq!(conv.get_raw_items(Some(1)).await.unwrap(), &raw[2..]);
    // Not JSON: refused, and nothing of the batch is written.
    let err = conv
        .add_raw_items(&[r#"{"ok": 1}"#, "{not json"])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    assert_eq!(conv.get_raw_items(None).await.unwrap().len(), 3);
    assert_eq!(conv.pop_raw_item().await.unwrap().as_deref(), Some(raw[2]));
    // The value API reads the same rows, but cannot hold `1e400`: that row is skipped
    // there, and only the raw API keeps it.
    assert_eq!(
        conv.get_items(None).await.unwrap(),
        vec![json!({"z": 1, "a": [1, 2]})]
    );
}

async fn a_default_limit_applies_to_unlimited_reads(db: Database) {
    let store = common::items_store(&db).await;
    let conv = store.session("limited").unwrap().with_default_limit(2);
    conv.add_items(&[msg(0), msg(1), msg(2)]).await.unwrap();
    assert_eq!(conv.get_items(None).await.unwrap(), vec![msg(1), msg(2)]);
    assert_eq!(conv.get_raw_items(None).await.unwrap().len(), 2);
    assert_eq!(
        conv.get_items(Some(3)).await.unwrap(),
        vec![msg(0), msg(1), msg(2)]
    );
}

/// Stores each item wrapped in an envelope, as a subclass overriding the SDK's
/// `_serialize_item` / `_deserialize_item` might.
#[derive(Debug)]
struct Envelope;

impl session_pool::items::ItemCodec for Envelope {
    fn serialize(&self, item: &Json) -> session_pool::Result<String> {
        Ok(json!({"v": 1, "item": item}).to_string())
    }
    fn deserialize(&self, text: &str) -> session_pool::Result<Json> {
        let mut v: Json =
            serde_json::from_str(text).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        v.get_mut("item")
            .map(Json::take)
            .ok_or_else(|| Error::InvalidArgument("no envelope".into()))
    }
}

async fn a_codec_replaces_serialization(db: Database) {
    let store = common::items_store(&db).await.with_codec(Envelope);
    let conv = store.session("wrapped").unwrap();
    conv.add_items(&[msg(0), msg(1)]).await.unwrap();
    let raw = conv.get_raw_items(None).await.unwrap();
    let stored: Json = serde_json::from_str(&raw[0]).unwrap();
    assert_eq!(stored, json!({"v": 1, "item": msg(0)}));
    assert_eq!(conv.get_items(None).await.unwrap(), vec![msg(0), msg(1)]);
    // A row the codec cannot read is skipped, as a corrupt one is.
    conv.add_raw_items(&[r#"{"v": 2}"#]).await.unwrap();
    assert_eq!(conv.get_items(None).await.unwrap(), vec![msg(0), msg(1)]);
    // Popped on the way to the newest item the codec reads.
    assert_eq!(conv.pop_item().await.unwrap(), Some(msg(1)));
    assert_eq!(conv.get_raw_items(None).await.unwrap().len(), 1);
}

on_both!(
    raw_items_are_kept_byte_for_byte,
    a_default_limit_applies_to_unlimited_reads,
    a_codec_replaces_serialization,
    get_add_pop_clear,
    items_are_stored_as_compact_json,
    concurrent_first_writes,
    concurrent_pops_take_distinct_items,
    corrupt_rows_are_skipped,
    bad_input,
    rerun_is_a_no_op,
    the_index_comes_with_a_new_table,
);

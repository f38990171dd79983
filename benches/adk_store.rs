//! The ADK store and the conversation-items store on an embedded SQLite file (WAL), one
//! operation per iteration, through a `FixedSizePool` of 4.
//!
//! ```sh
//! cargo bench --bench adk_store
//! ```
//!
//! `get_events(limit 20)` reads the newest 20 events of a session holding 1,000;
//! `append_event_and_update_state` appends and replaces the state in one transaction, with
//! the compare-and-swap on the update time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
use session_pool::adk::{AdkConfig, AdkStore, EventRecord};
use session_pool::items::{ItemsConfig, ItemsStore};
use session_pool::prelude::*;
use session_pool::{Database, FixedSizeOptions, FixedSizePool};
use tokio::runtime::Runtime;

const APP: &str = "bench_app";
const USER: &str = "bench_user";

/// Unique ids across iterations and benchmarks.
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

fn next_id(prefix: &str) -> String {
    format!("{prefix}-{}", NEXT_ID.fetch_add(1, Relaxed))
}

/// About 250 bytes of JSON content, as in the load generator.
fn content() -> serde_json::Value {
    json!({
        "role": "model",
        "parts": [{"text": "A message of ordinary length, about what an assistant and a user \
            say to each other in one exchange, padded to a typical size for a chat turn in a \
            conversation with an agent."}]
    })
}

fn event(session_id: &str) -> EventRecord {
    let mut e = EventRecord::new(next_id("e"), session_id, APP, USER);
    e.invocation_id = Some("inv".to_owned());
    e.author = Some("assistant".to_owned());
    e.content = Some(content());
    e.turn_complete = Some(true);
    e
}

struct Fixture {
    _dir: tempfile::TempDir,
    pool: Arc<FixedSizePool>,
    adk: AdkStore,
    items: ItemsStore,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("adk_bench.db").display());
    let db = Database::open(&url).await.expect("database");
    let pool = Arc::new(FixedSizePool::new(FixedSizeOptions::default().size(4)).unwrap());
    pool.bind(&db).await.unwrap();
    let adk = AdkStore::new(Arc::clone(&pool), AdkConfig::default()).unwrap();
    adk.create_tables().await.unwrap();
    let items = ItemsStore::new(Arc::clone(&pool), ItemsConfig::default()).unwrap();
    items.create_tables().await.unwrap();
    Fixture {
        _dir: dir,
        pool,
        adk,
        items,
    }
}

async fn new_session(store: &AdkStore) -> String {
    let id = next_id("s");
    store
        .create_session(&id, APP, USER, &json!({"turns": 0}), None)
        .await
        .unwrap();
    id
}

fn adk(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let f = rt.block_on(fixture());
    let mut group = c.benchmark_group("adk_store");
    group.throughput(Throughput::Elements(1));

    let sid = rt.block_on(new_session(&f.adk));
    group.bench_function("append_event", |b| {
        b.to_async(&rt)
            .iter(|| async { f.adk.append_event(&event(&sid)).await.unwrap() })
    });

    let full = rt.block_on(async {
        let sid = new_session(&f.adk).await;
        for _ in 0..1000 {
            f.adk.append_event(&event(&sid)).await.unwrap();
        }
        sid
    });
    group.bench_function("get_events(limit 20) of 1000", |b| {
        b.to_async(&rt).iter(|| async {
            let events = f.adk.get_events(&full, None, Some(20)).await.unwrap();
            assert_eq!(events.len(), 20);
        })
    });

    let sid = rt.block_on(new_session(&f.adk));
    let turn = AtomicU64::new(0);
    group.bench_function("update_session_state", |b| {
        b.to_async(&rt).iter(|| async {
            let state = json!({"turns": turn.fetch_add(1, Relaxed), "stage": "talking"});
            f.adk.update_session_state(&sid, &state).await.unwrap();
        })
    });

    let sid = rt.block_on(new_session(&f.adk));
    let version = parking_lot::Mutex::new(None);
    group.bench_function("append_event_and_update_state (CAS)", |b| {
        b.to_async(&rt).iter(|| async {
            let state = json!({"turns": turn.fetch_add(1, Relaxed), "stage": "talking"});
            let expected = *version.lock();
            let record = f
                .adk
                .append_event_and_update_state(&event(&sid), &state, expected)
                .await
                .unwrap();
            *version.lock() = Some(record.update_time);
        })
    });
    group.finish();

    let mut group = c.benchmark_group("items_store");
    group.throughput(Throughput::Elements(1));
    let conversation = f.items.session("bench_conversation").unwrap();
    group.bench_function("add_items(1)", |b| {
        b.to_async(&rt).iter(|| async {
            conversation.add_items(&[content()]).await.unwrap();
        })
    });
    let full = f.items.session("bench_conversation_full").unwrap();
    rt.block_on(async {
        let batch: Vec<_> = (0..1000).map(|_| content()).collect();
        full.add_items(&batch).await.unwrap();
    });
    group.bench_function("get_items(limit 20) of 1000", |b| {
        b.to_async(&rt).iter(|| async {
            assert_eq!(full.get_items(Some(20)).await.unwrap().len(), 20);
        })
    });
    group.finish();
    rt.block_on(f.pool.close());
}

criterion_group!(benches, adk);
criterion_main!(benches);

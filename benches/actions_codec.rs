//! Reading an event's `actions` column: `ActionsCodec::decode` on this crate's JSON, on the
//! pickle it writes for Python's stores, and on a pickle google-adk 2.13 wrote itself (what
//! a table shared with SQLSpec's Python store holds), one decode per iteration.
//!
//! ```sh
//! cargo bench --bench actions_codec
//! ```
//!
//! A service `get_session` decodes one of these per event it returns: on a table the Python
//! store writes, twenty pickles per read. Instruction counts per decode, from before and
//! after a change, are in BENCHMARKS.md §5 (`valgrind --tool=callgrind` on this bench's
//! binary gives them without timing noise).

use criterion::{Criterion, criterion_group, criterion_main};
use session_pool::adk::{ActionsCodec, EventActions};

/// `pickle.dumps(EventActions(...))` from google-adk 2.13.0 (protocol 4, 1,289 bytes): a
/// state delta, an artifact, a transfer, a tool confirmation and a compaction.
const ADK_PICKLE: &[u8] =
    include_bytes!("../src/adk/pickle/fixtures/adk_2_13_event_actions.pickle");

/// The actions of a turn in `adk_load`: two state keys.
fn turn_actions() -> EventActions {
    let mut actions = EventActions::default();
    actions.state_delta.insert("turns".into(), 6.into());
    actions.state_delta.insert("stage".into(), "turn-5".into());
    actions
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("actions_decode");
    let json = ActionsCodec::Json.encode(&turn_actions()).expect("encodes");
    let pickle = ActionsCodec::Pickle
        .encode(&turn_actions())
        .expect("encodes");
    for (name, bytes) in [
        ("json", &json[..]),
        ("pickle", &pickle[..]),
        ("adk_pickle", ADK_PICKLE),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| ActionsCodec::decode(std::hint::black_box(bytes)).expect("decodes"))
        });
    }
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);

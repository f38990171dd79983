//! With no tracing subscriber, statement spans still reach a `log` logger that takes INFO
//! records (tracing's `log` feature), and stop when its level no longer does.
//!
//! One test: the logger and its level are process-wide, and no subscriber may be set here.
mod common;

use std::sync::Mutex;

use session_pool::prelude::*;

/// Every record the logger took: target and message.
static RECORDS: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        RECORDS
            .lock()
            .unwrap()
            .push((record.target().to_owned(), record.args().to_string()));
    }
    fn flush(&self) {}
}

/// How many records the logger took about statements.
fn statement_records() -> usize {
    RECORDS
        .lock()
        .unwrap()
        .iter()
        .filter(|(target, _)| target == "session_pool::query")
        .count()
}

#[tokio::test]
async fn statement_spans_reach_a_logger_only_at_its_level() {
    log::set_logger(&Capture).expect("the only logger");
    let (db, _dir) = common::sqlite().await;
    let mut s = db.session();
    s.create().await.unwrap();

    log::set_max_level(log::LevelFilter::Info);
    let before = statement_records();
    s.execute_sql("SELECT 1", &[]).await.unwrap();
    assert!(
        statement_records() > before,
        "the span as a record: {:?}",
        RECORDS.lock().unwrap()
    );
    let records = RECORDS.lock().unwrap().clone();
    assert!(
        records
            .iter()
            .any(|(target, msg)| target == "session_pool::query"
                && msg.starts_with("session_pool.statement;")
                && msg.contains("db.operation.name=SELECT")),
        "the span's name and fields: {records:?}"
    );

    log::set_max_level(log::LevelFilter::Warn);
    let before = statement_records();
    s.execute_sql("SELECT 2", &[]).await.unwrap();
    assert_eq!(
        statement_records(),
        before,
        "nothing below the logger's level"
    );

    log::set_max_level(log::LevelFilter::Info);
    let before = statement_records();
    s.execute_sql("SELECT 3", &[]).await.unwrap();
    assert!(
        statement_records() > before,
        "the level is read per statement"
    );
}

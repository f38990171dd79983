//! Tracing spans carry OpenTelemetry's database semantic-convention fields: one span per
//! statement, the query text only when asked for, the SQLSTATE or result code on failure.
mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use session_pool::prelude::*;
use session_pool::{Database, DatabaseOptions};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, SubscriberExt};

type Fields = HashMap<String, String>;

/// Every span this process opened, with its fields as last recorded.
#[derive(Clone, Default)]
struct Spans(Arc<Mutex<HashMap<u64, (String, Fields)>>>);

struct Collect<'a>(&'a mut Fields);

impl Visit for Collect<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(
            field.name().to_owned(),
            format!("{value:?}").trim_matches('"').to_owned(),
        );
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Spans {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        let mut fields = Fields::new();
        attrs.record(&mut Collect(&mut fields));
        let name = attrs.metadata().name().to_owned();
        self.0.lock().unwrap().insert(id.into_u64(), (name, fields));
    }
    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        if let Some((_, fields)) = self.0.lock().unwrap().get_mut(&id.into_u64()) {
            values.record(&mut Collect(fields));
        }
    }
}

fn spans() -> Spans {
    static SPANS: OnceLock<Spans> = OnceLock::new();
    SPANS
        .get_or_init(|| {
            let spans = Spans::default();
            let subscriber = tracing_subscriber::registry().with(spans.clone());
            tracing::subscriber::set_global_default(subscriber).expect("one subscriber");
            spans
        })
        .clone()
}

/// The statement spans whose fields match all of `filter`.
fn statements(filter: &[(&str, &str)]) -> Vec<Fields> {
    spans()
        .0
        .lock()
        .unwrap()
        .values()
        .filter(|(name, _)| name == "session_pool.statement")
        .map(|(_, f)| f.clone())
        .filter(|f| {
            filter
                .iter()
                .all(|(k, v)| f.get(*k).map(String::as_str) == Some(*v))
        })
        .collect()
}

async fn check(db: Database, url: String, system: &str, missing_code: &str) {
    spans();
    let marker = common::unique("traced");
    // Without the opt-in, no query text.
    let mut s = db.session();
    s.create().await.unwrap();
    s.execute_sql(&format!("SELECT 1 AS {marker}"), &[])
        .await
        .unwrap();
    let namespace = db_namespace(&db);
    let found = statements(&[("db.namespace", &namespace), ("otel.name", "SELECT")]);
    assert!(!found.is_empty(), "a span per statement");
    for f in &found {
        assert_eq!(f["db.system.name"], system);
        assert_eq!(f["db.operation.name"], "SELECT");
        assert_eq!(f["otel.kind"], "client");
        assert!(
            !f.contains_key("db.query.text"),
            "no text unless asked: {f:?}"
        );
    }

    // With it, the text; and a failure's code.
    let db = DatabaseOptions::new(url)
        .trace_query_text(true)
        .open()
        .await
        .unwrap();
    let mut s = db.session();
    s.create().await.unwrap();
    let ok_sql = format!("SELECT 2 AS {marker}");
    s.execute_sql(&ok_sql, &[]).await.unwrap();
    let bad_sql = format!("SELECT * FROM missing_{marker}");
    assert!(s.execute_sql(&bad_sql, &[]).await.is_err());

    let ok = statements(&[("db.query.text", &ok_sql)]);
    assert_eq!(ok.len(), 1, "{ok:?}");
    assert!(!ok[0].contains_key("error.type"));
    let bad = statements(&[("db.query.text", &bad_sql)]);
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert_eq!(bad[0]["db.response.status_code"], missing_code);
    assert_eq!(bad[0]["otel.status_code"], "ERROR");
    assert_eq!(bad[0]["error.type"], "Database");
    if system == "postgresql" {
        assert!(bad[0].contains_key("server.address"), "{:?}", bad[0]);
        assert!(bad[0].contains_key("server.port"), "{:?}", bad[0]);
    }
}

fn db_namespace(db: &Database) -> String {
    match db.dialect() {
        session_pool::Dialect::Postgres => {
            let url = common::pg_url().unwrap();
            url.rsplit('/')
                .next()
                .unwrap()
                .split('?')
                .next()
                .unwrap()
                .to_owned()
        }
        _ => db.name().trim_start_matches("sqlite://").to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_spans_on_sqlite() {
    let (db, _dir) = common::sqlite().await;
    let url = db.name().to_owned();
    check(db, url, "sqlite", "1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_spans_on_postgres() {
    let Some(db) = common::postgres().await else {
        return;
    };
    check(db, common::pg_url().unwrap(), "postgresql", "42P01").await;
}

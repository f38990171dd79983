//! Tracing spans with OpenTelemetry's database semantic conventions, one per statement
//! (target `session_pool::query`, level INFO). With no subscriber interested, a span costs
//! one cached check and none of its fields are computed; with no subscriber enabling INFO
//! and `log` not taking INFO records, two atomic loads (see [`listening`]).
//!
//! Fields: `otel.name` and `db.operation.name` (the statement's first keyword),
//! `otel.kind` = `client`, `db.system.name` (`postgresql` or `sqlite`), `db.namespace`
//! (the database name, or the SQLite file), `server.address` and `server.port`
//! (PostgreSQL), `db.query.text` (only with
//! [`DatabaseOptions::trace_query_text`](crate::DatabaseOptions::trace_query_text)), and
//! on failure `db.response.status_code` (SQLSTATE or SQLite result code), `error.type`
//! and `otel.status_code` = `ERROR`.

use tracing::Span;
use tracing::field::Empty;

use crate::error::Error;

/// The statement's operation: its first keyword (`select`, `INSERT`, …), shown upper-cased
/// by [`Upper`] without allocating.
pub(crate) fn operation(sql: &str) -> &str {
    let mut rest = sql.trim_start();
    // Skip leading comments.
    loop {
        if let Some(r) = rest.strip_prefix("--") {
            rest = r.split_once('\n').map_or("", |(_, r)| r).trim_start();
        } else if let Some(r) = rest.strip_prefix("/*") {
            rest = r.split_once("*/").map_or("", |(_, r)| r).trim_start();
        } else {
            break;
        }
    }
    rest.split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or("")
}

/// Shows ASCII text upper-cased.
pub(crate) struct Upper<'a>(pub(crate) &'a str);

/// Shows a statement's [`operation`], upper-cased. Found only when shown: a span's field
/// values are built even when no subscriber wants the span (for `log`'s sake), and the
/// keyword is rarely wanted.
struct Operation<'a>(&'a str);

impl std::fmt::Display for Operation<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&Upper(operation(self.0)), f)
    }
}

impl std::fmt::Display for Upper<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::fmt::Write;
        self.0
            .chars()
            .try_for_each(|c| f.write_char(c.to_ascii_uppercase()))
    }
}

/// Whether an INFO span made now could reach anyone: some `tracing` subscriber enables INFO
/// (its callsite interest then decides, cached), or `log` takes INFO records.
///
/// `tracing`'s `log` feature (on in sqlx's tree) makes every span a `log` record while no
/// subscriber is set, whatever `log`'s level: its macros then build the span's fields and
/// call into `log` once when the span is made and again when it is dropped: per statement,
/// about 60 instructions and their cache misses in a program with neither a subscriber nor
/// a logger (BENCHMARKS.md, 3h). [`Span::none`] skips it. Both levels are atomics that
/// subscribers and loggers keep up to date (`LevelFilter::current` is `OFF` until a
/// subscriber is set).
#[inline]
fn listening() -> bool {
    tracing::level_filters::LevelFilter::current() >= tracing::Level::INFO
        || log::max_level() >= log::LevelFilter::Info
}

/// The span of one statement on the database `meta` describes; `text` is the SQL when there is one to show.
pub(crate) fn statement(meta: &DbMeta, sql: &str, text: bool) -> Span {
    if !listening() {
        return Span::none();
    }
    let span = tracing::info_span!(
        target: "session_pool::query",
        "session_pool.statement",
        otel.name = tracing::field::display(Operation(sql)),
        otel.kind = "client",
        otel.status_code = Empty,
        db.system.name = meta.system,
        db.namespace = %meta.namespace,
        db.operation.name = tracing::field::display(Operation(sql)),
        db.query.text = Empty,
        db.response.status_code = Empty,
        error.type = Empty,
        server.address = meta.address.as_deref(),
        server.port = meta.port,
    );
    if text && meta.query_text && !span.is_disabled() {
        span.record("db.query.text", sql);
    }
    span
}

/// The span of a session's lifecycle operation (`create`, `delete`, `exists`, and the
/// pool's checkouts that must wait, check or create), target `session_pool::session`.
pub(crate) fn session_op(meta: &DbMeta, op: &'static str) -> Span {
    if !listening() {
        return Span::none();
    }
    tracing::info_span!(
        target: "session_pool::session",
        "session_pool.session",
        otel.name = op,
        otel.kind = "client",
        otel.status_code = Empty,
        db.system.name = meta.system,
        db.namespace = %meta.namespace,
        session_pool.operation = op,
        error.type = Empty,
        db.response.status_code = Empty,
        server.address = meta.address.as_deref(),
        server.port = meta.port,
    )
}

/// Runs `fut` in `span`, recording its failure there.
///
/// `fut` comes pinned (`std::pin::pin!` or a box), so the statement's future is stored
/// once, in its caller's frame, rather than moved into every layer above it; and a span
/// no subscriber wants costs one check per poll, not an enter and exit (which with
/// `tracing`'s `log` feature, on in sqlx's tree, call into `log`).
pub(crate) fn traced<F: std::future::Future + Unpin>(span: Span, fut: F) -> Traced<F> {
    Traced { span, fut }
}

/// The future [`traced`] returns.
pub(crate) struct Traced<F> {
    span: Span,
    fut: F,
}

impl<T, F> std::future::Future for Traced<F>
where
    F: std::future::Future<Output = crate::error::Result<T>> + Unpin,
{
    type Output = crate::error::Result<T>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = &mut *self;
        if this.span.is_disabled() {
            return std::pin::Pin::new(&mut this.fut).poll(cx);
        }
        let _entered = this.span.enter();
        let res = std::task::ready!(std::pin::Pin::new(&mut this.fut).poll(cx));
        if let Err(e) = &res {
            failed(&this.span, e);
        }
        std::task::Poll::Ready(res)
    }
}

/// Records a failure on `span`.
pub(crate) fn failed(span: &Span, err: &Error) {
    if span.is_disabled() {
        return;
    }
    span.record("otel.status_code", "ERROR");
    span.record("error.type", tracing::field::debug(err.kind()));
    if let Some(code) = err.code() {
        span.record("db.response.status_code", code);
    }
}

/// What the spans of a database say about it, worked out once when it is opened.
#[derive(Debug, Clone)]
pub(crate) struct DbMeta {
    pub(crate) system: &'static str,
    pub(crate) namespace: String,
    pub(crate) address: Option<String>,
    pub(crate) port: Option<u16>,
    pub(crate) query_text: bool,
}

#[cfg(test)]
mod tests {
    use super::{Upper, operation};

    #[test]
    fn operation_is_the_first_keyword() {
        let op = |sql| Upper(operation(sql)).to_string();
        assert_eq!(op("  select 1"), "SELECT");
        assert_eq!(op("-- note\n/* x */ INSERT INTO t"), "INSERT");
        assert_eq!(op("WITH x AS (SELECT 1) SELECT * FROM x"), "WITH");
        assert_eq!(op(""), "");
    }
}

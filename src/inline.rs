//! Client-side literals for PostgreSQL behind a transaction pooler: `$n` placeholders
//! replaced by typed literals, so each statement is one simple-protocol message.
//!
//! sqlx's extended protocol splits a statement over two Syncs (parse and describe, then
//! bind and execute), and a transaction pooler may hand the next Sync to another server
//! connection. A simple `Query` is one message and one round trip, as pgx's
//! `QueryExecModeSimpleProtocol` sends it.
//!
//! Every literal is a quoted string with a cast to the type the extended protocol would
//! have bound (`E'…'::text`, `'42'::int8`, `'\\x00ff'::bytea`…), so it means what the
//! parameter meant, and no value can end the literal: strings are written in escape syntax
//! (`E'…'`, `\` and `'` doubled), which reads the same whatever
//! `standard_conforming_strings` says. Placeholders inside string literals, quoted
//! identifiers, dollar-quoted strings and comments are left alone (the statement's own
//! literals are read as `standard_conforming_strings = on` reads them, the default since
//! PostgreSQL 9.1).

use std::fmt::Write as _;

use chrono::{Datelike, NaiveDate, Timelike};

use crate::error::{Error, Result};
use crate::param::{AsParam, Param};

/// `sql` with each `$n` replaced by parameter `n`'s literal, appended to `out` (what the
/// statement's text starts with: the session's mark, a timeout). A placeholder beyond the
/// parameters given is [`Error::InvalidArgument`]; parameters no placeholder uses are
/// ignored (the extended protocol would have bound them unused).
pub(crate) fn inline_after(mut out: String, sql: &str, params: &[impl AsParam]) -> Result<String> {
    let mut last = 0;
    for (start, end, n) in placeholders(sql) {
        let Some(param) = n.checked_sub(1).and_then(|i| params.get(i)) else {
            return Err(Error::invalid(format!(
                "the statement uses ${n}, but {} parameter(s) were given",
                params.len()
            )));
        };
        out.push_str(&sql[last..start]);
        literal(&mut out, &param.as_param());
        last = end;
    }
    out.push_str(&sql[last..]);
    Ok(out)
}

/// Where the `$n` placeholders are: `(start, end, n)`, outside literals and comments.
pub(crate) fn placeholders(sql: &str) -> Vec<(usize, usize, usize)> {
    let b = sql.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let prev_ident = i > 0 && is_ident(b[i - 1]);
        match b[i] {
            b'\'' => {
                // E'…' (or e'…') strings take backslash escapes; others only ''.
                let escapes =
                    i > 0 && matches!(b[i - 1], b'E' | b'e') && (i < 2 || !is_ident(b[i - 2]));
                i = skip_string(b, i + 1, escapes);
            }
            b'"' => i = skip_string(b, i + 1, false),
            b'-' if b.get(i + 1) == Some(&b'-') => {
                i = b[i..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(b.len(), |p| i + p + 1);
            }
            b'/' if b.get(i + 1) == Some(&b'*') => i = skip_block_comment(b, i + 2),
            b'$' if !prev_ident => {
                let start = i;
                let mut end = i + 1;
                while end < b.len() && b[end].is_ascii_digit() {
                    end += 1;
                }
                if end > i + 1 {
                    let n = sql[i + 1..end].parse().unwrap_or(usize::MAX);
                    found.push((start, end, n));
                    i = end;
                } else if let Some(tag_end) = dollar_tag(b, i) {
                    // $tag$ … $tag$: skip to the same tag.
                    let tag = &b[i..=tag_end];
                    i = find(b, tag_end + 1, tag).map_or(b.len(), |p| p + tag.len());
                } else {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    found
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

/// The index after the closing quote of a string or quoted identifier starting at `i`.
fn skip_string(b: &[u8], mut i: usize, escapes: bool) -> usize {
    let q = b[i - 1];
    while i < b.len() {
        match b[i] {
            b'\\' if escapes => i += 2,
            c if c == q => {
                if b.get(i + 1) == Some(&q) {
                    i += 2;
                } else {
                    return i + 1;
                }
            }
            _ => i += 1,
        }
    }
    b.len()
}

/// PostgreSQL's block comments nest.
fn skip_block_comment(b: &[u8], mut i: usize) -> usize {
    let mut depth = 1;
    while i < b.len() {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            depth += 1;
            i += 2;
        } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    b.len()
}

/// The index of the closing `$` of a dollar-quote tag starting at `i` (`$$`, `$fn$`).
fn dollar_tag(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    if j < b.len() && (b[j].is_ascii_alphabetic() || b[j] == b'_' || b[j] >= 0x80) {
        j += 1;
        while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_' || b[j] >= 0x80) {
            j += 1;
        }
    }
    (b.get(j) == Some(&b'$')).then_some(j)
}

fn find(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    b.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| from + p)
}

/// Appends the literal for `p`, typed as the extended protocol binds it.
pub(crate) fn literal(out: &mut String, p: &Param<'_>) {
    match p {
        Param::Null => out.push_str("NULL"),
        Param::Bool(true) => out.push_str("TRUE"),
        Param::Bool(false) => out.push_str("FALSE"),
        Param::Int(i) => {
            let _ = write!(out, "'{i}'::int8");
        }
        Param::Float(f) => {
            if f.is_nan() {
                out.push_str("'NaN'::float8");
            } else if f.is_infinite() {
                out.push_str(if *f > 0.0 {
                    "'Infinity'::float8"
                } else {
                    "'-Infinity'::float8"
                });
            } else {
                // Rust's shortest round-trip form; PostgreSQL reads it back exactly.
                let _ = write!(out, "'{f:?}'::float8");
            }
        }
        Param::Text(s) => {
            escaped(out, s);
            out.push_str("::text");
        }
        Param::Json(j) => {
            escaped(out, &j.to_string());
            out.push_str("::jsonb");
        }
        Param::Bytes(bytes) => {
            out.reserve(bytes.len() * 2 + 16);
            out.push_str("E'\\\\x");
            for b in bytes.iter() {
                let _ = write!(out, "{b:02x}");
            }
            out.push_str("'::bytea");
        }
        Param::Timestamp(t) => {
            out.push('\'');
            date(out, t.date_naive());
            let _ = write!(
                out,
                " {:02}:{:02}:{:02}.{:06}+00",
                t.hour(),
                t.minute(),
                t.second(),
                t.nanosecond() / 1000
            );
            era(out, t.year());
            out.push_str("'::timestamptz");
        }
        Param::Numeric(n) => {
            // Digits, a sign, a point, or NaN/Infinity: nothing to escape.
            let _ = write!(out, "'{n}'::numeric");
        }
        Param::Uuid(u) => {
            let _ = write!(out, "'{}'::uuid", u.hyphenated());
        }
        Param::Date(d) => {
            out.push('\'');
            date(out, *d);
            era(out, d.year());
            out.push_str("'::date");
        }
        Param::Time(t) => {
            let _ = write!(
                out,
                "'{:02}:{:02}:{:02}.{:06}'::time",
                t.hour(),
                t.minute(),
                t.second(),
                t.nanosecond() / 1000
            );
        }
    }
}

/// `E'…'` with `\` and `'` doubled: the same under either `standard_conforming_strings`.
fn escaped(out: &mut String, s: &str) {
    out.reserve(s.len() + 4);
    out.push_str("E'");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("''"),
            c => out.push(c),
        }
    }
    out.push('\'');
}

/// `YYYY-MM-DD`, with the year as PostgreSQL counts it (no year 0: 1 BC is year 0 here).
fn date(out: &mut String, d: NaiveDate) {
    let y = d.year();
    let y = if y <= 0 { 1 - y } else { y };
    let _ = write!(out, "{y:04}-{:02}-{:02}", d.month(), d.day());
}

fn era(out: &mut String, year: i32) {
    if year <= 0 {
        out.push_str(" BC");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inline(sql: &str, params: &[impl AsParam]) -> Result<String> {
        inline_after(String::new(), sql, params)
    }
    use crate::value::Value;

    #[test]
    fn placeholders_outside_literals_and_comments_only() {
        let sql = "SELECT $1, '$2', E'\\'$3', \"$4\", $$ $5 $$, $q$ $6 $q$, a$7, -- $8\n \
                   /* $9 /* $10 */ $11 */ $12::text, $13";
        let n: Vec<usize> = placeholders(sql).into_iter().map(|p| p.2).collect();
        assert_eq!(n, [1, 12, 13]);
    }

    #[test]
    fn literals_are_typed_and_escaped() {
        let sql = inline(
            "INSERT INTO t VALUES ($1, $2, $3, $4, $5, $2)",
            &[
                Value::Text("it's a \\ test".into()),
                Value::Int(-5),
                Value::Null,
                Value::Bytes(vec![0, 255]),
                Value::Float(0.1),
            ],
        )
        .unwrap();
        assert_eq!(
            sql,
            "INSERT INTO t VALUES (E'it''s a \\\\ test'::text, '-5'::int8, NULL, \
             E'\\\\x00ff'::bytea, '0.1'::float8, '-5'::int8)"
        );
        // `x-$1` must not become a comment.
        assert_eq!(
            inline("SELECT 1-$1", &[Value::Int(-1)]).unwrap(),
            "SELECT 1-'-1'::int8"
        );
    }

    #[test]
    fn a_missing_parameter_is_an_error() {
        let err = inline("SELECT $1, $2", &[Value::Int(1)]).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
        assert!(inline("SELECT $0", &[Value::Int(1)]).is_err());
    }

    #[test]
    fn dates_before_the_common_era() {
        let d = NaiveDate::from_ymd_opt(-1, 3, 4).unwrap(); // 2 BC
        let mut out = String::new();
        literal(&mut out, &Param::Date(d));
        assert_eq!(out, "'0002-03-04 BC'::date");
    }

    /// Property tests against a real server: for any value, the literal is exactly the
    /// value the extended protocol binds (`IS NOT DISTINCT FROM` the bound parameter), and
    /// the statement around it keeps its shape (one row, the trailing `'end'` intact).
    mod against_postgres {
        use super::*;
        use proptest::prelude::*;
        use sqlx::{Connection, Row};

        fn server() -> Option<(tokio::runtime::Runtime, sqlx::PgConnection)> {
            let url = match std::env::var("DATABASE_URL") {
                Ok(u) if u.starts_with("postgres") && !u.contains("pgbouncer=") => u,
                _ if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") => {
                    panic!("CI=true but DATABASE_URL names no direct PostgreSQL server")
                }
                _ => return None,
            };
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let conn = rt
                .block_on(sqlx::PgConnection::connect(&url))
                .expect("PostgreSQL reachable");
            Some((rt, conn))
        }

        fn same_as_bound(rt: &tokio::runtime::Runtime, conn: &mut sqlx::PgConnection, v: &Value) {
            let lit = inline("$1", std::slice::from_ref(v)).unwrap();
            assert!(placeholders(&lit).is_empty(), "{lit}");
            if *v == Value::Null {
                // An untyped NULL both ways; the server cannot type `NULL = $1`.
                assert_eq!(lit, "NULL");
                return;
            }
            let sql = format!("SELECT ({lit}) IS NOT DISTINCT FROM $1, 'end'");
            let q = crate::conn::pg_query_for_tests(sql, std::slice::from_ref(v));
            let row = rt
                .block_on(q.fetch_one(&mut *conn))
                .unwrap_or_else(|e| panic!("{v:?} as {lit}: {e}"));
            assert_eq!(row.len(), 2, "{lit}");
            assert!(
                row.get::<bool, _>(0),
                "{v:?} reads back otherwise from {lit}"
            );
            assert_eq!(row.get::<String, _>(1), "end", "{lit}");
        }

        fn text() -> impl Strategy<Value = String> {
            // Any Unicode but NUL (PostgreSQL text cannot hold it), weighted towards the
            // characters that matter to quoting.
            let tricky = prop::sample::select(vec![
                "'",
                "''",
                "\\",
                "\\'",
                "$$",
                "$1",
                "$q$",
                "--",
                "/*",
                "*/",
                "\"",
                ";",
                "E'",
                "\n",
                "\u{1F980}",
                "é",
            ]);
            prop::collection::vec(
                prop_oneof![
                    tricky.prop_map(str::to_owned),
                    any::<char>()
                        .prop_filter("no NUL", |c| *c != '\0')
                        .prop_map(String::from),
                ],
                0..24,
            )
            .prop_map(|parts| parts.concat())
        }

        fn json() -> impl Strategy<Value = serde_json::Value> {
            let leaf = prop_oneof![
                Just(serde_json::Value::Null),
                any::<bool>().prop_map(serde_json::Value::Bool),
                any::<i64>().prop_map(serde_json::Value::from),
                (-1e15f64..1e15).prop_map(serde_json::Value::from),
                text().prop_map(serde_json::Value::String),
            ];
            leaf.prop_recursive(3, 24, 4, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
                    prop::collection::btree_map(text(), inner, 0..4)
                        .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
                ]
            })
        }

        fn value() -> impl Strategy<Value = Value> {
            // PostgreSQL's timestamp range is 4713 BC to 294276 AD.
            let micros = -210_000_000_000_000_000i64..9_000_000_000_000_000i64;
            prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(Value::Int),
                any::<f64>().prop_map(Value::Float),
                text().prop_map(Value::Text),
                prop::collection::vec(any::<u8>(), 0..64).prop_map(Value::Bytes),
                json().prop_map(Value::Json),
                micros.prop_map(|m| Value::Timestamp(
                    chrono::DateTime::from_timestamp_micros(m).unwrap()
                )),
                (any::<bool>(), "[0-9]{1,30}", "[0-9]{0,20}").prop_map(|(neg, i, f)| {
                    let s = format!(
                        "{}{i}{}{f}",
                        if neg { "-" } else { "" },
                        if f.is_empty() { "" } else { "." }
                    );
                    Value::Numeric(s.parse().unwrap())
                }),
                any::<u128>().prop_map(|u| Value::Uuid(uuid::Uuid::from_u128(u))),
                (-4700i32..200_000, 1u32..=365)
                    .prop_map(|(y, d)| Value::Date(NaiveDate::from_yo_opt(y, d).unwrap())),
                (0u32..86_400, 0u32..1_000_000).prop_map(|(s, us)| Value::Time(
                    chrono::NaiveTime::from_num_seconds_from_midnight_opt(s, us * 1000).unwrap()
                )),
            ]
        }

        #[test]
        fn every_literal_is_the_bound_value_and_keeps_the_statement() {
            let Some((rt, mut conn)) = server() else {
                eprintln!("skipping: DATABASE_URL names no PostgreSQL server");
                return;
            };
            // The edges first, then random values.
            for v in [
                Value::Float(f64::NAN),
                Value::Float(f64::INFINITY),
                Value::Float(f64::NEG_INFINITY),
                Value::Float(-0.0),
                Value::Float(f64::MIN_POSITIVE),
                Value::Float(5e-324),
                Value::Float(f64::MAX),
                Value::Int(i64::MIN),
                Value::Text("'); DROP TABLE x; --".into()),
                Value::Text("\\'".into()),
                Value::Numeric("NaN".parse().unwrap()),
            ] {
                same_as_bound(&rt, &mut conn, &v);
            }
            let config = ProptestConfig {
                cases: 512,
                failure_persistence: None,
                ..ProptestConfig::default()
            };
            let conn = std::cell::RefCell::new(conn);
            proptest!(config, |(v in value())| {
                same_as_bound(&rt, &mut conn.borrow_mut(), &v);
            });
        }
    }
}

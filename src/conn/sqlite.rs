//! SQLite: binding [`Value`]s, decoding columns by storage class, and statements whose
//! columns a schema change can move.

use std::sync::Arc;

use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{AssertSqlSafe, Column, Row as _, SqlSafeStr, SqlStr, Sqlite, TypeInfo, ValueRef};

use super::run::{bind_error, decode_each};
use super::{ExecResult, IntoSql, column_names, unsupported};
use crate::param::{AsParam, Param};
use crate::value::Value;

pub(super) type Query = sqlx::query::Query<'static, Sqlite, SqliteArguments>;

/// Binds `params` to `sql`, sized up front and in place (as on PostgreSQL); a value
/// that fails to encode is an encode error naming its position, before anything runs.
pub(super) fn query(sql: impl IntoSql, params: &[impl AsParam]) -> Result<Query, sqlx::Error> {
    if sql.star_columns() {
        // Never cached, and after `REFRESH_SCHEMA` in the same text: sqlx-sqlite
        // prepares each statement of a text once the one before it has run, so the
        // `*` is expanded against the schema as it is (see `star_columns`). sqlx 0.9
        // marks texts of several statements deprecated for a later release; should it
        // stop running them, `tests/schema_change.rs` fails.
        let text = format!("{REFRESH_SCHEMA}; {}", sql.text());
        return bind(AssertSqlSafe(text).into_sql_str(), params, false);
    }
    bind(sql.into_sql(), params, true)
}

/// Binds `params` to `sql`, a statement cached by sqlx-sqlite or not.
pub(super) fn bind(
    sql: SqlStr,
    params: &[impl AsParam],
    cached: bool,
) -> Result<Query, sqlx::Error> {
    let mut args = SqliteArguments::default();
    sqlx::Arguments::reserve(&mut args, params.len(), 0);
    let mut q = sqlx::query_with(sql, args).persistent(cached);
    for (n, v) in params.iter().enumerate() {
        match v.as_param() {
            Param::Null => q.try_bind(None::<i64>),
            Param::Bool(b) => q.try_bind(b),
            Param::Int(i) => q.try_bind(i),
            Param::Float(f) => q.try_bind(f),
            Param::Text(s) => q.try_bind(s),
            Param::Bytes(b) => q.try_bind(b),
            Param::Json(j) => q.try_bind(j.to_string()),
            Param::Timestamp(t) => q.try_bind(t),
            // SQLite has no such types: their text, which reads back into them.
            Param::Numeric(n) => q.try_bind(n.to_string()),
            Param::Uuid(u) => q.try_bind(u.hyphenated().to_string()),
            Param::Date(d) => q.try_bind(d.to_string()),
            Param::Time(t) => q.try_bind(t.to_string()),
        }
        .map_err(|e| bind_error(n, e))?;
    }
    Ok(q)
}

/// Run before a statement whose columns come from a `*` (`star_columns`): it returns
/// nothing, but reads the schema cookie as it starts, so the connection reloads a
/// schema another connection changed before that statement is prepared.
pub(super) const REFRESH_SCHEMA: &str = "SELECT 1 FROM sqlite_master LIMIT 0";

/// Whether a statement's result columns may come from a `*` (`SELECT *`, `t.*`,
/// `RETURNING *`), so that an `ALTER TABLE` can change how many there are. SQLite
/// prepares a statement against the schema it last read, and when it runs one whose
/// schema changed it prepares it again by itself; but sqlx-sqlite 0.9 keeps the
/// columns of the first preparation, so the next row panics its worker thread (the
/// column count no longer matches), the result ends early as if empty, and the
/// connection is dead. Such statements are therefore never cached, and run after
/// [`REFRESH_SCHEMA`]. Conservative: any `*` but that of `count(*)` counts.
pub(super) fn star_columns(sql: &str) -> bool {
    sql.match_indices('*')
        .any(|(i, _)| !(sql[..i].ends_with('(') && sql[i + 1..].starts_with(')')))
}

pub(super) fn columns(row: &SqliteRow) -> Arc<[String]> {
    column_names(row.columns())
}

pub(super) fn decode(row: &SqliteRow) -> ExecResult<Vec<Value>> {
    decode_each(0..row.len(), |i| decode_column(row, i))
}

pub(super) fn decode_column(row: &SqliteRow, i: usize) -> ExecResult<Value> {
    // SQLite types values, not columns: read the value's storage class, and use the
    // declared column type only to tell booleans from integers.
    let col = row.try_column(i)?;
    let raw = row.try_get_raw(i)?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let storage = raw.type_info();
    Ok(match storage.name() {
        "INTEGER" if col.type_info().name().eq_ignore_ascii_case("BOOLEAN") => {
            Value::Bool(row.try_get_unchecked::<i64, _>(i)? != 0)
        }
        "INTEGER" => Value::Int(row.try_get_unchecked::<i64, _>(i)?),
        "REAL" => Value::Float(row.try_get_unchecked::<f64, _>(i)?),
        "TEXT" => Value::Text(row.try_get_unchecked::<String, _>(i)?),
        "BLOB" => Value::Bytes(row.try_get_unchecked::<Vec<u8>, _>(i)?),
        other => return Err(unsupported(col.name(), other)),
    })
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use super::star_columns;

    #[test]
    fn star_columns_are_told_from_count_star() {
        for sql in [
            "SELECT * FROM t",
            "SELECT t.* FROM t JOIN u ON u.id = t.id",
            "INSERT INTO t VALUES (1) RETURNING *",
            "SELECT count(*), * FROM t",
            "SELECT a * 2 FROM t",
        ] {
            assert!(star_columns(sql), "{sql}");
        }
        for sql in ["SELECT count(*) FROM t", "SELECT a, b FROM t", ""] {
            assert!(!star_columns(sql), "{sql}");
        }
    }
}

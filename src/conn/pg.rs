//! PostgreSQL: binding [`Value`]s (or inlining them for a transaction pooler) and decoding
//! columns.

use std::sync::Arc;

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::types::Oid;
use sqlx::postgres::{PgArgumentBuffer, PgArguments, PgConnection, PgRow, PgTypeInfo};
use sqlx::{AssertSqlSafe, Column, Postgres, Row as _, SqlSafeStr, TypeInfo};

use super::run::{bind_error, decode_each};
use super::{ExecResult, IntoSql, PoolerLink, column_names, unsupported};
use crate::param::{AsParam, Param};
use crate::value::Value;

/// A NULL with no declared type (OID 0), so the server infers it from context, as for a
/// literal `NULL`; a typed NULL would fail against columns of any other type.
struct UntypedNull;

impl sqlx::Type<Postgres> for UntypedNull {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(Oid(0))
    }
}

impl sqlx::Encode<'_, Postgres> for UntypedNull {
    fn encode_by_ref(&self, _: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        Ok(IsNull::Yes)
    }
}

/// NUMERIC in PostgreSQL's binary form, read and written by
/// [`Numeric`](crate::value::Numeric)'s codec.
pub(super) struct PgNumeric(pub(super) crate::value::Numeric);

const NUMERIC_OID: Oid = Oid(1700);

impl sqlx::Type<Postgres> for PgNumeric {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(NUMERIC_OID)
    }
}

impl sqlx::Encode<'_, Postgres> for PgNumeric {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        buf.extend_from_slice(&self.0.to_pg_binary());
        Ok(IsNull::No)
    }
}

impl<'r> sqlx::Decode<'r, Postgres> for PgNumeric {
    fn decode(value: sqlx::postgres::PgValueRef<'r>) -> Result<Self, BoxDynError> {
        use sqlx::postgres::PgValueFormat;
        match value.format() {
            PgValueFormat::Binary => Ok(PgNumeric(crate::value::Numeric::from_pg_binary(
                value.as_bytes()?,
            )?)),
            PgValueFormat::Text => Ok(PgNumeric(value.as_str()?.parse()?)),
        }
    }
}

pub(crate) type Query = sqlx::query::Query<'static, Postgres, PgArguments>;

pub(crate) fn query(sql: impl IntoSql, params: &[impl AsParam]) -> Result<Query, sqlx::Error> {
    let fits = sql.verdict(params) == crate::param_types::Verdict::Fits;
    bind(sql, params, fits)
}

/// [`query`], asking the connection's statement cache (no round trip when the text is
/// cached) when the first run's NULLs leave the parameters' types open.
pub(crate) async fn query_on(
    c: &mut PgConnection,
    sql: impl IntoSql,
    params: &[impl AsParam],
) -> Result<Query, sqlx::Error> {
    use crate::param_types::{Verdict, fits_statement};
    use sqlx::{Executor, Statement};
    let fits = match sql.verdict(params) {
        Verdict::Fits => true,
        Verdict::Differs => false,
        Verdict::Ask => {
            let text = AssertSqlSafe(sql.text().to_owned()).into_sql_str();
            let statement = c.prepare(text).await?;
            let types: Vec<&str> = match statement.parameters() {
                Some(sqlx::Either::Left(types)) => types.iter().map(|t| t.name()).collect(),
                _ => Vec::new(),
            };
            fits_statement(sql.text(), params, &types)
        }
    };
    bind(sql, params, fits)
}

/// Binds `params` to `sql`; `cached` false gives the statement a text of its own,
/// unnamed and never cached (sqlx looks its cache up by text even for
/// `persistent(false)`), for parameters of other types than the cached statement's.
/// A value that fails to encode is the error sqlx gives when such a query is run.
fn bind(sql: impl IntoSql, params: &[impl AsParam], cached: bool) -> Result<Query, sqlx::Error> {
    // Sized up front: grown value by value, the type list and the buffer were each
    // reallocated (and copied) several times per statement.
    let mut args = PgArguments::default();
    sqlx::Arguments::reserve(&mut args, params.len(), encoded_size(params));
    let mut query = if cached {
        sqlx::query_with(sql.into_sql(), args)
    } else {
        let text = format!(
            "{}\n/* parameter types differ from the cached statement's */",
            sql.text()
        );
        sqlx::query_with(AssertSqlSafe(text).into_sql_str(), args).persistent(false)
    };
    // In place: `Query::bind` takes and returns the query by value, a copy per value.
    for (n, v) in params.iter().enumerate() {
        let q = &mut query;
        match v.as_param() {
            Param::Null => q.try_bind(UntypedNull),
            Param::Bool(b) => q.try_bind(b),
            Param::Int(i) => q.try_bind(i),
            Param::Float(f) => q.try_bind(f),
            Param::Text(s) => q.try_bind(s),
            Param::Bytes(b) => q.try_bind(b),
            Param::Json(j) => q.try_bind(sqlx::types::Json(j)),
            Param::Timestamp(t) => q.try_bind(t),
            Param::Numeric(n) => q.try_bind(PgNumeric(n.clone())),
            Param::Uuid(u) => q.try_bind(u),
            Param::Date(d) => q.try_bind(d),
            Param::Time(t) => q.try_bind(t),
        }
        .map_err(|e| bind_error(n, e))?;
    }
    Ok(query)
}

/// About how many bytes `params` take in the binary bind message: each value's length
/// word and its payload (a guess for JSON, whose text is not known before it is written).
fn encoded_size(params: &[impl AsParam]) -> usize {
    params
        .iter()
        .map(|v| {
            4 + match v.as_param() {
                Param::Null => 0,
                Param::Bool(_) => 1,
                Param::Int(_) | Param::Float(_) | Param::Timestamp(_) | Param::Time(_) => 8,
                Param::Date(_) => 4,
                Param::Uuid(_) => 16,
                Param::Numeric(_) => 16,
                Param::Text(s) => s.len(),
                Param::Bytes(b) => b.len(),
                Param::Json(_) => 128,
            }
        })
        .sum()
}

/// The statement as one simple-protocol message with client-side literals, for a
/// transaction pooler; with the link's server-side timeout when it has one.
pub(super) fn inline(
    sql: impl IntoSql,
    params: &[impl AsParam],
    link: &PoolerLink,
) -> ExecResult<sqlx::RawSql> {
    use std::fmt::Write;
    let sql = sql.text();
    // The head first (mark, timeout), the statement written after it: one buffer.
    let mut text =
        String::with_capacity(crate::pooler::Mark::LEN + 40 + sql.len() + 16 * params.len());
    if let Some(key) = link.mark {
        // First in the text, as `pg_stat_activity` shows it (see `Mark`).
        crate::pooler::Mark::write(key, &mut text);
    }
    if let Some(t) = link.timeout {
        let ms = t.as_millis().clamp(1, i32::MAX as u128);
        let _ = write!(text, "SET LOCAL statement_timeout = {ms}; ");
    }
    let mut text = crate::inline::inline_after(text, sql, params)?;
    if link.timeout.is_some() && link.in_transaction {
        // SET LOCAL lasts to the end of the (implicit) transaction the message runs in;
        // inside an open one it is put back after the statement.
        text.push_str("; SET LOCAL statement_timeout TO DEFAULT");
    }
    Ok(sqlx::raw_sql(AssertSqlSafe(text)))
}

pub(super) fn columns(row: &PgRow) -> Arc<[String]> {
    column_names(row.columns())
}

pub(super) fn decode(row: &PgRow) -> ExecResult<Vec<Value>> {
    decode_each(0..row.len(), |i| decode_column(row, i))
}

pub(super) fn decode_column(row: &PgRow, i: usize) -> ExecResult<Value> {
    let col = row.try_column(i)?;
    let ty = col.type_info().name();
    Ok(match ty {
        "BOOL" => row.try_get::<Option<bool>, _>(i)?.into(),
        "INT2" => row.try_get::<Option<i16>, _>(i)?.into(),
        "INT4" => row.try_get::<Option<i32>, _>(i)?.into(),
        "INT8" => row.try_get::<Option<i64>, _>(i)?.into(),
        "OID" => row.try_get::<Option<Oid>, _>(i)?.map(|o| o.0).into(),
        "FLOAT4" => row.try_get::<Option<f32>, _>(i)?.into(),
        "FLOAT8" => row.try_get::<Option<f64>, _>(i)?.into(),
        "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" | "CHAR" | "\"CHAR\"" | "UNKNOWN" => {
            row.try_get::<Option<String>, _>(i)?.into()
        }
        "BYTEA" => row.try_get::<Option<Vec<u8>>, _>(i)?.into(),
        "JSON" | "JSONB" => row.try_get::<Option<serde_json::Value>, _>(i)?.into(),
        "TIMESTAMPTZ" => row
            .try_get::<Option<chrono::DateTime<chrono::Utc>>, _>(i)?
            .into(),
        "TIMESTAMP" => row
            .try_get::<Option<chrono::NaiveDateTime>, _>(i)?
            .map(|n| n.and_utc())
            .into(),
        "DATE" => row.try_get::<Option<chrono::NaiveDate>, _>(i)?.into(),
        "TIME" => row.try_get::<Option<chrono::NaiveTime>, _>(i)?.into(),
        "UUID" => row.try_get::<Option<uuid::Uuid>, _>(i)?.into(),
        "NUMERIC" => row.try_get::<Option<PgNumeric>, _>(i)?.map(|n| n.0).into(),
        "VOID" => Value::Null,
        other => return Err(unsupported(col.name(), other)),
    })
}

/// A statement with `params` bound as the extended protocol sends them (for tests that
/// compare the inlined literals with it).
#[cfg(all(test, feature = "postgres"))]
pub(crate) fn pg_query_for_tests(sql: String, params: &[Value]) -> Query {
    query(sql, params).expect("the values encode")
}

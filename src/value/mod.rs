//! Dialect-neutral values for parameters, keys and rows.

mod de;
mod numeric;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use uuid::Uuid;

use crate::error::{Error, Result};

pub use numeric::Numeric;

/// One SQL value, the same on SQLite and PostgreSQL.
///
/// Parameters are bound with their natural type on each backend: `Int` as `BIGINT` /
/// `INTEGER`, `Json` as `JSONB` / `TEXT`, `Timestamp` as `TIMESTAMPTZ` / RFC 3339 text,
/// `Bool` as `BOOLEAN` / `0`/`1`. `Null` is bound untyped, so the server infers its type.
///
/// PostgreSQL converts these types in comparisons and assignments (an `Int` compares with and
/// stores into an `INTEGER` column), but it picks functions by argument type: cast where a
/// function wants another type, as in `pg_terminate_backend($1::int)` or `$1::uuid`.
///
/// PostgreSQL `NUMERIC`, `UUID`, `DATE` and `TIME` come back as [`Value::Numeric`],
/// [`Value::Uuid`], [`Value::Date`] and [`Value::Time`]; on SQLite, which has no such types,
/// they are bound as text (and read back as text, which converts to them).
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub enum Value {
    /// SQL `NULL`.
    #[default]
    Null,
    /// A boolean.
    Bool(bool),
    /// A 64-bit integer (smaller integer columns decode to this too).
    Int(i64),
    /// A double (`REAL` / `FLOAT8`; `FLOAT4` decodes to this too).
    Float(f64),
    /// Text.
    Text(String),
    /// Bytes (`BLOB` / `BYTEA`).
    Bytes(Vec<u8>),
    /// JSON (`JSONB`/`JSON` on PostgreSQL, `TEXT` on SQLite).
    Json(serde_json::Value),
    /// A UTC timestamp (`TIMESTAMPTZ` on PostgreSQL; `TIMESTAMP` is read as UTC).
    Timestamp(DateTime<Utc>),
    /// An exact decimal (`NUMERIC` on PostgreSQL), every digit kept.
    Numeric(Numeric),
    /// A UUID (`UUID` on PostgreSQL, its hyphenated text on SQLite).
    Uuid(Uuid),
    /// A calendar date (`DATE`; ISO 8601 text on SQLite).
    Date(NaiveDate),
    /// A time of day (`TIME`; ISO 8601 text on SQLite).
    Time(NaiveTime),
}

impl Value {
    /// True for [`Value::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// A short name of the variant, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "NULL",
            Value::Bool(_) => "bool",
            Value::Int(_) => "integer",
            Value::Float(_) => "float",
            Value::Text(_) => "text",
            Value::Bytes(_) => "bytes",
            Value::Json(_) => "json",
            Value::Timestamp(_) => "timestamp",
            Value::Numeric(_) => "numeric",
            Value::Uuid(_) => "uuid",
            Value::Date(_) => "date",
            Value::Time(_) => "time",
        }
    }
}

macro_rules! from_impl {
    ($($t:ty => $variant:ident $(as $cast:ty)?),* $(,)?) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Self { Value::$variant(v $(as $cast)?) }
        }
    )*};
}

from_impl! {
    bool => Bool,
    i8 => Int as i64, i16 => Int as i64, i32 => Int as i64, i64 => Int,
    u8 => Int as i64, u16 => Int as i64, u32 => Int as i64,
    f32 => Float as f64, f64 => Float,
    String => Text,
    Vec<u8> => Bytes,
    serde_json::Value => Json,
    DateTime<Utc> => Timestamp,
    Numeric => Numeric,
    Uuid => Uuid,
    NaiveDate => Date,
    NaiveTime => Time,
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}

impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(v.clone())
    }
}

impl From<&[u8]> for Value {
    fn from(v: &[u8]) -> Self {
        Value::Bytes(v.to_vec())
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// Conversion out of a [`Value`], used by [`Row::get`](crate::Row::get).
pub trait FromValue: Sized {
    /// Converts, or explains why the value does not fit.
    fn from_value(value: &Value) -> Result<Self>;

    /// Converts an owned value: text, bytes and JSON move instead of being copied.
    fn from_owned(value: Value) -> Result<Self> {
        Self::from_value(&value)
    }
}

fn mismatch<T>(want: &str, got: &Value) -> Result<T> {
    Err(decode_error(want, got.kind(), None))
}

/// A failed conversion of a value not yet tied to a column ([`Row`](crate::Row) names it).
fn decode_error(
    want: &str,
    found: impl Into<String>,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
) -> Error {
    Error::ColumnDecode {
        column: "(value)".into(),
        expected: want.into(),
        found: found.into(),
        source,
    }
}

impl Error {
    /// Names the column of a conversion error.
    pub(crate) fn in_column(self, column: impl std::fmt::Display) -> Error {
        match self {
            Error::ColumnDecode {
                expected,
                found,
                source,
                ..
            } => Error::ColumnDecode {
                column: column.to_string(),
                expected,
                found,
                source,
            },
            other => other,
        }
    }
}

impl FromValue for Value {
    fn from_value(value: &Value) -> Result<Self> {
        Ok(value.clone())
    }
}

impl FromValue for i64 {
    fn from_value(value: &Value) -> Result<Self> {
        match value {
            Value::Int(i) => Ok(*i),
            Value::Bool(b) => Ok(i64::from(*b)),
            // `SUM` and `AVG` of integers are NUMERIC on PostgreSQL.
            Value::Numeric(n) => n
                .to_i64()
                .ok_or_else(|| decode_error("i64", format!("numeric {n}"), None)),
            other => mismatch("i64", other),
        }
    }
}

impl FromValue for i32 {
    fn from_value(value: &Value) -> Result<Self> {
        let i = i64::from_value(value)?;
        i32::try_from(i).map_err(|e| decode_error("i32", format!("integer {i}"), Some(e.into())))
    }
}

impl FromValue for f64 {
    fn from_value(value: &Value) -> Result<Self> {
        match value {
            Value::Float(f) => Ok(*f),
            Value::Int(i) => Ok(*i as f64),
            Value::Numeric(n) => Ok(n.to_f64()),
            other => mismatch("f64", other),
        }
    }
}

impl FromValue for bool {
    fn from_value(value: &Value) -> Result<Self> {
        match value {
            Value::Bool(b) => Ok(*b),
            // SQLite stores booleans as 0/1.
            Value::Int(0) => Ok(false),
            Value::Int(1) => Ok(true),
            other => mismatch("bool", other),
        }
    }
}

impl FromValue for String {
    /// Text, and the text forms of numerics, UUIDs, dates and times.
    fn from_value(value: &Value) -> Result<Self> {
        match value {
            Value::Text(s) => Ok(s.clone()),
            Value::Numeric(n) => Ok(n.to_string()),
            Value::Uuid(u) => Ok(u.to_string()),
            Value::Date(d) => Ok(d.to_string()),
            Value::Time(t) => Ok(t.to_string()),
            other => mismatch("String", other),
        }
    }

    fn from_owned(value: Value) -> Result<Self> {
        match value {
            Value::Text(s) => Ok(s),
            other => Self::from_value(&other),
        }
    }
}

/// Parses text (SQLite's form) into `T`, naming what it wanted on failure.
fn parse_text<T: std::str::FromStr>(want: &str, s: &str) -> Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    s.parse()
        .map_err(|e: T::Err| decode_error(want, format!("text {s:?}"), Some(e.into())))
}

impl FromValue for Numeric {
    fn from_value(value: &Value) -> Result<Self> {
        match value {
            Value::Numeric(n) => Ok(n.clone()),
            Value::Int(i) => Ok(Numeric::from(*i)),
            Value::Text(s) => s
                .parse()
                .map_err(|e: Error| decode_error("Numeric", format!("text {s:?}"), Some(e.into()))),
            other => mismatch("Numeric", other),
        }
    }
}

impl FromValue for Uuid {
    fn from_value(value: &Value) -> Result<Self> {
        match value {
            Value::Uuid(u) => Ok(*u),
            Value::Text(s) => parse_text("Uuid", s),
            Value::Bytes(b) => {
                Uuid::from_slice(b).map_err(|e| decode_error("Uuid", "bytes", Some(e.into())))
            }
            other => mismatch("Uuid", other),
        }
    }
}

impl FromValue for NaiveDate {
    fn from_value(value: &Value) -> Result<Self> {
        match value {
            Value::Date(d) => Ok(*d),
            Value::Text(s) => parse_text("NaiveDate", s),
            other => mismatch("NaiveDate", other),
        }
    }
}

impl FromValue for NaiveTime {
    fn from_value(value: &Value) -> Result<Self> {
        match value {
            Value::Time(t) => Ok(*t),
            Value::Text(s) => parse_text("NaiveTime", s),
            other => mismatch("NaiveTime", other),
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(value: &Value) -> Result<Self> {
        match value {
            Value::Bytes(b) => Ok(b.clone()),
            other => mismatch("bytes", other),
        }
    }

    fn from_owned(value: Value) -> Result<Self> {
        match value {
            Value::Bytes(b) => Ok(b),
            other => mismatch("bytes", &other),
        }
    }
}

impl FromValue for serde_json::Value {
    fn from_value(value: &Value) -> Result<Self> {
        match value {
            Value::Json(j) => Ok(j.clone()),
            // SQLite keeps JSON as text.
            Value::Text(s) => serde_json::from_str(s)
                .map_err(|e| decode_error("JSON", "text that is not JSON", Some(e.into()))),
            other => mismatch("JSON", other),
        }
    }

    fn from_owned(value: Value) -> Result<Self> {
        match value {
            Value::Json(j) => Ok(j),
            other => Self::from_value(&other),
        }
    }
}

impl FromValue for DateTime<Utc> {
    fn from_value(value: &Value) -> Result<Self> {
        match value {
            Value::Timestamp(t) => Ok(*t),
            // SQLite keeps timestamps as text.
            Value::Text(s) => parse_timestamp(s)
                .ok_or_else(|| decode_error("DateTime<Utc>", format!("text {s:?}"), None)),
            other => mismatch("timestamp", other),
        }
    }
}

/// A timestamp as text: RFC 3339, SQLite's `YYYY-MM-DD HH:MM:SS[.f]` with an offset, or
/// without one (read as UTC, as SQLAlchemy writes naive UTC times), `T` or a space between
/// date and time.
pub(crate) fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%d %H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%.f%#z"] {
        if let Ok(t) = DateTime::parse_from_str(s, fmt) {
            return Some(t.with_timezone(&Utc));
        }
    }
    ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
        .iter()
        .find_map(|fmt| chrono::NaiveDateTime::parse_from_str(s, fmt).ok())
        .map(|n| n.and_utc())
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: &Value) -> Result<Self> {
        match value {
            Value::Null => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }

    fn from_owned(value: Value) -> Result<Self> {
        match value {
            Value::Null => Ok(None),
            other => T::from_owned(other).map(Some),
        }
    }
}

/// Builds a `Vec<Value>` of parameters: `params![42, "text", None::<i64>]`.
///
/// Parameters are positional and written `$1`, `$2`, … in SQL on both backends.
#[macro_export]
macro_rules! params {
    () => { ::std::vec::Vec::<$crate::Value>::new() };
    ($($value:expr),+ $(,)?) => { ::std::vec![$($crate::Value::from($value)),+] };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_round_trip() {
        assert_eq!(i64::from_value(&Value::from(7i32)).unwrap(), 7);
        assert_eq!(Option::<i64>::from_value(&Value::Null).unwrap(), None);
        assert!(bool::from_value(&Value::Int(1)).unwrap());
        assert!(String::from_value(&Value::Int(1)).is_err());
        let t =
            DateTime::<Utc>::from_value(&Value::Text("2024-01-02 03:04:05.123456+00:00".into()))
                .unwrap();
        assert_eq!(t.timestamp_subsec_micros(), 123456);
        assert!(i32::from_value(&Value::Int(i64::MAX)).is_err());
    }
}

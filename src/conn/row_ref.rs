//! Rows read column by column, by position, for the stores' records: on PostgreSQL each
//! column decoded straight to the type asked for.

#[cfg(feature = "adk")]
use sqlx::Row as _;
#[cfg(all(feature = "adk", feature = "postgres"))]
use sqlx::{Column, TypeInfo};

#[cfg(feature = "adk")]
use super::ExecError;
use super::ExecResult;
#[cfg(all(feature = "adk", feature = "postgres"))]
use crate::error::Error;
use crate::value::Value;

#[cfg(feature = "postgres")]
use super::pg;
#[cfg(feature = "sqlite")]
use super::sqlite;
#[cfg(feature = "postgres")]
use sqlx::postgres::PgRow;
#[cfg(feature = "sqlite")]
use sqlx::sqlite::SqliteRow;

/// A driver row, read column by column (see
/// [`RawConnection::fetch_map`](super::RawConnection::fetch_map)), from column `base` on: a
/// row that joins two records is read as two, each from its first column.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowRef<'r> {
    row: RowKind<'r>,
    base: usize,
    /// The result's columns already checked against the types they are read as.
    #[cfg(all(feature = "adk", feature = "postgres"))]
    checked: Option<&'r crate::column_types::CheckedColumns>,
}

#[derive(Debug, Clone, Copy)]
pub(super) enum RowKind<'r> {
    #[cfg(feature = "sqlite")]
    Sqlite(&'r SqliteRow),
    #[cfg(feature = "postgres")]
    Postgres(&'r PgRow),
}

impl<'r> RowRef<'r> {
    pub(super) fn of(row: RowKind<'r>) -> Self {
        RowRef {
            row,
            base: 0,
            #[cfg(all(feature = "adk", feature = "postgres"))]
            checked: None,
        }
    }

    /// The same row, reading its columns as `checked` has found them (one per result).
    #[cfg(all(feature = "adk", feature = "postgres"))]
    pub(super) fn checked_by(self, checked: &'r crate::column_types::CheckedColumns) -> Self {
        RowRef {
            checked: Some(checked),
            ..self
        }
    }

    /// The same row, its column `by` read as column 0.
    #[cfg(feature = "adk")]
    pub(crate) fn shifted(self, by: usize) -> Self {
        RowRef {
            base: self.base + by,
            ..self
        }
    }

    /// Column `i` as a [`Value`], decoded as [`execute_sql`](crate::ReadContext::execute_sql)
    /// would.
    pub(crate) fn value(&self, i: usize) -> ExecResult<Value> {
        let i = self.base + i;
        match self.row {
            #[cfg(feature = "sqlite")]
            RowKind::Sqlite(r) => sqlite::decode_column(r, i),
            #[cfg(feature = "postgres")]
            RowKind::Postgres(r) => pg::decode_column(r, i),
        }
    }

    #[cfg(feature = "adk")]
    /// Column `i` as a `T`: on PostgreSQL decoded straight to `T`, on SQLite (which types
    /// values, not columns) through its [`Value`].
    #[inline]
    pub(crate) fn get<T: FromColumn>(&self, i: usize) -> ExecResult<T> {
        let i = self.base + i;
        match self.row {
            #[cfg(feature = "sqlite")]
            RowKind::Sqlite(r) => convert(i, sqlite::decode_column(r, i)?),
            #[cfg(feature = "postgres")]
            RowKind::Postgres(r) => {
                let known = self
                    .checked
                    .is_some_and(|c| c.known(r, i, std::any::TypeId::of::<T>(), T::pg_compatible));
                T::from_pg(r, i, known)
            }
        }
    }

    /// True when column `i` is NULL: nothing decoded, nothing allocated.
    #[cfg(feature = "adk")]
    pub(crate) fn is_null(&self, i: usize) -> ExecResult<bool> {
        use sqlx::ValueRef;
        let i = self.base + i;
        Ok(match self.row {
            #[cfg(feature = "sqlite")]
            RowKind::Sqlite(r) => r.try_get_raw(i)?.is_null(),
            #[cfg(feature = "postgres")]
            RowKind::Postgres(r) => r.try_get_raw(i)?.is_null(),
        })
    }

    #[cfg(feature = "adk")]
    /// True for a PostgreSQL row.
    pub(crate) fn is_postgres(&self) -> bool {
        match self.row {
            #[cfg(feature = "sqlite")]
            RowKind::Sqlite(_) => false,
            #[cfg(feature = "postgres")]
            RowKind::Postgres(_) => true,
        }
    }
}

#[cfg(feature = "adk")]
/// Column `i`'s value converted to `T`, the value moving into it; a mismatch names the column.
pub(crate) fn convert<T: crate::value::FromValue>(i: usize, value: Value) -> ExecResult<T> {
    T::from_owned(value).map_err(|e| ExecError::Crate(e.in_column(i)))
}

#[cfg(feature = "adk")]
/// A type the stores read from a column, by position, without going through [`Value`] on
/// PostgreSQL (whose columns are typed, so sqlx decodes them directly and checks the type).
pub(crate) trait FromColumn: crate::value::FromValue + 'static {
    /// Column `i` of `row`; `known`: its type was already found compatible (see
    /// [`column_types`](crate::column_types)), so sqlx need not check it again.
    #[cfg(feature = "postgres")]
    fn from_pg(row: &PgRow, i: usize, known: bool) -> ExecResult<Self>;
    /// Whether a column of type `ty` decodes as `Self` (sqlx's `Type::compatible`).
    #[cfg(feature = "postgres")]
    fn pg_compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool;
}

/// `row.try_get(i)`, or without sqlx's type check when `known` compatible.
#[cfg(all(feature = "adk", feature = "postgres"))]
#[inline]
fn pg_get<'r, T>(row: &'r PgRow, i: usize, known: bool) -> Result<T, sqlx::Error>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    if known {
        row.try_get_unchecked(i)
    } else {
        row.try_get(i)
    }
}

#[cfg(feature = "adk")]
/// sqlx's decode error for column `i` as this crate's, naming the column and both types.
#[cfg(feature = "postgres")]
fn pg_decode_error(row: &PgRow, i: usize, expected: &str, err: sqlx::Error) -> ExecError {
    match err {
        sqlx::Error::ColumnDecode { source, .. } => {
            let (column, found) = row
                .try_column(i)
                .map(|c| (c.name().to_owned(), c.type_info().name().to_owned()))
                .unwrap_or_else(|_| (i.to_string(), "?".to_owned()));
            ExecError::Crate(Error::ColumnDecode {
                column,
                expected: expected.to_owned(),
                found,
                source: Some(source),
            })
        }
        other => ExecError::Sql(other),
    }
}

#[cfg(feature = "adk")]
macro_rules! from_column {
    ($($t:ty),*) => {$(
        impl FromColumn for $t {
            #[cfg(feature = "postgres")]
            #[inline]
            fn from_pg(row: &PgRow, i: usize, known: bool) -> ExecResult<Self> {
                pg_get::<$t>(row, i, known).map_err(|e| pg_decode_error(row, i, stringify!($t), e))
            }
            #[cfg(feature = "postgres")]
            fn pg_compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
                <$t as sqlx::Type<sqlx::Postgres>>::compatible(ty)
            }
        }
    )*};
}

#[cfg(feature = "adk")]
from_column!(
    i64,
    f64,
    String,
    Option<String>,
    Option<Vec<u8>>,
    Option<bool>
);

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01 00:00 UTC).
#[cfg(all(feature = "adk", feature = "postgres"))]
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

#[cfg(feature = "adk")]
impl FromColumn for chrono::DateTime<chrono::Utc> {
    /// A column already found compatible (`TIMESTAMPTZ` or `TIMESTAMP`) in binary form is
    /// microseconds from PostgreSQL's epoch, read as such: sqlx builds the epoch's date
    /// and adds a `Duration` to it, calendar arithmetic that cost more than the rest of
    /// the column. Anything else (text form, infinity, unchecked) goes through sqlx.
    #[cfg(feature = "postgres")]
    #[inline]
    fn from_pg(row: &PgRow, i: usize, known: bool) -> ExecResult<Self> {
        if known
            && let Ok(raw) = row.try_get_raw(i)
            && raw.format() == sqlx::postgres::PgValueFormat::Binary
            && let Ok(bytes) = raw.as_bytes()
            && let Ok(micros) = <[u8; 8]>::try_from(bytes)
            && let Some(at) = i64::from_be_bytes(micros)
                .checked_add(PG_EPOCH_MICROS)
                .and_then(chrono::DateTime::from_timestamp_micros)
        {
            return Ok(at);
        }
        pg_get::<chrono::DateTime<chrono::Utc>>(row, i, known)
            .map_err(|e| pg_decode_error(row, i, "chrono::DateTime<chrono::Utc>", e))
    }
    #[cfg(feature = "postgres")]
    fn pg_compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
        <chrono::DateTime<chrono::Utc> as sqlx::Type<sqlx::Postgres>>::compatible(ty)
    }
}

#[cfg(feature = "adk")]
impl FromColumn for serde_json::Value {
    #[cfg(feature = "postgres")]
    #[inline]
    fn from_pg(row: &PgRow, i: usize, known: bool) -> ExecResult<Self> {
        let json = pg_get::<sqlx::types::Json<serde_json::Value>>(row, i, known);
        Ok(json.map_err(|e| pg_decode_error(row, i, "JSON", e))?.0)
    }
    #[cfg(feature = "postgres")]
    fn pg_compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
        <sqlx::types::Json<serde_json::Value> as sqlx::Type<sqlx::Postgres>>::compatible(ty)
    }
}

#[cfg(feature = "adk")]
impl FromColumn for Option<serde_json::Value> {
    #[cfg(feature = "postgres")]
    #[inline]
    fn from_pg(row: &PgRow, i: usize, known: bool) -> ExecResult<Self> {
        let json = pg_get::<Option<sqlx::types::Json<serde_json::Value>>>(row, i, known);
        Ok(json
            .map_err(|e| pg_decode_error(row, i, "Option<JSON>", e))?
            .map(|j| j.0))
    }
    #[cfg(feature = "postgres")]
    fn pg_compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
        <Option<sqlx::types::Json<serde_json::Value>> as sqlx::Type<sqlx::Postgres>>::compatible(ty)
    }
}

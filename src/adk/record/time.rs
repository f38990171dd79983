//! Times as the tables keep them: `TIMESTAMPTZ` on PostgreSQL, a REAL Julian day on
//! SQLite.

use chrono::{DateTime, Utc};

use crate::conn::{ExecResult, RowRef, convert};
use crate::error::{Error, Result};
use crate::param::Param;
use crate::value::Value;

const UNIX_EPOCH_JULIAN_DAY: f64 = 2_440_587.5;
const MICROS_PER_DAY: f64 = 86_400_000_000.0;

/// A UTC time as a Julian day, SQLite's `julianday()`.
fn to_julian(t: DateTime<Utc>) -> f64 {
    t.timestamp_micros() as f64 / MICROS_PER_DAY + UNIX_EPOCH_JULIAN_DAY
}

/// A Julian day back to UTC, rounded to the microsecond. For every stored day `x`,
/// `to_julian(from_julian(x)) == x`, so a time read back compares equal to the stored one.
fn from_julian(day: f64) -> Result<DateTime<Utc>> {
    let micros = ((day - UNIX_EPOCH_JULIAN_DAY) * MICROS_PER_DAY).round();
    if !micros.is_finite() || micros.abs() > 9.0e18 {
        return Err(Error::invalid(format!("{day} is not a Julian day")));
    }
    DateTime::from_timestamp_micros(micros as i64)
        .ok_or_else(|| Error::invalid(format!("Julian day {day} is out of range")))
}

/// The value a time is stored as: `TIMESTAMPTZ` (microseconds) or a REAL Julian day.
pub(crate) fn time_param(t: DateTime<Utc>, postgres: bool) -> Param<'static> {
    if postgres {
        Param::Timestamp(truncate_micros(t))
    } else {
        Param::Float(to_julian(t))
    }
}

/// `t` as the store will give it back: microseconds on PostgreSQL, the nearest Julian day
/// that a REAL holds on SQLite (about 40 µs apart today).
pub fn stored_time(t: DateTime<Utc>, postgres: bool) -> DateTime<Utc> {
    if postgres {
        truncate_micros(t)
    } else {
        from_julian(to_julian(t)).unwrap_or(t)
    }
}

/// `t` truncated to the microsecond, as PostgreSQL (and SQLAlchemy's text) keep times.
pub(crate) fn truncate_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

/// Reads a time column: `TIMESTAMPTZ`, a REAL Julian day, or text.
pub(crate) fn time_at(row: RowRef<'_>, i: usize) -> ExecResult<DateTime<Utc>> {
    if row.is_postgres() {
        return row.get(i);
    }
    match row.value(i)? {
        Value::Float(day) => Ok(from_julian(day)?),
        Value::Int(day) => Ok(from_julian(day as f64)?),
        other => convert(i, other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn julian_days_round_trip_exactly() {
        let base = DateTime::parse_from_rfc3339("2026-11-21T10:00:00.123456Z")
            .unwrap()
            .to_utc();
        assert!((to_julian(base) - 2_461_365.916_668).abs() < 1e-5);
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..100_000 {
            let t = base + chrono::Duration::microseconds(rng.i64(-10i64.pow(15)..10i64.pow(15)));
            let day = to_julian(t);
            let back = from_julian(day).unwrap();
            assert_eq!(to_julian(back), day, "{t}");
            assert!(
                (back - t).num_microseconds().unwrap().abs() <= 50,
                "{t} {back}"
            );
            assert_eq!(stored_time(back, false), back);
        }
    }
}

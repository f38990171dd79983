//! Borrowed parameters: what the driver binds. A [`Value`] lends itself as a [`Param`];
//! the stores build `Param`s straight from their records, so binding copies nothing the
//! driver does not encode anyway.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use uuid::Uuid;

use crate::value::{Numeric, Value};

/// One parameter, borrowing its text, bytes or JSON.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Param<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(&'a str),
    Bytes(&'a [u8]),
    Json(&'a serde_json::Value),
    Timestamp(DateTime<Utc>),
    Numeric(&'a Numeric),
    Uuid(Uuid),
    Date(NaiveDate),
    Time(NaiveTime),
}

/// Anything bound as a parameter: a [`Value`] (the public API) or a [`Param`].
pub(crate) trait AsParam {
    fn as_param(&self) -> Param<'_>;
}

impl AsParam for Param<'_> {
    fn as_param(&self) -> Param<'_> {
        *self
    }
}

impl AsParam for Value {
    fn as_param(&self) -> Param<'_> {
        match self {
            Value::Null => Param::Null,
            Value::Bool(b) => Param::Bool(*b),
            Value::Int(i) => Param::Int(*i),
            Value::Float(f) => Param::Float(*f),
            Value::Text(s) => Param::Text(s),
            Value::Bytes(b) => Param::Bytes(b),
            Value::Json(j) => Param::Json(j),
            Value::Timestamp(t) => Param::Timestamp(*t),
            Value::Numeric(n) => Param::Numeric(n),
            Value::Uuid(u) => Param::Uuid(*u),
            Value::Date(d) => Param::Date(*d),
            Value::Time(t) => Param::Time(*t),
        }
    }
}

/// No parameters, typed (an empty `&[]` would leave the parameter type open).
pub(crate) const NONE: &[Param<'static>] = &[];

impl<'a> From<&'a str> for Param<'a> {
    fn from(s: &'a str) -> Self {
        Param::Text(s)
    }
}

impl<'a> From<&'a String> for Param<'a> {
    fn from(s: &'a String) -> Self {
        Param::Text(s)
    }
}

impl<'a> From<&'a serde_json::Value> for Param<'a> {
    fn from(j: &'a serde_json::Value) -> Self {
        Param::Json(j)
    }
}

impl<'a> From<&'a Value> for Param<'a> {
    fn from(v: &'a Value) -> Self {
        v.as_param()
    }
}

impl From<i64> for Param<'_> {
    fn from(i: i64) -> Self {
        Param::Int(i)
    }
}

impl From<f64> for Param<'_> {
    fn from(f: f64) -> Self {
        Param::Float(f)
    }
}

impl From<bool> for Param<'_> {
    fn from(b: bool) -> Self {
        Param::Bool(b)
    }
}

impl From<DateTime<Utc>> for Param<'_> {
    fn from(t: DateTime<Utc>) -> Self {
        Param::Timestamp(t)
    }
}

impl<'a> From<&'a Vec<u8>> for Param<'a> {
    fn from(b: &'a Vec<u8>) -> Self {
        Param::Bytes(b)
    }
}

/// `&Option<T>` and `Option<T>` for the optional columns of the stores' records.
macro_rules! optional {
    ($($t:ty),*) => {$(
        impl<'a> From<&'a Option<$t>> for Param<'a> {
            fn from(v: &'a Option<$t>) -> Self {
                v.as_ref().map_or(Param::Null, Into::into)
            }
        }
    )*};
}

optional!(String, Vec<u8>, serde_json::Value);

impl From<Option<bool>> for Param<'_> {
    fn from(v: Option<bool>) -> Self {
        v.map_or(Param::Null, Param::Bool)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_lend_themselves_without_copying() {
        let json = serde_json::json!({"a": 1});
        let v = Value::Json(json.clone());
        match v.as_param() {
            Param::Json(j) => assert!(std::ptr::eq(
                j,
                match &v {
                    Value::Json(j) => j,
                    _ => unreachable!(),
                }
            )),
            other => panic!("{other:?}"),
        }
        let some: Option<String> = Some("x".into());
        let none: Option<String> = None;
        assert_eq!(Param::from(&some), Param::Text("x"));
        assert_eq!(Param::from(&none), Param::Null);
        assert_eq!(Param::from(Some(true)), Param::Bool(true));
        assert_eq!(Value::Null.as_param(), Param::Null);
    }
}

//! Which parameter types each statement text was prepared with, so sqlx's statement cache
//! never runs a statement with parameters of other types.
//!
//! sqlx-postgres caches prepared statements by their text alone, with the parameter types
//! of their first run. Run again with other types (`SELECT $1` with an integer, then a
//! float), it sends the new value's bytes for the old type: the float came back as the
//! integer 4609434218613702656, and text failed with 08P01. So the first types seen for a
//! text are its types for the life of the process; a run with others is prepared afresh,
//! unnamed, under a text of its own (sqlx's cache is looked up even for statements it will
//! not keep). NULL fits any type.

use std::collections::HashMap;

use parking_lot::RwLock;

use crate::param::{AsParam, Param};

/// Texts remembered at most; past it, new texts are never cached by sqlx (still correct,
/// for applications that build their SQL text per call).
const MAX_TEXTS: usize = 10_000;

/// Statement text → the type tags of its first run's parameters.
type Seen = HashMap<Box<str>, Box<[u8]>>;

static SEEN: RwLock<Option<Seen>> = RwLock::new(None);

fn tag(p: &Param<'_>) -> u8 {
    match p {
        Param::Null => 0,
        Param::Bool(_) => 1,
        Param::Int(_) => 2,
        Param::Float(_) => 3,
        Param::Text(_) => 4,
        Param::Bytes(_) => 5,
        Param::Json(_) => 6,
        Param::Timestamp(_) => 7,
        Param::Numeric(_) => 8,
        Param::Uuid(_) => 9,
        Param::Date(_) => 10,
        Param::Time(_) => 11,
    }
}

/// Whether `sql` may run as sqlx's cached statement with these parameters: true when its
/// first run had these types (NULL where it had anything), or when this is its first run.
pub(crate) fn cacheable(sql: &str, params: &[impl AsParam]) -> bool {
    let fits = |seen: &[u8]| {
        seen.len() == params.len()
            && seen
                .iter()
                .zip(params)
                .all(|(&s, p)| match tag(&p.as_param()) {
                    0 => true,
                    t => t == s,
                })
    };
    if let Some(seen) = SEEN.read().as_ref().and_then(|m| m.get(sql)) {
        return fits(seen);
    }
    let mut guard = SEEN.write();
    let map = guard.get_or_insert_with(HashMap::new);
    if let Some(seen) = map.get(sql) {
        return fits(seen);
    }
    if map.len() >= MAX_TEXTS {
        return false;
    }
    let tags = params.iter().map(|p| tag(&p.as_param())).collect();
    map.insert(sql.into(), tags);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Value;

    #[test]
    fn other_types_than_the_first_are_not_cached() {
        let sql = "SELECT $1 /* param_types test */";
        assert!(cacheable(sql, &[Value::Int(1)]));
        assert!(cacheable(sql, &[Value::Int(2)]));
        assert!(cacheable(sql, &[Value::Null]), "NULL fits any type");
        assert!(!cacheable(sql, &[Value::Float(1.5)]));
        assert!(!cacheable(sql, &[Value::Int(1), Value::Int(2)]));
        // A NULL first is a type of its own: a later value is not that type.
        let sql = "SELECT $1 /* param_types test, null first */";
        assert!(cacheable(sql, &[Value::Null]));
        assert!(!cacheable(sql, &[Value::Bool(true)]));
        assert!(cacheable(sql, &[Value::Null]));
    }
}

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

use foldhash::fast::RandomState;
use parking_lot::RwLock;

use crate::param::{AsParam, Param};

/// Texts remembered at most; past it, new texts are never cached by sqlx (still correct,
/// for applications that build their SQL text per call).
const MAX_TEXTS: usize = 10_000;

/// Statement text → the type tags of its first run's parameters. Looked up on every
/// statement, so hashed with foldhash (seeded per process) rather than SipHash, which cost
/// more than the rest of the lookup for a statement of a few hundred bytes.
type Seen = HashMap<Box<str>, Box<[u8]>, RandomState>;

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

/// Whether `sql` may run as sqlx's cached statement with these parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Its first run had these types (NULL where it had anything), or this is its first run.
    Fits,
    /// Its first run had other types.
    Differs,
    /// Its first run had NULL where a value is given now: the server typed that parameter
    /// from the statement's context, so the cached statement's types must be asked.
    Ask,
}

/// The verdict for running `sql` with `params`; the first run's types are remembered.
pub(crate) fn verdict(sql: &str, params: &[impl AsParam]) -> Verdict {
    if let Some(seen) = SEEN.read().as_ref().and_then(|m| m.get(sql)) {
        return judge(seen, params);
    }
    let mut guard = SEEN.write();
    let map = guard.get_or_insert_with(HashMap::default);
    if let Some(seen) = map.get(sql) {
        return judge(seen, params);
    }
    if map.len() >= MAX_TEXTS {
        return Verdict::Differs;
    }
    let tags = params.iter().map(|p| tag(&p.as_param())).collect();
    map.insert(sql.into(), tags);
    Verdict::Fits
}

/// The verdict for `params` against a text's first run's types, `seen`.
fn judge(seen: &[u8], params: &[impl AsParam]) -> Verdict {
    if seen.len() != params.len() {
        return Verdict::Differs;
    }
    let mut verdict = Verdict::Fits;
    for (&s, p) in seen.iter().zip(params) {
        match (s, tag(&p.as_param())) {
            (_, 0) => {}
            (0, _) => verdict = Verdict::Ask,
            (s, t) if s == t => {}
            _ => return Verdict::Differs,
        }
    }
    verdict
}

/// The first run's types of a text the stores build once and run many times, copied beside
/// the text: its verdict then needs no lookup in the process-wide map (a hash of the whole
/// text and a lock every thread shares). Equivalent to [`verdict`]: the map's entry only
/// ever changes where it holds a NULL, and a verdict that meets one there is asked of the
/// map again.
#[derive(Debug, Default)]
pub(crate) struct KnownTypes(std::sync::OnceLock<Box<[u8]>>);

impl KnownTypes {
    /// [`verdict`] for `sql`, this text.
    pub(crate) fn verdict(&self, sql: &str, params: &[impl AsParam]) -> Verdict {
        if let Some(seen) = self.0.get() {
            match judge(seen, params) {
                // A NULL of the first run given a value: `fits_statement` may have typed it.
                Verdict::Ask => return verdict(sql, params),
                known => return known,
            }
        }
        let verdict = verdict(sql, params);
        if let Some(seen) = SEEN.read().as_ref().and_then(|m| m.get(sql)) {
            let _ = self.0.set(seen.clone());
        }
        verdict
    }
}

/// The PostgreSQL type names a parameter's binary encoding is valid for.
fn accepts(tag: u8, type_name: &str) -> bool {
    let names: &[&str] = match tag {
        0 => return true,
        1 => &["BOOL"],
        2 => &["INT8"],
        3 => &["FLOAT8"],
        4 => &["TEXT", "VARCHAR", "BPCHAR", "NAME"],
        5 => &["BYTEA"],
        6 => &["JSONB"],
        7 => &["TIMESTAMPTZ"],
        8 => &["NUMERIC"],
        9 => &["UUID"],
        10 => &["DATE"],
        11 => &["TIME"],
        _ => return false,
    };
    names.contains(&type_name)
}

/// For [`Verdict::Ask`]: whether the cached statement's parameter types (`types`, as the
/// server assigned them) take these values. If they do, the values' types are remembered
/// where the first run had NULL, so the next run needs no asking.
pub(crate) fn fits_statement(sql: &str, params: &[impl AsParam], types: &[&str]) -> bool {
    let tags: Vec<u8> = params.iter().map(|p| tag(&p.as_param())).collect();
    let fits = types.len() == tags.len() && tags.iter().zip(types).all(|(&t, ty)| accepts(t, ty));
    if fits && let Some(seen) = SEEN.write().as_mut().and_then(|m| m.get_mut(sql)) {
        for (s, &t) in seen.iter_mut().zip(&tags) {
            if *s == 0 {
                *s = t;
            }
        }
    }
    fits
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Value;

    #[test]
    fn other_types_than_the_first_are_not_cached() {
        let sql = "SELECT $1 /* param_types test */";
        assert_eq!(verdict(sql, &[Value::Int(1)]), Verdict::Fits);
        assert_eq!(verdict(sql, &[Value::Int(2)]), Verdict::Fits);
        assert_eq!(
            verdict(sql, &[Value::Null]),
            Verdict::Fits,
            "NULL fits any type"
        );
        assert_eq!(verdict(sql, &[Value::Float(1.5)]), Verdict::Differs);
        assert_eq!(
            verdict(sql, &[Value::Int(1), Value::Int(2)]),
            Verdict::Differs
        );
    }

    #[test]
    fn a_null_first_asks_the_statement_and_learns() {
        let sql = "INSERT INTO t VALUES ($1, $2) /* param_types test, null first */";
        assert_eq!(verdict(sql, &[Value::Null, Value::Int(1)]), Verdict::Fits);
        let later = [Value::Bool(true), Value::Int(2)];
        assert_eq!(verdict(sql, &later), Verdict::Ask);
        // The server typed $1 as text (`SELECT $1`): a boolean does not fit.
        assert!(!fits_statement(sql, &later, &["TEXT", "INT8"]));
        assert_eq!(verdict(sql, &later), Verdict::Ask);
        // Typed as boolean by its column: it fits, and is remembered.
        assert!(fits_statement(sql, &later, &["BOOL", "INT8"]));
        assert_eq!(verdict(sql, &later), Verdict::Fits);
        assert_eq!(
            verdict(sql, &[Value::Text("x".into()), Value::Int(2)]),
            Verdict::Differs
        );
    }

    #[test]
    fn known_types_give_the_maps_verdicts() {
        let sql = "INSERT INTO t VALUES ($1, $2) /* param_types test, known types */";
        let known = KnownTypes::default();
        assert_eq!(
            known.verdict(sql, &[Value::Null, Value::Int(1)]),
            Verdict::Fits
        );
        assert_eq!(
            known.verdict(sql, &[Value::Null, Value::Int(2)]),
            Verdict::Fits
        );
        assert_eq!(
            known.verdict(sql, &[Value::Null, Value::Float(1.5)]),
            Verdict::Differs
        );
        let later = [Value::Bool(true), Value::Int(2)];
        assert_eq!(known.verdict(sql, &later), Verdict::Ask);
        // The map learns $1's type after the copy was taken: the copy still asks it.
        assert!(fits_statement(sql, &later, &["BOOL", "INT8"]));
        assert_eq!(known.verdict(sql, &later), Verdict::Fits);
        assert_eq!(
            known.verdict(sql, &[Value::Text("x".into()), Value::Int(2)]),
            Verdict::Differs
        );
        // A second copy, taken after the map learned, agrees.
        let fresh = KnownTypes::default();
        assert_eq!(fresh.verdict(sql, &later), Verdict::Fits);
        assert_eq!(fresh.verdict(sql, &later), Verdict::Fits);
    }
}

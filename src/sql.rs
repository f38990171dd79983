//! Builds the SQL for reads, key sets and mutations from validated identifiers. Values never
//! enter SQL text: they become `$n` parameters, which both backends accept.

use std::fmt::Write as _;

use crate::error::{Error, Result};
use crate::ident::Ident;
use crate::keyset::{Bound, KeySet};
use crate::value::Value;

/// Collects parameters and hands out their placeholders.
#[derive(Debug, Default)]
pub(crate) struct Params {
    pub(crate) values: Vec<Value>,
}

impl Params {
    pub(crate) fn push(&mut self, v: &Value) -> String {
        self.values.push(v.clone());
        format!("${}", self.values.len())
    }

    fn tuple(&mut self, vs: &[Value]) -> String {
        let parts: Vec<String> = vs.iter().map(|v| self.push(v)).collect();
        paren(&parts)
    }
}

/// `a` for one item, `(a, b)` for several: the row-value syntax of both backends.
fn paren(parts: &[String]) -> String {
    if parts.len() == 1 {
        parts[0].clone()
    } else {
        format!("({})", parts.join(", "))
    }
}

pub(crate) fn column_list(cols: &[Ident]) -> String {
    cols.iter()
        .map(Ident::quoted)
        .collect::<Vec<_>>()
        .join(", ")
}

fn col_tuple(cols: &[Ident]) -> String {
    paren(&cols.iter().map(Ident::quoted).collect::<Vec<_>>())
}

/// The WHERE condition selecting `keyset` over the `key` columns, or `None` for all rows.
pub(crate) fn keyset_predicate(
    keyset: &KeySet,
    key: &[Ident],
    params: &mut Params,
) -> Result<Option<String>> {
    if keyset.all {
        return Ok(None);
    }
    let mut terms = Vec::new();
    for k in &keyset.keys {
        if k.len() != key.len() {
            return Err(Error::invalid(format!(
                "a key has {} value(s) but the key columns are {}",
                k.len(),
                column_list(key)
            )));
        }
        terms.push(format!("{} = {}", col_tuple(key), params.tuple(k)));
    }
    for r in &keyset.ranges {
        let mut parts = Vec::new();
        for (bound, closed_op, open_op) in [(&r.start, ">=", ">"), (&r.end, "<=", "<")] {
            let (prefix, op) = match bound {
                Bound::Closed(p) => (p, closed_op),
                Bound::Open(p) => (p, open_op),
                Bound::Unbounded => continue,
            };
            if prefix.is_empty() {
                continue;
            }
            if prefix.len() > key.len() {
                return Err(Error::invalid(format!(
                    "a key range bound has {} value(s) but the key columns are {}",
                    prefix.len(),
                    column_list(key)
                )));
            }
            parts.push(format!(
                "{} {op} {}",
                col_tuple(&key[..prefix.len()]),
                params.tuple(prefix)
            ));
        }
        terms.push(if parts.is_empty() {
            "1 = 1".to_owned()
        } else {
            parts.join(" AND ")
        });
    }
    Ok(Some(if terms.is_empty() {
        "1 = 0".to_owned()
    } else {
        terms
            .iter()
            .map(|t| format!("({t})"))
            .collect::<Vec<_>>()
            .join(" OR ")
    }))
}

/// `SELECT … FROM table [WHERE keyset] ORDER BY key [LIMIT n]`.
pub(crate) fn read(
    table: &Ident,
    columns: &[Ident],
    keyset: &KeySet,
    key: &[Ident],
    limit: usize,
) -> Result<(String, Vec<Value>)> {
    let mut params = Params::default();
    let mut sql = format!("SELECT {} FROM {table}", column_list(columns));
    if let Some(pred) = keyset_predicate(keyset, key, &mut params)? {
        write!(sql, " WHERE {pred}").expect("writing to a String");
    }
    write!(sql, " ORDER BY {}", column_list(key)).expect("writing to a String");
    if limit > 0 {
        write!(sql, " LIMIT {limit}").expect("writing to a String");
    }
    Ok((sql, params.values))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyset::KeyRange;

    fn idents(names: &[&str]) -> Vec<Ident> {
        names.iter().map(|n| Ident::new(n).unwrap()).collect()
    }

    #[test]
    fn builds_keyset_predicates() {
        let key = idents(&["a", "b"]);
        let ks = KeySet::keys([[1, 2]]).with_range(KeyRange::closed_open([1], [3, 4]));
        let mut p = Params::default();
        let pred = keyset_predicate(&ks, &key, &mut p).unwrap().unwrap();
        assert_eq!(
            pred,
            r#"(("a", "b") = ($1, $2)) OR ("a" >= $3 AND ("a", "b") < ($4, $5))"#
        );
        assert_eq!(p.values.len(), 5);
        assert_eq!(
            keyset_predicate(&KeySet::all(), &key, &mut p).unwrap(),
            None
        );
        assert_eq!(
            keyset_predicate(&KeySet::empty(), &key, &mut p)
                .unwrap()
                .as_deref(),
            Some("1 = 0")
        );
        assert!(keyset_predicate(&KeySet::keys([[1]]), &key, &mut p).is_err());
    }
}

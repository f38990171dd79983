//! Checks a statement before it is sent: no NUL in its text, and as many parameters as its
//! placeholders ask for. SQLite would bind a missing one as NULL, silently; on PostgreSQL
//! the outcome of a wrong count depended on sqlx's statement cache (refused with 08P01 when
//! the text was cached, run with the extra parameters unused when not), and a transaction
//! pooler's client-side literals have no server to count for them.

use crate::error::{Error, Result};

/// Refuses text with a NUL (PostgreSQL rejects it as a protocol violation, SQLite stops
/// reading at it) and a parameter count other than the placeholders' (`sqlite` says whose
/// placeholder syntax to read).
pub(crate) fn check(sql: &str, params: usize, sqlite: bool) -> Result<()> {
    if sql.as_bytes().contains(&0) {
        return Err(Error::InvalidStatement {
            code: None,
            message: "the SQL text contains a NUL character".into(),
            source: None,
        });
    }
    let wanted = if sqlite {
        sqlite_params(sql)
    } else {
        postgres_params(sql)
    };
    {
        if wanted != params {
            return Err(Error::InvalidStatement {
                code: None,
                message: format!(
                    "the statement's placeholders take {wanted} parameter(s), but {params} \
                     were given"
                ),
                source: None,
            });
        }
    }
    Ok(())
}

/// How many parameters a PostgreSQL statement takes: its highest `$n` outside literals,
/// quoted identifiers, dollar-quoted strings and comments.
fn postgres_params(sql: &str) -> usize {
    #[cfg(feature = "postgres")]
    return crate::inline::placeholders(sql)
        .into_iter()
        .map(|(_, _, n)| n)
        .max()
        .unwrap_or(0);
    #[cfg(not(feature = "postgres"))]
    {
        let _ = sql;
        0
    }
}

/// How many parameters sqlx-sqlite binds for `sql`: `$N` and `?N` take argument N, and each
/// bare `?` the next one, so the count is the largest of those. Placeholders inside string
/// literals, quoted identifiers and comments do not count.
pub(crate) fn sqlite_params(sql: &str) -> usize {
    let b = sql.as_bytes();
    let mut i = 0;
    let mut bare = 0usize;
    let mut numbered = 0usize;
    while i < b.len() {
        match b[i] {
            q @ (b'\'' | b'"' | b'`') => i = skip_quoted(b, i + 1, q),
            b'[' => i = skip_until(b, i + 1, b"]"),
            b'-' if b.get(i + 1) == Some(&b'-') => i = skip_until(b, i + 2, b"\n"),
            b'/' if b.get(i + 1) == Some(&b'*') => i = skip_until(b, i + 2, b"*/"),
            // `$` inside a name (`a$1`) is part of it.
            b'$' if i > 0
                && (b[i - 1].is_ascii_alphanumeric() || matches!(b[i - 1], b'_' | b'$')) =>
            {
                i += 1
            }
            p @ (b'?' | b'$') => {
                let start = i + 1;
                let mut end = start;
                while end < b.len() && b[end].is_ascii_digit() {
                    end += 1;
                }
                if end > start {
                    let n = sql[start..end].parse().unwrap_or(usize::MAX);
                    numbered = numbered.max(n);
                } else if p == b'?' {
                    bare += 1;
                }
                i = end.max(start);
            }
            _ => i += 1,
        }
    }
    bare.max(numbered)
}

/// The index after the closing quote `q` (a doubled quote is an escaped one).
fn skip_quoted(b: &[u8], mut i: usize, q: u8) -> usize {
    while i < b.len() {
        if b[i] == q {
            if b.get(i + 1) == Some(&q) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    i
}

/// The index after `end`, or the end of the text.
fn skip_until(b: &[u8], i: usize, end: &[u8]) -> usize {
    b.get(i..)
        .and_then(|rest| rest.windows(end.len()).position(|w| w == end))
        .map_or(b.len(), |p| i + p + end.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_what_sqlx_binds() {
        assert_eq!(sqlite_params("SELECT 1"), 0);
        assert_eq!(sqlite_params("SELECT $1 + $2"), 2);
        assert_eq!(sqlite_params("SELECT $2, $2"), 2);
        assert_eq!(sqlite_params("SELECT ?, ?"), 2);
        assert_eq!(sqlite_params("SELECT ?3"), 3);
        assert_eq!(
            sqlite_params("SELECT '$9', \"?\", [$4], `?` -- $7\n, $1 /* ?8 */"),
            1
        );
        assert_eq!(sqlite_params("SELECT 'it''s $3', $1"), 1);
        assert_eq!(sqlite_params("SELECT a$2 FROM t WHERE id = $1"), 1);
        assert_eq!(
            sqlite_params("SELECT json_extract(x, '$.a') FROM t WHERE id = $1"),
            1
        );
    }

    #[test]
    fn refuses_nul_and_wrong_counts() {
        assert!(check("SELECT 1\0", 0, false).is_err());
        assert!(check("UPDATE t SET a = $1 WHERE id = $2", 1, true).is_err());
        assert!(check("UPDATE t SET a = $1 WHERE id = $2", 3, true).is_err());
        assert!(check("UPDATE t SET a = $1 WHERE id = $2", 2, true).is_ok());
        // PostgreSQL's syntax: dollar quotes and names with `$` are not placeholders.
        #[cfg(feature = "postgres")]
        {
            assert!(check("UPDATE t SET a = $1 WHERE id = $2", 1, false).is_err());
            assert!(check("UPDATE t SET a = $1 WHERE id = $2", 3, false).is_err());
            assert!(check("SELECT $$ $3 $$, a$2 FROM t WHERE id = $1", 1, false).is_ok());
        }
    }
}

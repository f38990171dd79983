//! Mutations: the writes a [`Batch`](crate::Batch) or a
//! [`Transaction`](crate::Transaction) buffers and applies atomically at commit.

use std::collections::HashSet;

use crate::conn::{ExecResult, RawConnection};
use crate::error::{Error, Result};
use crate::ident::{Ident, idents};
use crate::keyset::KeySet;
use crate::schema::SchemaCache;
use crate::sql::{self, Params};
use crate::value::Value;

/// Rows to write to a table: column names and one value list per row.
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    table: Ident,
    columns: Vec<Ident>,
    rows: Vec<Vec<Value>>,
}

impl Write {
    fn new<S: AsRef<str>>(table: &str, columns: &[S], rows: Vec<Vec<Value>>) -> Result<Write> {
        let table = Ident::new(table)?;
        let columns = idents(columns)?;
        if columns.is_empty() {
            return Err(Error::invalid(format!(
                "a write to {table} names no column"
            )));
        }
        let mut seen = HashSet::new();
        if let Some(dup) = columns.iter().find(|c| !seen.insert(c.as_str())) {
            return Err(Error::invalid(format!("column {dup} is named twice")));
        }
        if let Some((i, row)) = rows
            .iter()
            .enumerate()
            .find(|(_, r)| r.len() != columns.len())
        {
            return Err(Error::invalid(format!(
                "row {i} for {table} has {} value(s) but {} column(s) are named",
                row.len(),
                columns.len()
            )));
        }
        Ok(Write {
            table,
            columns,
            rows,
        })
    }

    /// The table written to.
    pub fn table(&self) -> &Ident {
        &self.table
    }

    /// The columns written.
    pub fn columns(&self) -> &[Ident] {
        &self.columns
    }

    /// The rows, in column order.
    pub fn rows(&self) -> &[Vec<Value>] {
        &self.rows
    }
}

/// One buffered write, as Spanner's mutations.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Mutation {
    /// Insert rows; fails if a row already exists.
    Insert(Write),
    /// Update existing rows by primary key (the key columns must be named); fails with
    /// [`Error::NotFound`] if a row does not exist.
    Update(Write),
    /// Insert rows, or update the named columns of rows that exist.
    InsertOrUpdate(Write),
    /// Delete each row if it exists, then insert it: columns not named get their defaults.
    Replace(Write),
    /// Delete the rows of a key set (on the primary key).
    Delete {
        /// The table.
        table: Ident,
        /// The rows.
        keyset: KeySet,
    },
}

impl Mutation {
    /// An [`Mutation::Insert`]; names are validated now.
    pub fn insert<S: AsRef<str>>(
        table: &str,
        columns: &[S],
        rows: Vec<Vec<Value>>,
    ) -> Result<Self> {
        Write::new(table, columns, rows).map(Mutation::Insert)
    }

    /// An [`Mutation::Update`]; names are validated now.
    pub fn update<S: AsRef<str>>(
        table: &str,
        columns: &[S],
        rows: Vec<Vec<Value>>,
    ) -> Result<Self> {
        Write::new(table, columns, rows).map(Mutation::Update)
    }

    /// An [`Mutation::InsertOrUpdate`]; names are validated now.
    pub fn insert_or_update<S: AsRef<str>>(
        table: &str,
        columns: &[S],
        rows: Vec<Vec<Value>>,
    ) -> Result<Self> {
        Write::new(table, columns, rows).map(Mutation::InsertOrUpdate)
    }

    /// An [`Mutation::Replace`]; names are validated now.
    pub fn replace<S: AsRef<str>>(
        table: &str,
        columns: &[S],
        rows: Vec<Vec<Value>>,
    ) -> Result<Self> {
        Write::new(table, columns, rows).map(Mutation::Replace)
    }

    /// A [`Mutation::Delete`]; the table name is validated now.
    pub fn delete(table: &str, keyset: KeySet) -> Result<Self> {
        Ok(Mutation::Delete {
            table: Ident::new(table)?,
            keyset,
        })
    }
}

/// Buffers mutations: the write methods shared by [`Batch`](crate::Batch) and
/// [`Transaction`](crate::Transaction). Each validates names at once and returns
/// [`Error::InvalidArgument`] for a bad one, buffering nothing.
pub trait Mutate {
    /// Adds a mutation to the buffer.
    fn buffer(&mut self, mutation: Mutation) -> &mut Self;

    /// The mutations buffered so far.
    fn mutations(&self) -> &[Mutation];

    /// Inserts rows; see [`Mutation::insert`].
    fn insert<S: AsRef<str>>(
        &mut self,
        table: &str,
        columns: &[S],
        rows: Vec<Vec<Value>>,
    ) -> Result<&mut Self> {
        Ok(self.buffer(Mutation::insert(table, columns, rows)?))
    }

    /// Updates rows; see [`Mutation::update`].
    fn update<S: AsRef<str>>(
        &mut self,
        table: &str,
        columns: &[S],
        rows: Vec<Vec<Value>>,
    ) -> Result<&mut Self> {
        Ok(self.buffer(Mutation::update(table, columns, rows)?))
    }

    /// Inserts or updates rows; see [`Mutation::insert_or_update`].
    fn insert_or_update<S: AsRef<str>>(
        &mut self,
        table: &str,
        columns: &[S],
        rows: Vec<Vec<Value>>,
    ) -> Result<&mut Self> {
        Ok(self.buffer(Mutation::insert_or_update(table, columns, rows)?))
    }

    /// Replaces rows; see [`Mutation::replace`].
    fn replace<S: AsRef<str>>(
        &mut self,
        table: &str,
        columns: &[S],
        rows: Vec<Vec<Value>>,
    ) -> Result<&mut Self> {
        Ok(self.buffer(Mutation::replace(table, columns, rows)?))
    }

    /// Deletes the rows of a key set; see [`Mutation::delete`].
    fn delete(&mut self, table: &str, keyset: KeySet) -> Result<&mut Self> {
        Ok(self.buffer(Mutation::delete(table, keyset)?))
    }
}

/// Rows per multi-row INSERT: few distinct statements for the statement cache, and well under
/// both backends' parameter limits (SQLite 32766, PostgreSQL 65535).
fn chunk_rows(columns: usize) -> usize {
    (30_000 / columns.max(1)).clamp(1, 100)
}

fn insert_sql(w: &Write, rows: &[Vec<Value>], params: &mut Params) -> String {
    let values: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "({})",
                r.iter()
                    .map(|v| params.push(v))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
        .collect();
    format!(
        "INSERT INTO {} ({}) VALUES {}",
        w.table,
        sql::column_list(&w.columns),
        values.join(", ")
    )
}

/// Positions of the key columns among the written columns; all must be there.
fn key_positions(w: &Write, key: &[Ident], what: &str) -> Result<Vec<usize>> {
    key.iter()
        .map(|k| {
            w.columns.iter().position(|c| c == k).ok_or_else(|| {
                Error::invalid(format!(
                    "{what} on {} must name every primary key column ({}); {k} is missing",
                    w.table,
                    sql::column_list(key)
                ))
            })
        })
        .collect()
}

fn key_condition(key: &[Ident], row: &[Value], pos: &[usize], params: &mut Params) -> String {
    key.iter()
        .zip(pos)
        .map(|(k, &i)| format!("{k} = {}", params.push(&row[i])))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// Applies one mutation on a connection that is inside a transaction.
pub(crate) async fn apply(
    mut conn: RawConnection<'_>,
    schema: &SchemaCache,
    m: &Mutation,
) -> ExecResult<()> {
    match m {
        Mutation::Insert(w) => {
            for rows in w.rows.chunks(chunk_rows(w.columns.len())) {
                let mut p = Params::default();
                let sql = insert_sql(w, rows, &mut p);
                conn.reborrow().execute(&sql, &p.values).await?;
            }
        }
        Mutation::Update(w) => {
            let key = schema.key_columns(conn.reborrow(), &w.table, None).await?;
            let pos = key_positions(w, &key, "an update")?;
            let set: Vec<usize> = (0..w.columns.len()).filter(|i| !pos.contains(i)).collect();
            for row in &w.rows {
                let mut p = Params::default();
                let assignments: Vec<String> = if set.is_empty() {
                    vec![format!("{0} = {0}", key[0])]
                } else {
                    set.iter()
                        .map(|&i| format!("{} = {}", w.columns[i], p.push(&row[i])))
                        .collect()
                };
                let cond = key_condition(&key, row, &pos, &mut p);
                let sql = format!(
                    "UPDATE {} SET {} WHERE {cond}",
                    w.table,
                    assignments.join(", ")
                );
                if conn.reborrow().execute(&sql, &p.values).await? == 0 {
                    return Err(Error::NotFound(format!(
                        "update of {}: no row with key {:?}",
                        w.table,
                        pos.iter().map(|&i| &row[i]).collect::<Vec<_>>()
                    ))
                    .into());
                }
            }
        }
        Mutation::InsertOrUpdate(w) => {
            let key = schema.key_columns(conn.reborrow(), &w.table, None).await?;
            let pos = key_positions(w, &key, "an insert_or_update")?;
            let updates: Vec<String> = w
                .columns
                .iter()
                .enumerate()
                .filter(|(i, _)| !pos.contains(i))
                .map(|(_, c)| format!("{c} = excluded.{c}"))
                .collect();
            let action = if updates.is_empty() {
                "DO NOTHING".to_owned()
            } else {
                format!("DO UPDATE SET {}", updates.join(", "))
            };
            // One row a statement: Spanner applies repeated keys in order, where a multi-row
            // upsert would fail on them.
            for row in &w.rows {
                let mut p = Params::default();
                let sql = format!(
                    "{} ON CONFLICT ({}) {action}",
                    insert_sql(w, std::slice::from_ref(row), &mut p),
                    sql::column_list(&key)
                );
                conn.reborrow().execute(&sql, &p.values).await?;
            }
        }
        Mutation::Replace(w) => {
            let key = schema.key_columns(conn.reborrow(), &w.table, None).await?;
            let pos = key_positions(w, &key, "a replace")?;
            for row in &w.rows {
                let mut p = Params::default();
                let cond = key_condition(&key, row, &pos, &mut p);
                let sql = format!("DELETE FROM {} WHERE {cond}", w.table);
                conn.reborrow().execute(&sql, &p.values).await?;
                let mut p = Params::default();
                let sql = insert_sql(w, std::slice::from_ref(row), &mut p);
                conn.reborrow().execute(&sql, &p.values).await?;
            }
        }
        Mutation::Delete { table, keyset } => {
            let key = schema.key_columns(conn.reborrow(), table, None).await?;
            let mut p = Params::default();
            let sql = match sql::keyset_predicate(keyset, &key, &mut p)? {
                Some(pred) => format!("DELETE FROM {table} WHERE {pred}"),
                None => format!("DELETE FROM {table}"),
            };
            conn.reborrow().execute(&sql, &p.values).await?;
        }
    }
    Ok(())
}

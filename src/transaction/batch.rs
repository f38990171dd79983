//! `Batch`: mutations committed atomically, without reads.

use chrono::{DateTime, Utc};

use super::{TransactionOptions, retry};
use crate::error::Result;
use crate::keyset::KeySet;
use crate::mutation::Mutation;
use crate::session::Session;
use crate::value::Value;

/// Buffered mutations applied atomically by [`commit`](Batch::commit) (Spanner's `Batch`).
///
/// Each method validates names at once and returns [`Error::InvalidArgument`](crate::Error)
/// for a bad one, leaving the batch as it was. Dropping a batch discards it.
#[derive(Debug)]
#[must_use = "a batch does nothing until it is committed"]
pub struct Batch<'s> {
    session: &'s mut Session,
    mutations: Vec<Mutation>,
}

impl<'s> Batch<'s> {
    pub(crate) fn new(session: &'s mut Session) -> Self {
        Batch {
            session,
            mutations: Vec::new(),
        }
    }

    /// Adds a mutation.
    pub fn buffer(&mut self, mutation: Mutation) -> &mut Self {
        self.mutations.push(mutation);
        self
    }

    /// Inserts rows; see [`Mutation::insert`].
    pub fn insert<S: AsRef<str>>(
        &mut self,
        table: &str,
        columns: &[S],
        rows: Vec<Vec<Value>>,
    ) -> Result<&mut Self> {
        Ok(self.buffer(Mutation::insert(table, columns, rows)?))
    }

    /// Updates rows; see [`Mutation::update`].
    pub fn update<S: AsRef<str>>(
        &mut self,
        table: &str,
        columns: &[S],
        rows: Vec<Vec<Value>>,
    ) -> Result<&mut Self> {
        Ok(self.buffer(Mutation::update(table, columns, rows)?))
    }

    /// Inserts or updates rows; see [`Mutation::insert_or_update`].
    pub fn insert_or_update<S: AsRef<str>>(
        &mut self,
        table: &str,
        columns: &[S],
        rows: Vec<Vec<Value>>,
    ) -> Result<&mut Self> {
        Ok(self.buffer(Mutation::insert_or_update(table, columns, rows)?))
    }

    /// Replaces rows; see [`Mutation::replace`].
    pub fn replace<S: AsRef<str>>(
        &mut self,
        table: &str,
        columns: &[S],
        rows: Vec<Vec<Value>>,
    ) -> Result<&mut Self> {
        Ok(self.buffer(Mutation::replace(table, columns, rows)?))
    }

    /// Deletes the rows of a key set; see [`Mutation::delete`].
    pub fn delete(&mut self, table: &str, keyset: KeySet) -> Result<&mut Self> {
        Ok(self.buffer(Mutation::delete(table, keyset)?))
    }

    /// The mutations buffered so far.
    pub fn mutations(&self) -> &[Mutation] {
        &self.mutations
    }

    /// Applies every mutation in one read-write transaction and returns the commit time.
    /// An abort is retried as [`Session::run_in_transaction`] does; any other error rolls
    /// everything back.
    pub async fn commit(self) -> Result<DateTime<Utc>> {
        let mutations = self.mutations;
        let options = TransactionOptions::default();
        let committed = retry::run(self.session, options, async |tx| {
            for m in &mutations {
                tx.buffer(m.clone());
            }
            Ok(())
        })
        .await?;
        Ok(committed.commit_timestamp)
    }
}

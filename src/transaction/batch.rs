//! `Batch`: mutations committed atomically, without reads.

use chrono::{DateTime, Utc};

use super::{TransactionOptions, retry};
use crate::error::{Error, Result};
use crate::mutation::{Mutate, Mutation};
use crate::session::Session;

/// Buffered mutations applied atomically by [`commit`](Batch::commit) (Spanner's `Batch`).
///
/// The write methods come from [`Mutate`]. Dropping a batch discards it.
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

    /// Applies every mutation in one read-write transaction and returns the commit time.
    /// An abort is retried as [`Session::run_in_transaction`] does; any other error rolls
    /// everything back.
    pub async fn commit(self) -> Result<DateTime<Utc>> {
        let options = TransactionOptions::default();
        let committed = retry::run(self.session, options, &self.mutations, async |_tx| {
            Ok::<_, Error>(())
        })
        .await?;
        Ok(committed.commit_timestamp)
    }
}

impl Mutate for Batch<'_> {
    fn buffer(&mut self, mutation: Mutation) -> &mut Self {
        self.mutations.push(mutation);
        self
    }

    fn mutations(&self) -> &[Mutation] {
        &self.mutations
    }
}

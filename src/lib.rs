#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]

pub mod adk;
mod conn;
mod database;
mod error;
mod ident;
pub mod items;
mod keyset;
mod mutation;
mod param;
pub mod pool;
mod row;
mod schema;
mod session;
mod sql;
mod support;
mod transaction;
mod value;

/// The traits most programs need: `use session_pool::prelude::*;`.
pub mod prelude {
    pub use crate::mutation::Mutate;
    pub use crate::pool::AbstractSessionPool;
}

pub use conn::RawConnection;
pub use database::{Database, DatabaseOptions, Dialect};
pub use error::{Error, Result};
pub use ident::{Ident, MAX_IDENT_LEN};
pub use keyset::{Bound, KeyRange, KeySet};
pub use mutation::{Mutate, Mutation, Write};
#[allow(deprecated)]
pub use pool::{
    AbstractSessionPool, BurstyOptions, BurstyPool, FixedSizeOptions, FixedSizePool, PingReport,
    PingTask, PingingOptions, PingingPool, PoolOptions, PoolStats, PutError, SessionCheckout,
    TransactionPingingPool,
};
pub use row::{ColumnIndex, ResultSet, Row};
pub use session::{Session, SessionOptions};
pub use support::MAX_ID_LEN;
pub use transaction::{Batch, Committed, Snapshot, Transaction, TransactionOptions};
pub use value::{FromValue, Value};

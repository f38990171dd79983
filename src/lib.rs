#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(not(any(feature = "sqlite", feature = "postgres")))]
compile_error!(
    "session-pool needs a database backend: enable the `sqlite` feature, the `postgres` \
     feature, or both (the default)"
);

#[cfg(feature = "adk")]
#[cfg_attr(docsrs, doc(cfg(feature = "adk")))]
pub mod adk;
#[cfg(all(feature = "adk", feature = "postgres"))]
mod column_types;
mod conn;
mod database;
mod deadline;
mod dialect;
mod error;
#[cfg(feature = "postgres")]
mod hosts;
mod ident;
#[cfg(feature = "postgres")]
mod inline;
#[cfg(feature = "items")]
#[cfg_attr(docsrs, doc(cfg(feature = "items")))]
pub mod items;
mod keyset;
mod mutation;
mod param;
#[cfg(feature = "postgres")]
mod param_types;
mod placeholders;
mod pool;
mod pooler;
mod read;
mod row;
mod schema;
mod session;
#[cfg(feature = "postgres")]
mod signals;
mod sql;
mod staleness;
mod stopwatch;
#[cfg(any(feature = "adk", feature = "items"))]
mod support;
mod telemetry;
mod transaction;
mod value;

/// The traits most programs need: `use session_pool::prelude::*;`.
pub mod prelude {
    pub use crate::mutation::Mutate;
    pub use crate::pool::AbstractSessionPool;
    pub use crate::session::{ReadContext, WriteContext};
}

#[cfg(feature = "postgres")]
pub use conn::PoolerLink;
pub use conn::{FromDriverRow, RawConnection};
pub use database::{Database, DatabaseOptions};
pub use dialect::Dialect;
pub use error::{Error, ErrorKind, Result};
pub use ident::{Ident, MAX_IDENT_LEN};
pub use keyset::{Bound, KeyRange, KeySet};
pub use mutation::{Mutate, Mutation, Write};
#[allow(deprecated)]
pub use pool::{
    AbstractSessionPool, Bursty, BurstyOptions, BurstyPool, CheckoutTracker, FixedSize,
    FixedSizeOptions, FixedSizePool, PingReport, PingTask, Pinging, PingingOptions, PingingPool,
    Pool, PoolOptions, PoolStats, PooledSession, PutError, SessionCheckout, SharedPool, Strategy,
    TransactionPinging, TransactionPingingOptions, TransactionPingingPool,
};
pub use row::{ColumnIndex, ResultSet, Row};
#[cfg(feature = "postgres")]
pub use session::ReadAt;
pub use session::{ReadContext, Session, SessionOptions, WithTimeout, WriteContext};
pub use staleness::{CommitToken, Staleness};
#[cfg(any(feature = "adk", feature = "items"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "adk", feature = "items"))))]
pub use support::MAX_ID_LEN;
pub use transaction::{Batch, Committed, Snapshot, Transaction, TransactionOptions};
pub use value::{FromValue, Numeric, Value};

//! Session pools: the Spanner client's strategies over this crate's [`Session`](crate::Session)s.
//!
//! Every built-in pool is a [`Pool`] with a strategy: [`FixedSizePool`], [`BurstyPool`],
//! [`PingingPool`] (and the deprecated [`TransactionPingingPool`]) are its aliases. A pool
//! is a cheap `Clone` handle; checkouts own their way home, so they are `'static`.

mod api;
mod bursty;
mod checkout;
mod core;
mod fixed;
mod gate;
mod handle;
mod janitor;
mod leak;
mod lease;
mod ledger;
mod maintenance;
mod metrics;
mod options;
mod ping_task;
mod pinging;
mod queue;
mod slot;
mod stats;
mod sweeper;
mod timer_thread;
mod transaction;
mod transaction_pinging;

pub use api::{AbstractSessionPool, PutError, SharedPool};
pub use bursty::{Bursty, BurstyOptions, BurstyPool};
pub use checkout::SessionCheckout;
pub use fixed::{FixedSize, FixedSizeOptions, FixedSizePool};
#[cfg(any(feature = "adk", feature = "items"))]
pub(crate) use handle::session_of;
pub use handle::{Pool, Strategy};
pub use leak::CheckoutTracker;
pub use lease::PooledSession;
pub use options::PoolOptions;
pub use ping_task::PingTask;
pub use pinging::{Pinging, PingingOptions, PingingPool};
pub use stats::{PingReport, PoolStats};
#[allow(deprecated)]
pub use transaction_pinging::{
    TransactionPinging, TransactionPingingOptions, TransactionPingingPool,
};

//! `FixedSizePool`: a fixed number of sessions, made up front.

use std::time::Duration;

use super::core::{Lifecycle, Probe, Rules};
use super::handle::{Pool, Sealed, Strategy};
use super::options::{PoolOptions, check_size};
use crate::database::Database;
use crate::error::Result;

/// The fixed-size strategy (Spanner's `FixedSizePool`); see [`FixedSizePool`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FixedSize {}

impl Sealed for FixedSize {}
impl Strategy for FixedSize {
    const NAME: &'static str = "FixedSizePool";
}

/// A pool of a fixed number of sessions (Spanner's `FixedSizePool`).
///
/// - Building (or `bind`) creates the sessions, concurrently, exactly as many as are
///   missing.
/// - `get` hands out the least recently returned session, waiting up to the timeout when
///   all are out, in arrival order; then [`Error::PoolTimeout`](crate::Error::PoolTimeout).
/// - A session idle for `max_age` or longer is checked with `exists()` first, and replaced
///   (the dead one dropped) if it is gone.
/// - `put` into a full pool fails with [`Error::PoolFull`](crate::Error::PoolFull).
///
/// ```no_run
/// # async fn demo() -> session_pool::Result<()> {
/// use std::time::Duration;
/// use session_pool::{Database, FixedSizePool};
/// // Python: pool = FixedSizePool(size=10, default_timeout=5); pool.bind(database)
/// let db = Database::open("sqlite://app.db").await?;
/// let pool = FixedSizePool::builder()
///     .size(10)
///     .default_timeout(Duration::from_secs(5))
///     .build(&db)
///     .await?;
/// let mut session = pool.session().await?;
/// session.ping().await?;
/// # Ok(()) }
/// ```
pub type FixedSizePool = Pool<FixedSize>;

/// Options and builder of a [`FixedSizePool`], with the Python client's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[must_use = "options do nothing until a pool is built with them"]
pub struct FixedSizeOptions {
    /// Number of sessions (default 10).
    pub size: usize,
    /// How long `get` waits for a session (default 10 s).
    pub default_timeout: Duration,
    /// A session idle this long is checked with `exists()` before it is handed out, and by
    /// `ping()` (default 55 min, as the Python client).
    pub max_age: Duration,
    /// Labels, role and leak warning.
    pub pool: PoolOptions,
}

impl Default for FixedSizeOptions {
    fn default() -> Self {
        FixedSizeOptions {
            size: 10,
            default_timeout: Duration::from_secs(10),
            max_age: Duration::from_secs(55 * 60),
            pool: PoolOptions::default(),
        }
    }
}

impl FixedSizeOptions {
    /// Sets the size.
    pub fn size(mut self, size: usize) -> Self {
        self.size = size;
        self
    }

    /// Sets how long `get` waits.
    pub fn default_timeout(mut self, timeout: Duration) -> Self {
        self.default_timeout = timeout;
        self
    }

    /// Sets the idle time after which a session is checked before use.
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// Sets labels, role and leak warning.
    pub fn pool(mut self, pool: PoolOptions) -> Self {
        self.pool = pool;
        self
    }

    /// Builds the pool and binds it to `database`, creating its sessions.
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) for a size of 0; the first
    /// connection error if a session cannot be created.
    pub async fn build(self, database: &Database) -> Result<FixedSizePool> {
        let pool = FixedSizePool::new(self)?;
        pool.bind(database).await?;
        Ok(pool)
    }
}

impl Pool<FixedSize> {
    /// Options to build a pool with, starting from the defaults.
    pub fn builder() -> FixedSizeOptions {
        FixedSizeOptions::default()
    }

    /// A pool with these options, not yet bound: for parity with the Python API
    /// (`FixedSizePool(size=…)`, then `bind`). Until [`bind`](Pool::bind), `get` fails
    /// with [`Error::NotBound`](crate::Error::NotBound); prefer
    /// [`builder`](Pool::<FixedSize>::builder). A size of 0 is
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument).
    pub fn new(options: FixedSizeOptions) -> Result<Self> {
        check_size("FixedSizePool size", options.size)?;
        let rules = Rules {
            max_open: options.size,
            max_idle: options.size,
            default_timeout: Some(options.default_timeout),
            check_after: options.max_age,
            probe: Probe::Exists,
            fill: true,
            life: Lifecycle::default(),
        };
        Ok(Pool::from_rules(rules, options.pool))
    }

    /// The pool's size.
    pub fn size(&self) -> usize {
        self.core.rules.max_open
    }
}

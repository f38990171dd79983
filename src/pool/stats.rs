//! What a pool reports: its gauges and counters, and what a ping round did.

/// A snapshot of a pool: gauges now, and counters since it was built.
///
/// Checkouts take no lock, so the fields are read one by one: while the pool is in use they
/// may come from instants a few nanoseconds apart (`in_use` is `open` minus `idle`). At
/// rest they agree exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct PoolStats {
    /// Sessions the pool holds: idle, in use, and being created.
    pub open: usize,
    /// Sessions outside the idle queue: checked out, or being checked or created.
    pub in_use: usize,
    /// The most sessions that were in use at once (a high-water mark since the pool was
    /// built): how close the pool came to its size.
    pub max_in_use: usize,
    /// Sessions ready to be checked out.
    pub idle: usize,
    /// The most sessions the pool allows open (`usize::MAX` for an uncapped bursty pool).
    pub max_open: usize,
    /// `get` calls waiting for a session.
    pub waiters: usize,
    /// Sessions handed out by `get`.
    pub acquired: u64,
    /// Sessions given back by `put`.
    pub released: u64,
    /// `get` calls that timed out.
    pub get_timeouts: u64,
    /// Sessions created.
    pub created: u64,
    /// Sessions deleted or dropped by the pool (clear, close, over the idle target).
    pub deleted: u64,
    /// Sessions found gone (a failed check, or returned broken) and replaced.
    pub replaced: u64,
    /// Successful pings.
    pub pinged: u64,
}

/// What one [`ping`](crate::AbstractSessionPool::ping) round did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct PingReport {
    /// Sessions checked and found alive.
    pub pinged: usize,
    /// Sessions found gone and replaced by new ones.
    pub replaced: usize,
    /// Sessions created to bring the pool back to its size.
    pub topped_up: usize,
    /// Sessions that could not be created (the server is unreachable, say); the pool
    /// tries again on the next round or `get`.
    pub failed: usize,
}

//! Pool checkout, side by side: this crate's pools against deadpool, bb8 and sqlx's pool.
//!
//! Every contender holds connections to one shared in-memory SQLite database, all created
//! before timing. The contended group also runs a *floor*: the same 64 tasks doing the
//! same `yield_now` with no pool, the throughput no pool can beat; each pool's contended
//! throughput divided by the floor's is how much of the scheduler's capacity it keeps. A
//! second floor, the *hand-off floor*, adds the one scheduler trip per checkout that a
//! first-come-first-served hand-off cannot avoid when most checkouts wait (see its
//! contender). No contender runs a query on checkout except `BurstyPool`, whose strategy
//! is an `exists()` round trip on every checkout: it is reported in its own group.
//!
//! ```sh
//! cargo bench --bench pool_checkout
//! cargo bench --bench pool_checkout -- '^contended/'   # one group; ratios: BENCHMARKS.md §1
//! ```

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use session_pool::{BurstyPool, Database, FixedSizePool, PingingPool};
use sqlx::ConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqlitePool, SqlitePoolOptions};
use tokio::runtime::Runtime;

const POOL_SIZE: usize = 8;
const TASKS: usize = 64;
const CHECKOUTS_PER_TASK: usize = 100;
const URL: &str = "sqlite:file:pool_checkout_bench?mode=memory&cache=shared";

fn sqlite_options() -> SqliteConnectOptions {
    URL.parse::<SqliteConnectOptions>().expect("sqlite url")
}

/// deadpool's managed pool; `recycle` checks nothing, as asked of every contender.
struct DeadpoolManager;

impl deadpool::managed::Manager for DeadpoolManager {
    type Type = SqliteConnection;
    type Error = sqlx::Error;

    async fn create(&self) -> Result<SqliteConnection, sqlx::Error> {
        sqlite_options().connect().await
    }

    async fn recycle(
        &self,
        _: &mut SqliteConnection,
        _: &deadpool::managed::Metrics,
    ) -> deadpool::managed::RecycleResult<sqlx::Error> {
        Ok(())
    }
}

type Deadpool = deadpool::managed::Pool<DeadpoolManager>;

/// bb8's manager; checkouts are not tested (`test_on_check_out(false)`).
struct Bb8Manager;

impl bb8::ManageConnection for Bb8Manager {
    type Connection = SqliteConnection;
    type Error = sqlx::Error;

    async fn connect(&self) -> Result<SqliteConnection, sqlx::Error> {
        sqlite_options().connect().await
    }

    async fn is_valid(&self, _: &mut SqliteConnection) -> Result<(), sqlx::Error> {
        Ok(())
    }

    fn has_broken(&self, _: &mut SqliteConnection) -> bool {
        false
    }
}

/// The contenders, each filled with `POOL_SIZE` connections.
struct Pools {
    _db: Database,
    fixed: FixedSizePool,
    pinging: PingingPool,
    bursty: BurstyPool,
    deadpool: Deadpool,
    bb8: bb8::Pool<Bb8Manager>,
    sqlx: SqlitePool,
    /// No sessions: tokio's semaphore (an intrusive, allocation-free FIFO of waiters) with
    /// one permit per session, the bare cost of handing places over in order.
    semaphore: tokio::sync::Semaphore,
    /// The same semaphore gating an `ArrayQueue` of connections: the least a FIFO pool on
    /// that waiter list does (no accounting, no timeout, no checks), to show what moving
    /// the connections adds to it.
    semq: (
        tokio::sync::Semaphore,
        crossbeam_queue::ArrayQueue<SqliteConnection>,
    ),
}

impl Pools {
    async fn new() -> Pools {
        let db = Database::open(URL).await.expect("database");
        let fixed = FixedSizePool::builder()
            .size(POOL_SIZE)
            .build(&db)
            .await
            .unwrap();
        let pinging = PingingPool::builder()
            .size(POOL_SIZE)
            .build(&db)
            .await
            .unwrap();
        let bursty = BurstyPool::builder()
            .target_size(POOL_SIZE)
            .build(&db)
            .await
            .unwrap();
        // Fill the bursty pool: it only keeps what is returned to it.
        let held: Vec<_> =
            futures_util::future::join_all((0..POOL_SIZE).map(|_| bursty.get(None))).await;
        for s in held {
            bursty.put(s.unwrap()).unwrap();
        }

        let deadpool = Deadpool::builder(DeadpoolManager)
            .max_size(POOL_SIZE)
            .build()
            .unwrap();
        let warm: Vec<_> =
            futures_util::future::join_all((0..POOL_SIZE).map(|_| deadpool.get())).await;
        drop(warm);

        let bb8 = bb8::Pool::builder()
            .max_size(POOL_SIZE as u32)
            .min_idle(Some(POOL_SIZE as u32))
            .test_on_check_out(false)
            .build(Bb8Manager)
            .await
            .unwrap();
        let sqlx = SqlitePoolOptions::new()
            .max_connections(POOL_SIZE as u32)
            .min_connections(POOL_SIZE as u32)
            .test_before_acquire(false)
            .connect_with(sqlite_options())
            .await
            .unwrap();
        let warm: Vec<_> =
            futures_util::future::join_all((0..POOL_SIZE).map(|_| sqlx.acquire())).await;
        drop(warm);
        let queue = crossbeam_queue::ArrayQueue::new(POOL_SIZE);
        for _ in 0..POOL_SIZE {
            let conn = sqlx::ConnectOptions::connect(&sqlite_options()).await;
            assert!(queue.push(conn.unwrap()).is_ok());
        }
        let pools = Pools {
            semq: (tokio::sync::Semaphore::new(POOL_SIZE), queue),
            semaphore: tokio::sync::Semaphore::new(POOL_SIZE),
            _db: db,
            fixed,
            pinging,
            bursty,
            deadpool,
            bb8,
            sqlx,
        };
        pools.check_full().await;
        pools
    }

    async fn check_full(&self) {
        assert_eq!(self.fixed.stats().idle, POOL_SIZE);
        assert_eq!(self.pinging.stats().idle, POOL_SIZE);
        assert_eq!(self.bursty.stats().idle, POOL_SIZE);
        assert_eq!(self.deadpool.status().size, POOL_SIZE);
        assert_eq!(self.bb8.state().connections as usize, POOL_SIZE);
        assert_eq!(self.sqlx.size() as usize, POOL_SIZE);
        assert_eq!(self.semq.1.len(), POOL_SIZE);
        assert_eq!(self.semq.0.available_permits(), POOL_SIZE);
    }
}

/// One checkout of a contender, held across `hold`, then returned by dropping its guard.
macro_rules! checkout {
    (fixed, $p:expr, $hold:expr) => {{
        let s = $p.fixed.session().await.unwrap();
        $hold;
        drop(black_box(s));
    }};
    (pinging, $p:expr, $hold:expr) => {{
        let s = $p.pinging.session().await.unwrap();
        $hold;
        drop(black_box(s));
    }};
    (bursty, $p:expr, $hold:expr) => {{
        let s = $p.bursty.session().await.unwrap();
        $hold;
        drop(black_box(s));
    }};
    (deadpool, $p:expr, $hold:expr) => {{
        let c = $p.deadpool.get().await.unwrap();
        $hold;
        drop(black_box(c));
    }};
    (bb8, $p:expr, $hold:expr) => {{
        let c = $p.bb8.get().await.unwrap();
        $hold;
        drop(black_box(c));
    }};
    (sqlx, $p:expr, $hold:expr) => {{
        let c = $p.sqlx.acquire().await.unwrap();
        $hold;
        drop(black_box(c));
    }};
    (semaphore, $p:expr, $hold:expr) => {{
        let permit = $p.semaphore.acquire().await.unwrap();
        $hold;
        drop(black_box(permit));
    }};
    // A permit stands for a connection in the queue: taken before the pop, given back
    // after the push, so a woken waiter always finds one.
    (semq, $p:expr, $hold:expr) => {{
        $p.semq.0.acquire().await.unwrap().forget();
        checkout!(semq_permitted, $p, $hold)
    }};
    // The same, with the deadline a pool's checkout has (10 s, Spanner's default): a
    // tokio timer for each wait that cannot be served at once.
    (semq_timed, $p:expr, $hold:expr) => {{
        match $p.semq.0.try_acquire() {
            Ok(permit) => permit.forget(),
            Err(_) => tokio::time::timeout(Duration::from_secs(10), $p.semq.0.acquire())
                .await
                .unwrap()
                .unwrap()
                .forget(),
        }
        checkout!(semq_permitted, $p, $hold)
    }};
    // The rest of either, with the permit held.
    (semq_permitted, $p:expr, $hold:expr) => {{
        let c = $p.semq.1.pop().unwrap();
        $hold;
        assert!($p.semq.1.push(black_box(c)).is_ok());
        $p.semq.0.add_permits(1);
    }};
    // No pool at all: the same tasks doing the same hold, the ceiling any pool can reach.
    (floor, $p:expr, $hold:expr) => {{
        let _ = &$p;
        $hold;
    }};
    // No pool either, but one more trip through the scheduler per checkout: what a FIFO
    // hand-off costs at least when most checkouts wait. A waiting task is polled twice per
    // checkout (woken with its session, then after its hold) where the floor's is polled
    // once; a pool that hands sessions over in order cannot beat this.
    (handoff_floor, $p:expr, $hold:expr) => {{
        let _ = &$p;
        $hold;
        tokio::task::yield_now().await;
    }};
}

macro_rules! uncontended {
    ($group:expr, $rt:expr, $pools:expr, $($name:ident => $label:literal),*) => {$(
        $group.bench_function($label, |b| {
            b.to_async(&$rt).iter(|| async { checkout!($name, $pools, ()) })
        });
    )*};
}

macro_rules! contended {
    ($group:expr, $rt:expr, $pools:expr, $($name:ident => $label:literal),*) => {$(
        $group.bench_function($label, |b| {
            b.iter_custom(|iters| {
                let pools = Arc::clone(&$pools);
                $rt.block_on(async move {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let tasks: Vec<_> = (0..TASKS)
                            .map(|_| {
                                let pools = Arc::clone(&pools);
                                tokio::spawn(async move {
                                    for _ in 0..CHECKOUTS_PER_TASK {
                                        checkout!($name, pools, tokio::task::yield_now().await);
                                    }
                                })
                            })
                            .collect();
                        for t in tasks {
                            t.await.unwrap();
                        }
                    }
                    start.elapsed()
                })
            })
        });
    )*};
}

fn uncontended_checkout(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pools = rt.block_on(Pools::new());
    let mut group = c.benchmark_group("uncontended");
    group.throughput(Throughput::Elements(1));
    uncontended!(group, rt, pools,
        fixed => "FixedSizePool", pinging => "PingingPool",
        deadpool => "deadpool", bb8 => "bb8", sqlx => "sqlx Pool",
        semq => "tokio Semaphore + ArrayQueue (no pool logic)");
    group.finish();
    let mut group = c.benchmark_group("uncontended_exists");
    group.throughput(Throughput::Elements(1));
    uncontended!(group, rt, pools, bursty => "BurstyPool (exists() per checkout)");
    group.finish();
    rt.block_on(pools.check_full());
}

fn contended_checkout(c: &mut Criterion) {
    let rt: Runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let pools = Arc::new(rt.block_on(Pools::new()));
    let mut group = c.benchmark_group("contended");
    group.throughput(Throughput::Elements((TASKS * CHECKOUTS_PER_TASK) as u64));
    group.measurement_time(Duration::from_secs(5));
    contended!(group, rt, pools,
        floor => "floor (no pool)",
        handoff_floor => "hand-off floor (no pool, two polls per checkout)",
        semaphore => "tokio Semaphore (no sessions)",
        semq => "tokio Semaphore + ArrayQueue (no pool logic)",
        semq_timed => "tokio Semaphore + ArrayQueue, a timer per wait",
        fixed => "FixedSizePool", pinging => "PingingPool",
        deadpool => "deadpool", bb8 => "bb8", sqlx => "sqlx Pool");
    group.finish();
    let mut group = c.benchmark_group("contended_exists");
    group.throughput(Throughput::Elements((TASKS * CHECKOUTS_PER_TASK) as u64));
    group.sample_size(10);
    contended!(group, rt, pools, bursty => "BurstyPool (exists() per checkout)");
    group.finish();
    rt.block_on(pools.check_full());
}

criterion_group!(benches, uncontended_checkout, contended_checkout);
criterion_main!(benches);

//! Who times waiters out on multi-thread runtimes: the process's timer thread (current-thread
//! runtimes keep a sweeper task, since their clock may be paused; the other pool tests run
//! there). A waiter past its deadline gets `PoolTimeout`, an earlier deadline that arrives
//! later fires first, a waiter served in time is not failed, and a pool dropped while armed
//! does not stop the thread; a wait polled off any runtime times out too.
mod common;

use std::time::Duration;

use session_pool::{Error, FixedSizeOptions, FixedSizePool};

/// Fails a test that would otherwise hang if nobody timed the waiters out.
const GUARD: Duration = Duration::from_secs(20);

async fn one_session_pool() -> (FixedSizePool, tempfile::TempDir) {
    let (db, dir) = common::sqlite().await;
    let pool = FixedSizePool::new(
        FixedSizeOptions::default()
            .size(1)
            .default_timeout(Duration::from_secs(3600)),
    )
    .unwrap();
    pool.bind(&db).await.unwrap();
    (pool, dir)
}

/// A task waiting up to `timeout` for a session of `pool`.
fn spawn_get(
    pool: &FixedSizePool,
    timeout: Duration,
) -> tokio::task::JoinHandle<session_pool::Result<session_pool::PooledSession>> {
    let pool = pool.clone();
    tokio::spawn(async move { pool.get(Some(timeout)).await })
}

fn timed_out(res: &session_pool::Result<impl std::fmt::Debug>, after: Duration) -> bool {
    matches!(res, Err(Error::PoolTimeout { timeout }) if *timeout == after)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_time_out_in_deadline_order_on_a_multi_thread_runtime() {
    let (pool, _dir) = one_session_pool().await;
    let held = pool.session().await.unwrap();
    let (late, early) = (Duration::from_millis(900), Duration::from_millis(150));
    // The later deadline arms first; the earlier one must still fire first.
    let late_pool = pool.clone();
    let late_wait = tokio::spawn(async move {
        let res = late_pool.get(Some(late)).await;
        (res, std::time::Instant::now())
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let early_pool = pool.clone();
    let early_wait = tokio::spawn(async move {
        let res = early_pool.get(Some(early)).await;
        (res, std::time::Instant::now())
    });
    let (early_res, early_at) = tokio::time::timeout(GUARD, early_wait)
        .await
        .expect("the earlier waiter was timed out")
        .unwrap();
    let (late_res, late_at) = tokio::time::timeout(GUARD, late_wait)
        .await
        .expect("the later waiter was timed out")
        .unwrap();
    assert!(timed_out(&early_res, early), "{early_res:?}");
    assert!(timed_out(&late_res, late), "{late_res:?}");
    assert!(early_at < late_at, "the earlier deadline fired first");
    let s = pool.stats();
    assert_eq!((s.waiters, s.get_timeouts, s.in_use), (0, 2, 1));
    drop(held);
    // The pool still serves, and a waiter served before its deadline is not failed.
    let again = pool.session().await.unwrap();
    let waiter = spawn_get(&pool, Duration::from_secs(5));
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(again);
    let served = tokio::time::timeout(GUARD, waiter).await.unwrap().unwrap();
    assert!(served.is_ok(), "{served:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_pool_leaves_the_timer_working_for_the_next() {
    {
        let (pool, _dir) = one_session_pool().await;
        let _held = pool.session().await.unwrap();
        // Waits with a far deadline, then goes away with its pool: the timer thread holds
        // the pool weakly and must not be stuck on it.
        let waiting = spawn_get(&pool, Duration::from_secs(600));
        tokio::time::sleep(Duration::from_millis(50)).await;
        waiting.abort();
        assert!(waiting.await.unwrap_err().is_cancelled());
        pool.close().await;
    }
    let (pool, _dir) = one_session_pool().await;
    let _held = pool.session().await.unwrap();
    let res = tokio::time::timeout(GUARD, pool.get(Some(Duration::from_millis(100))))
        .await
        .expect("the new pool's waiter was timed out");
    assert!(timed_out(&res, Duration::from_millis(100)), "{res:?}");
}

/// Polls `fut` to completion on this thread, with no tokio runtime in reach.
fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let std::task::Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_off_any_runtime_times_out_too() {
    let (pool, _dir) = one_session_pool().await;
    let _held = pool.session().await.unwrap();
    let waiter = {
        let pool = pool.clone();
        // A plain thread: no tokio runtime, so no sweeper task could run there.
        std::thread::spawn(move || block_on(pool.get(Some(Duration::from_millis(100)))))
    };
    let res = tokio::task::spawn_blocking(move || waiter.join().unwrap());
    let res = tokio::time::timeout(GUARD, res)
        .await
        .expect("the waiter off the runtime was timed out")
        .unwrap();
    assert!(timed_out(&res, Duration::from_millis(100)), "{res:?}");
}

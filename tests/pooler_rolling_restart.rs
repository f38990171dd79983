//! A pooler restarted one process at a time, as PgBouncer's docs describe: two processes
//! share a port (`so_reuseport`), the old one is sent SIGTERM (since 1.23 its `SHUTDOWN
//! WAIT_FOR_CLIENTS`: it closes its listening socket and exits once its last client has
//! gone), and clients are to reconnect to the new one. A pool with `max_lifetime` moves
//! over as its sessions come back, without a failed statement, and the old process exits.
//! The processes are copies of the PgBouncer 1.25.2 `scripts/test` builds, on a free port.
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use session_pool::{Database, FixedSizePool, PoolOptions};

/// A PgBouncer process of the test's own, on `port`, with `so_reuseport`; stopped on drop.
struct Bouncer {
    dir: PathBuf,
}

impl Bouncer {
    /// Starts one more process from the build in `from` (its binary and `pgbouncer.ini`).
    fn start(from: &Path, name: &str, port: u16) -> Bouncer {
        let dir = std::env::temp_dir().join(format!("{}-{name}", common::unique("pgb")));
        std::fs::create_dir_all(&dir).unwrap();
        let ini = std::fs::read_to_string(from.join("pgbouncer.ini")).unwrap();
        let ini: String = ini
            .lines()
            .map(|line| match line.split_once(" = ") {
                Some(("listen_port", _)) => format!("listen_port = {port}\nso_reuseport = 1"),
                Some(("logfile", _)) => format!("logfile = {}", dir.join("log").display()),
                Some(("pidfile", _)) => format!("pidfile = {}", dir.join("pid").display()),
                _ => line.to_owned(),
            })
            .map(|line| line + "\n")
            .collect();
        std::fs::write(dir.join("pgbouncer.ini"), ini).unwrap();
        let root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
        let mut cmd = if root {
            // PgBouncer refuses to run as root; the server's owner runs it, as scripts/test does.
            std::os::unix::fs::chown(&dir, Some(uid_of("postgres")), None).unwrap();
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(from.join("pgbouncer"));
            c
        } else {
            Command::new(from.join("pgbouncer"))
        };
        let status = cmd
            .arg("-d")
            .arg(dir.join("pgbouncer.ini"))
            .status()
            .unwrap();
        assert!(status.success(), "pgbouncer {name} did not start");
        let bouncer = Bouncer { dir };
        for _ in 0..100 {
            if bouncer.pid().is_some() && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            {
                return bouncer;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("pgbouncer {name} is not listening on {port}");
    }

    fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.join("pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Whether the process is still there: its pid runs this process's configuration (a
    /// pid taken over by another process is not it).
    fn running(&self) -> bool {
        let ini = self.dir.join("pgbouncer.ini");
        self.pid().is_some_and(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
                String::from_utf8_lossy(&cmdline).contains(&*ini.to_string_lossy())
            })
        })
    }

    fn signal(&self, signal: &str) {
        if let Some(pid) = self.pid().filter(|_| self.running()) {
            let _ = Command::new("kill")
                .args([signal, &pid.to_string()])
                .status();
        }
    }
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        self.signal("-KILL");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn uid_of(user: &str) -> u32 {
    let out = Command::new("id").args(["-u", user]).output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_with_a_lifetime_moves_to_the_new_process_and_the_old_one_exits() {
    let Some(from) = std::env::var_os("SESSION_POOL_PGB_CURRENT_DIR") else {
        assert!(
            !common::in_ci(),
            "CI=true but SESSION_POOL_PGB_CURRENT_DIR is not set: run the tests with \
             scripts/test, which builds the current PgBouncer"
        );
        eprintln!("skipping: set SESSION_POOL_PGB_CURRENT_DIR (scripts/test does)");
        return;
    };
    let from = PathBuf::from(from);
    let port = free_port();
    let old = Bouncer::start(&from, "old", port);
    let db = Database::open(&format!(
        "postgres://postgres@127.0.0.1:{port}/postgres?pgbouncer=true"
    ))
    .await
    .unwrap();
    // Every session on the old process: the new one is not there yet.
    let pool = FixedSizePool::builder()
        .size(4)
        .pool(PoolOptions::default().max_lifetime(Duration::from_millis(300)))
        .build(&db)
        .await
        .unwrap();
    let new = Bouncer::start(&from, "new", port);
    old.signal("-TERM");

    // The application goes on working; the old process waits for its clients to go.
    let mut statements = 0;
    for _ in 0..400 {
        if !old.running() {
            break;
        }
        let mut s = pool.session().await.unwrap();
        let n: i64 = common::scalar(&mut *s, "SELECT 1", &[]).await;
        assert_eq!(n, 1);
        statements += 1;
        drop(s);
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        !old.running(),
        "the old process still has clients after {statements} statements: {:?}",
        pool.stats()
    );
    assert!(pool.stats().deleted >= 4, "{:?}", pool.stats());
    assert!(new.running());
    // The pool works on the new process.
    let mut s = pool.session().await.unwrap();
    assert_eq!(common::scalar::<i64>(&mut *s, "SELECT 2", &[]).await, 2);
}

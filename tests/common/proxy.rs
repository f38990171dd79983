//! A loopback TCP proxy in front of the test server that can freeze: while frozen it
//! accepts connections and reads what clients send but forwards nothing either way, as a
//! hung network or a stalled server does.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A running proxy; it stops accepting when dropped.
pub struct Proxy {
    /// `host:port` clients connect to.
    pub addr: String,
    frozen: Arc<AtomicBool>,
    stall_new: Arc<AtomicBool>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// A proxy in front of `upstream` (`host:port`), forwarding.
    pub async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let frozen = Arc::new(AtomicBool::new(false));
        let stall_new = Arc::new(AtomicBool::new(false));
        let (f, stall) = (frozen.clone(), stall_new.clone());
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (f, stall, upstream) = (f.clone(), stall.clone(), upstream.clone());
                tokio::spawn(async move {
                    // A frozen proxy does not even reach the server.
                    while f.load(Ordering::SeqCst) || stall.load(Ordering::SeqCst) {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    let Ok(server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    tokio::spawn(pipe(cr, sw, f.clone()));
                    tokio::spawn(pipe(sr, cw, f));
                });
            }
        });
        Proxy {
            addr,
            frozen,
            stall_new,
            accept,
        }
    }

    /// A PostgreSQL URL like `url` whose host and port are the proxy's.
    pub fn url_for(&self, url: &str) -> String {
        let (scheme, rest) = url.split_once("://").expect("a URL");
        let (userinfo, hostpath) = match rest.rsplit_once('@') {
            Some((u, h)) => (format!("{u}@"), h),
            None => (String::new(), rest),
        };
        let path = hostpath.find('/').map_or("", |i| &hostpath[i..]);
        format!("{scheme}://{userinfo}{}{path}", self.addr)
    }

    /// Stops forwarding, both ways, for every connection (and new ones).
    pub fn freeze(&self) {
        self.frozen.store(true, Ordering::SeqCst);
    }

    /// Forwards again.
    pub fn thaw(&self) {
        self.frozen.store(false, Ordering::SeqCst);
    }

    /// Holds new connections (they are accepted but reach nothing, as when the server has
    /// no connection to spare), while those open go on forwarding; `false` lets them through.
    pub fn stall_new(&self, stall: bool) {
        self.stall_new.store(stall, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.frozen.store(false, Ordering::SeqCst);
        self.stall_new.store(false, Ordering::SeqCst);
        self.accept.abort();
    }
}

/// Copies `from` to `to`, holding what it read while frozen.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    frozen: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        while frozen.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// `host:port` of a PostgreSQL URL.
pub fn upstream_of(url: &str) -> String {
    let rest = url.split_once("://").expect("a URL").1;
    let hostpath = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let end = hostpath.find(['/', '?']).unwrap_or(hostpath.len());
    hostpath[..end].to_owned()
}

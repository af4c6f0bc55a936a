//! The HTTP listener, hardened against slow and idle clients: a client must send its request
//! headers within `http.header_read_timeout_ms`; a connection silent for `http.idle_timeout_ms`
//! between requests is closed; open connections are capped in total and per address (and below
//! the process's open-file limit), and a connection over the cap gets an immediate `503` instead
//! of holding a file descriptor the daemon needs for NATS and for everyone else.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;
use tracing::{debug, info, warn};

use crate::config::HttpConfig;

/// File descriptors kept free of HTTP connections, for NATS, mail servers and files.
const RESERVED_FDS: u64 = 64;

/// Connections open now, process-wide (one listener per process).
static OPEN: AtomicU64 = AtomicU64::new(0);
/// Connections answered `503` for being over a cap, since start.
static REFUSED: AtomicU64 = AtomicU64::new(0);
/// Connections closed for not sending their headers in time or staying silent, since start.
static IDLE_CLOSED: AtomicU64 = AtomicU64::new(0);

/// The listener's counters in Prometheus text format, for `/metrics`.
pub fn exposition() -> String {
    format!(
        "# HELP switchboard_http_connections_open HTTP connections open now (WebSockets included).\n\
         # TYPE switchboard_http_connections_open gauge\n\
         switchboard_http_connections_open {}\n\
         # HELP switchboard_http_connections_refused Connections answered 503 for being over http.max_connections or http.max_connections_per_ip.\n\
         # TYPE switchboard_http_connections_refused counter\n\
         switchboard_http_connections_refused_total {}\n\
         # HELP switchboard_http_connections_idle_closed Connections closed after http.idle_timeout_ms of silence between requests.\n\
         # TYPE switchboard_http_connections_idle_closed counter\n\
         switchboard_http_connections_idle_closed_total {}\n",
        OPEN.load(Ordering::Relaxed),
        REFUSED.load(Ordering::Relaxed),
        IDLE_CLOSED.load(Ordering::Relaxed),
    )
}

/// Connection limits in force, after fitting them to the open-file limit.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Open connections in total.
    pub max_connections: usize,
    /// Open connections from one IP address.
    pub max_per_ip: usize,
    /// Time a client has to send a request's headers.
    pub header_read_timeout: Duration,
    /// Time a connection may stay silent between requests.
    pub idle_timeout: Duration,
}

impl Limits {
    /// The configured limits, `max_connections` lowered (with a warning) so connections alone
    /// cannot use up the process's open-file limit.
    pub fn from_config(cfg: &HttpConfig) -> Limits {
        let mut max_connections = cfg.max_connections;
        if let Some(nofile) = open_file_limit() {
            let fits = nofile.saturating_sub(RESERVED_FDS).max(nofile / 4) as usize;
            if fits < max_connections {
                warn!(
                    configured = max_connections,
                    open_file_limit = nofile,
                    using = fits,
                    "http.max_connections lowered to fit the open-file limit (raise LimitNOFILE / ulimit -n)"
                );
                max_connections = fits;
            }
        }
        Limits {
            max_connections,
            max_per_ip: cfg.max_connections_per_ip.min(max_connections),
            header_read_timeout: Duration::from_millis(cfg.header_read_timeout_ms),
            idle_timeout: Duration::from_millis(cfg.idle_timeout_ms),
        }
    }
}

/// The soft open-file limit of this process (Linux: `/proc/self/limits`).
fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Open connections, in total and per address.
#[derive(Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// A connection's place under the caps; given back when the connection (or the WebSocket it
/// became) is dropped.
struct Slot {
    counts: Arc<Mutex<Counts>>,
    ip: IpAddr,
}

impl Slot {
    fn take(counts: &Arc<Mutex<Counts>>, ip: IpAddr, limits: &Limits) -> Option<Slot> {
        let mut c = counts.lock().unwrap_or_else(|e| e.into_inner());
        let mine = c.per_ip.get(&ip).copied().unwrap_or(0);
        if c.total >= limits.max_connections || mine >= limits.max_per_ip {
            return None;
        }
        c.total += 1;
        *c.per_ip.entry(ip).or_default() += 1;
        OPEN.fetch_add(1, Ordering::Relaxed);
        Some(Slot { counts: counts.clone(), ip })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        c.total = c.total.saturating_sub(1);
        OPEN.fetch_sub(1, Ordering::Relaxed);
        if let Some(n) = c.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                c.per_ip.remove(&self.ip);
            }
        }
    }
}

/// The TCP stream with the time of its last byte in or out, and its slot under the caps.
struct Tracked {
    stream: TcpStream,
    last: Arc<AtomicU64>,
    born: Instant,
    _slot: Slot,
}

impl Tracked {
    fn touch(&self) {
        self.last.store(self.born.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

impl AsyncRead for Tracked {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch();
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The answer to a connection over a cap, written before closing it.
const OVER_CAPACITY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: 51\r\n\r\n{\"error\":\"too many open connections; retry shortly\"}";

/// Serves `app` on `listener` until `shutdown`, then lets open requests finish.
pub async fn serve(listener: TcpListener, app: Router, limits: Limits, shutdown: CancellationToken) -> io::Result<()> {
    info!(
        max_connections = limits.max_connections,
        max_per_ip = limits.max_per_ip,
        header_read_timeout_ms = limits.header_read_timeout.as_millis() as u64,
        idle_timeout_ms = limits.idle_timeout.as_millis() as u64,
        "HTTP connection limits"
    );
    let counts: Arc<Mutex<Counts>> = Arc::default();
    let tracker = TaskTracker::new();
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of descriptors or a connection reset before accept: wait a moment
                    // rather than spin, and keep serving the connections already open.
                    warn!(error = %e, "accepting an HTTP connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Some(slot) = Slot::take(&counts, peer.ip(), &limits) else {
            let n = REFUSED.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                warn!(
                    refused_total = n,
                    "HTTP connection refused: too many open connections (total or from one address)"
                );
            }
            tracker.spawn(refuse(stream));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let born = Instant::now();
        let io = Tracked { stream, last: Arc::new(AtomicU64::new(0)), born, _slot: slot };
        tracker.spawn(connection(io, peer, app.clone(), limits, shutdown.clone()));
    }
    tracker.close();
    tracker.wait().await;
    Ok(())
}

/// Answers `503` to a connection over a cap and closes it, without waiting on a slow reader.
async fn refuse(mut stream: TcpStream) {
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(OVER_CAPACITY).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// Serves one connection; closes it when it stays silent for the idle timeout between requests.
async fn connection(io: Tracked, peer: SocketAddr, app: Router, limits: Limits, shutdown: CancellationToken) {
    let (last, born) = (io.last.clone(), io.born);
    let service = TowerToHyperService::new(app.map_request(move |mut req: hyper::Request<Incoming>| {
        // The peer address feeds per-IP limits (web chat) through `ConnectInfo`.
        req.extensions_mut().insert(ConnectInfo(peer));
        req.map(axum::body::Body::new)
    }));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout).keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(io), service).with_upgrades();
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        let silent_for = born.elapsed().saturating_sub(Duration::from_millis(last.load(Ordering::Relaxed)));
        let wake = limits.idle_timeout.saturating_sub(silent_for).max(Duration::from_millis(50));
        tokio::select! {
            served = conn.as_mut() => {
                if let Err(e) = served {
                    debug!(error = %e, "HTTP connection ended with an error");
                }
                break;
            }
            _ = tokio::time::sleep(wake), if !closing => {
                let silent_for = born.elapsed().saturating_sub(Duration::from_millis(last.load(Ordering::Relaxed)));
                if silent_for >= limits.idle_timeout {
                    // Closes at once when no request is in flight, after its response otherwise.
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                    IDLE_CLOSED.fetch_add(1, Ordering::Relaxed);
                }
            }
            _ = shutdown.cancelled(), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
        }
    }
}

//! The HTTP accept loop: connection-level defences `axum::serve` does not offer.
//!
//! - **Header-read timeout**: once a connection has sent the first byte of a request head,
//!   the whole head must arrive within `header_read_timeout_ms` (slowloris).
//! - **Idle timeout**: a keep-alive connection with no request in flight and no traffic
//!   for `idle_timeout_secs` is closed (this also bounds a client that stops reading).
//! - **Connection cap**: at most `max_connections` open connections. A new connection at
//!   the cap evicts the connection that has been idle longest (no request in flight), so
//!   idle sockets can never lock out a real request; if every connection is busy the new
//!   one gets a 503 and is closed. Running out of file descriptors evicts the same way.
//! - **Bounded shutdown**: on shutdown the listener first accepts what is already in its
//!   backlog (those clients have sent their requests), then closes. Every response from
//!   then on carries `Connection: close`; a connection that has been quiet for a moment
//!   with nothing in flight is closed; whatever is left after `shutdown_grace_secs`
//!   (e.g. a partial header that never completes) is dropped.
//!
//! hyper's own `header_read_timeout` also runs while a keep-alive connection waits for its
//! next request, which would make the idle timeout meaningless, so both are timed here
//! from what the socket and the service see.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderValue, Request, Response};
use futures_util::FutureExt;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;
use tower::ServiceExt;

use super::ServerSection;

pub const CONNECTIONS_OPEN: &str = "echopilot_http_connections_open";
pub const CONNECTIONS_CLOSED: &str = "echopilot_http_connections_closed_total";

/// How long a connection must be quiet, with nothing in flight, before shutdown closes
/// it: a request already on the wire when shutdown began still gets read and answered.
const DRAIN_QUIET: Duration = Duration::from_millis(250);

/// Why the server closed a connection (the `reason` label of [`CONNECTIONS_CLOSED`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    HeaderTimeout,
    IdleTimeout,
    Evicted,
    Rejected,
    Drained,
    ForcedAtShutdown,
}

impl CloseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::HeaderTimeout => "header_timeout",
            CloseReason::IdleTimeout => "idle_timeout",
            CloseReason::Evicted => "evicted",
            CloseReason::Rejected => "rejected",
            CloseReason::Drained => "drained",
            CloseReason::ForcedAtShutdown => "forced_at_shutdown",
        }
    }
}

/// Process-wide connection counters (also in the status summary).
#[derive(Default)]
pub struct ConnStats {
    pub open: AtomicUsize,
    pub accepted: AtomicU64,
    pub header_timeouts: AtomicU64,
    pub idle_timeouts: AtomicU64,
    pub evicted: AtomicU64,
    pub rejected: AtomicU64,
    pub forced_at_shutdown: AtomicU64,
}

pub fn stats() -> &'static ConnStats {
    static STATS: OnceLock<ConnStats> = OnceLock::new();
    STATS.get_or_init(ConnStats::default)
}

fn count_close(reason: CloseReason) {
    let s = stats();
    let c = match reason {
        CloseReason::HeaderTimeout => &s.header_timeouts,
        CloseReason::IdleTimeout => &s.idle_timeouts,
        CloseReason::Evicted => &s.evicted,
        CloseReason::Rejected => &s.rejected,
        CloseReason::ForcedAtShutdown => &s.forced_at_shutdown,
        CloseReason::Drained => {
            metrics::counter!(CONNECTIONS_CLOSED, "reason" => reason.as_str()).increment(1);
            return;
        }
    };
    c.fetch_add(1, Ordering::Relaxed);
    metrics::counter!(CONNECTIONS_CLOSED, "reason" => reason.as_str()).increment(1);
}

/// Milliseconds since a process-wide origin (monotonic; 0 is never a real reading).
fn now_ms() -> u64 {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

/// What the watchdog of one connection needs to know, updated by its socket and service.
struct ConnState {
    id: u64,
    in_flight: AtomicUsize,
    /// When the first byte of the pending request head arrived (0: none pending).
    head_started: AtomicU64,
    /// Last time bytes moved either way, or a request finished.
    last_activity: AtomicU64,
    evict: AtomicBool,
    /// Wakes the watchdog when the state changes in a way that moves its deadline.
    changed: Notify,
}

impl ConnState {
    fn new(id: u64) -> Self {
        ConnState {
            id,
            in_flight: AtomicUsize::new(0),
            head_started: AtomicU64::new(0),
            last_activity: AtomicU64::new(now_ms()),
            evict: AtomicBool::new(false),
            changed: Notify::new(),
        }
    }

    fn idle(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
    }

    fn on_read(&self, n: usize) {
        if n == 0 {
            return;
        }
        let now = now_ms();
        self.last_activity.store(now, Ordering::Relaxed);
        if self.idle() && self.head_started.load(Ordering::Relaxed) == 0 {
            self.head_started.store(now, Ordering::Relaxed);
            self.changed.notify_one();
        }
    }

    fn on_write(&self, n: usize) {
        if n > 0 {
            self.last_activity.store(now_ms(), Ordering::Relaxed);
        }
    }
}

/// Marks a request in flight for as long as it lives (also when the client goes away).
struct InFlight(Arc<ConnState>);

impl InFlight {
    fn begin(conn: &Arc<ConnState>) -> Self {
        conn.in_flight.fetch_add(1, Ordering::AcqRel);
        conn.head_started.store(0, Ordering::Relaxed);
        InFlight(conn.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.last_activity.store(now_ms(), Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.0.changed.notify_one();
    }
}

/// The socket, reporting traffic to the connection's state.
struct Watched {
    io: TcpStream,
    conn: Arc<ConnState>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = r {
            self.conn.on_read(buf.filled().len() - before);
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = r {
            self.conn.on_write(n);
        }
        r
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = r {
            self.conn.on_write(n);
        }
        r
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Open connections, for eviction at the cap.
#[derive(Default)]
struct Registry {
    conns: Mutex<HashMap<u64, Arc<ConnState>>>,
}

impl Registry {
    fn len(&self) -> usize {
        self.conns.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn insert(&self, c: Arc<ConnState>) {
        self.conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(c.id, c);
        let open = stats().open.fetch_add(1, Ordering::Relaxed) + 1;
        metrics::gauge!(CONNECTIONS_OPEN).set(open as f64);
    }

    fn remove(&self, id: u64) {
        self.conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        let open = stats()
            .open
            .fetch_sub(1, Ordering::Relaxed)
            .saturating_sub(1);
        metrics::gauge!(CONNECTIONS_OPEN).set(open as f64);
    }

    /// Ask the connection idle the longest (nothing in flight) to close. False when every
    /// connection is busy.
    fn evict_one(&self) -> bool {
        let conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        let victim = conns
            .values()
            .filter(|c| c.idle() && !c.evict.load(Ordering::Relaxed))
            .min_by_key(|c| c.last_activity.load(Ordering::Relaxed));
        match victim {
            Some(c) => {
                c.evict.store(true, Ordering::Relaxed);
                c.changed.notify_one();
                true
            }
            None => false,
        }
    }
}

/// Removes a connection from the registry when its task ends, however it ends.
struct Registered<'a>(&'a Registry, u64);

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.0.remove(self.1);
    }
}

/// Wait until the connection must be closed, and say why.
async fn watchdog(
    conn: &ConnState,
    limits: &ServerSection,
    mut draining: watch::Receiver<bool>,
) -> CloseReason {
    let header = limits.header_read_timeout_ms;
    let idle = limits.idle_timeout_secs * 1000;
    loop {
        if conn.evict.load(Ordering::Relaxed) {
            return CloseReason::Evicted;
        }
        let now = now_ms();
        let is_draining = *draining.borrow();
        let head = conn.head_started.load(Ordering::Relaxed);
        let last = conn.last_activity.load(Ordering::Relaxed);
        // The next moment something can be due; a state change wakes us earlier.
        let due = if !conn.idle() {
            now + idle
        } else if head != 0 {
            if now >= head + header {
                return CloseReason::HeaderTimeout;
            }
            head + header
        } else if is_draining {
            let quiet = DRAIN_QUIET.as_millis() as u64;
            if now >= last + quiet {
                return CloseReason::Drained;
            }
            last + quiet
        } else {
            if now >= last + idle {
                return CloseReason::IdleTimeout;
            }
            last + idle
        };
        let wait = Duration::from_millis(due.saturating_sub(now).max(1));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = conn.changed.notified() => {}
            r = draining.changed(), if !is_draining => {
                if r.is_err() {
                    // The accept loop is gone: treat as draining from now on.
                    return CloseReason::Drained;
                }
            }
        }
    }
}

/// Serve one connection until it closes or its watchdog closes it.
async fn serve_conn<S>(
    stream: TcpStream,
    peer: SocketAddr,
    conn: Arc<ConnState>,
    app: S,
    limits: Arc<ServerSection>,
    draining: watch::Receiver<bool>,
) where
    S: tower::Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    let _ = stream.set_nodelay(true);
    let io = TokioIo::new(Watched {
        io: stream,
        conn: conn.clone(),
    });
    let svc_conn = conn.clone();
    let svc_draining = draining.clone();
    let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
        let app = app.clone();
        let guard = InFlight::begin(&svc_conn);
        let draining = svc_draining.clone();
        async move {
            let mut req = req.map(Body::new);
            req.extensions_mut().insert(ConnectInfo(peer));
            let mut resp = app.oneshot(req).await?;
            if *draining.borrow() {
                // hyper closes the connection after a response that says so.
                resp.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            drop(guard);
            Ok::<_, Infallible>(resp)
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .keep_alive(!*draining.borrow())
        .header_read_timeout(None);
    let http = builder.serve_connection(io, service);
    tokio::pin!(http);
    let dog = watchdog(&conn, &limits, draining);
    tokio::pin!(dog);
    tokio::select! {
        _ = http.as_mut() => return,
        reason = &mut dog => {
            count_close(reason);
            if reason != CloseReason::Drained {
                // Dropping the connection closes the socket.
                return;
            }
        }
    }
    // Drained: let hyper finish whatever it is writing; the grace period bounds this.
    http.as_mut().graceful_shutdown();
    let _ = http.await;
}

/// Answer a connection refused at the cap with a minimal 503 and close it.
fn reject(stream: TcpStream) {
    count_close(CloseReason::Rejected);
    let body = r#"{"type":"about:blank","title":"Service Unavailable","status":503,"detail":"too many open connections, try again","instance":"/"}"#;
    let resp = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/problem+json\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.try_write(resp.as_bytes());
}

fn out_of_fds(e: &io::Error) -> bool {
    // EMFILE (24) and ENFILE (23) on Linux and the BSDs.
    matches!(e.raw_os_error(), Some(23) | Some(24))
}

/// Accept and serve until `shutdown` flips, then drain within the grace period.
pub async fn serve<S>(
    listener: TcpListener,
    app: S,
    limits: ServerSection,
    mut shutdown: watch::Receiver<bool>,
) -> io::Result<()>
where
    S: tower::Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    let limits = Arc::new(limits);
    let registry = Arc::new(Registry::default());
    let (drain_tx, drain_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut next_id = 0u64;
    let mut admit = |stream: TcpStream, peer: SocketAddr, tasks: &mut JoinSet<()>| {
        if registry.len() >= limits.max_connections as usize && !registry.evict_one() {
            reject(stream);
            return;
        }
        next_id += 1;
        stats().accepted.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(ConnState::new(next_id));
        registry.insert(conn.clone());
        let (registry, app, limits, draining) = (
            registry.clone(),
            app.clone(),
            limits.clone(),
            drain_rx.clone(),
        );
        tasks.spawn(async move {
            let _registered = Registered(&registry, conn.id);
            serve_conn(stream, peer, conn, app, limits, draining).await;
        });
    };
    loop {
        tokio::select! {
            _ = async { let _ = shutdown.wait_for(|stop| *stop).await; } => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => admit(stream, peer, &mut tasks),
                Err(e) if out_of_fds(&e) => {
                    // Free a descriptor by closing the longest-idle connection.
                    registry.evict_one();
                    tracing::warn!(target: "server", error = %e, "out of file descriptors; evicting an idle connection");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                // ECONNABORTED and friends: that client is gone, keep accepting.
                Err(e) => {
                    tracing::debug!(target: "server", error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            },
        }
        while tasks.try_join_next().is_some() {}
    }
    // Clients in the backlog have connected and likely sent their request: serve them.
    while let Some(Ok((stream, peer))) = listener.accept().now_or_never() {
        admit(stream, peer, &mut tasks);
    }
    drop(listener);
    let _ = drain_tx.send(true);
    let grace = Duration::from_secs(limits.shutdown_grace_secs);
    let all_closed = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(grace, all_closed).await.is_err() {
        let left = tasks.len();
        for _ in 0..left {
            count_close(CloseReason::ForcedAtShutdown);
        }
        tracing::warn!(target: "server", connections = left, grace_secs = limits.shutdown_grace_secs,
            "connections still open after the shutdown grace period; closing them");
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }
    Ok(())
}

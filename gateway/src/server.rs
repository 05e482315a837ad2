//! The listener: accepts TCP (optionally TLS) connections, serves the common HTTP/1.1 request
//! through its own fast path ([`h1`]) and everything else (HTTP/2, upgrades, bodies, anything
//! unusual) with hyper-util's `auto` builder, and shuts down gracefully (in-flight requests
//! finish, bounded by `server.shutdown_grace`).
//!
//! Contract:
//! - HTTP/2 is served on TLS (ALPN `h2`) and on cleartext with prior knowledge (h2c); the h2
//!   layer refuses malformed requests (pseudo-header misuse, upper-case or invalid names,
//!   connection-specific headers) with a stream error before any phase runs, bounds the header
//!   list by `server.max_header_bytes`, and cuts off connections that reset streams in bulk
//!   (rapid reset, CVE-2023-44487) or make it reset many malformed ones with
//!   `GOAWAY ENHANCE_YOUR_CALM`;
//! - HTTP/2 extended `CONNECT` (RFC 8441) is enabled so WebSockets work over HTTP/2;
//! - a connection with no request, response body or tunnel open for `server.header_read_timeout`
//!   is shut down gracefully (an idle HTTP/1.1 keep-alive or HTTP/2 connection, one that never
//!   sent its first bytes); one still reading a request head then is closed at most a second
//!   later, without an answer (slow headers: the one header-read timer, not hyper's);
//! - on shutdown the listener closes, open connections finish their requests and open WebSocket
//!   tunnels keep working, all within one `server.shutdown_grace`; tunnels still open then are
//!   closed;
//! - a gateway started from a file (`launch::start`) follows reloads: listeners are added and
//!   removed and the TLS certificate is swapped without touching the listeners that stay
//!   (`listeners`, `tls`).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::activity::{ActiveGuard, Activity, GuardedBody};
use crate::request::tunnel::Tunnels;
use crate::request::{Body, ConnInfo, boxed};
use crate::service::handle;
pub use crate::state::Gateway;

pub(crate) mod h1;
mod listeners;
mod tls;

pub(crate) use listeners::{Changes, Listeners, Wanted};
pub(crate) use tls::ServerTls;

/// Starting a listener failed.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Binding or reading a file failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The TLS certificate or key is unusable.
    #[error("tls: {0}")]
    Tls(String),
    /// The TLS configuration could not be built.
    #[error("tls: {0}")]
    TlsConfig(#[source] rustls::Error),
    /// The config could not be loaded or built.
    #[error("{0}")]
    Config(String),
}

/// Builds a TLS acceptor from PEM `cert` (chain) and `key` files, offering h2 and http/1.1.
pub fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, ServerError> {
    ServerTls::new(Some(tls::load_certified_key(cert, key)?))?
        .acceptor()
        .ok_or_else(|| ServerError::Tls("no certificate".into()))
}

/// Where a listener's TLS comes from: fixed when it was started, or the process's [`ServerTls`]
/// (swapped on reload), read at each accepted connection.
#[derive(Clone)]
pub(crate) enum Tls {
    Fixed(Option<TlsAcceptor>),
    Live(ServerTls),
}

impl Tls {
    fn acceptor(&self) -> Option<TlsAcceptor> {
        match self {
            Tls::Fixed(a) => a.clone(),
            Tls::Live(t) => t.acceptor(),
        }
    }
}

/// Serves `listener` until `shutdown` turns `true`, then stops accepting and waits up to
/// `server.shutdown_grace` for in-flight requests and open WebSocket tunnels, closing the
/// tunnels still open after it.
async fn serve_with(
    gw: Arc<Gateway>,
    listener: TcpListener,
    tls: Tls,
    mut shutdown: watch::Receiver<bool>,
) {
    let connections = TaskTracker::new();
    let closing = CancellationToken::new();
    let tunnels = Tunnels::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        tracing::warn!(error = %crate::error_chain::Chain(&e), "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let tls = tls.acceptor();
                let conn = ConnInfo::new(peer, tls.is_some(), tunnels.clone(), Activity::new());
                connections.spawn(serve_connection(
                    gw.clone(),
                    stream,
                    conn,
                    tls,
                    closing.clone(),
                ));
            }
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    break;
                }
            }
        }
    }
    let addr = listener.local_addr().ok();
    drop(listener);
    let grace = gw.current().config.server.shutdown_grace.get();
    let deadline = tokio::time::Instant::now() + grace;
    tracing::info!(
        addr = addr.map(tracing::field::display),
        connections = connections.len(),
        tunnels = tunnels.open(),
        "shutting down"
    );
    connections.close();
    closing.cancel();
    // Upgraded HTTP/1.1 connections have left hyper (their connection task is done), while an
    // HTTP/2 connection carrying a tunnel waits for it: both waits share the one grace period.
    let (finished, closed) = tokio::join!(
        tokio::time::timeout_at(deadline, connections.wait()),
        tunnels.drain(deadline),
    );
    match finished {
        Ok(()) => tracing::info!("all connections closed"),
        Err(_) => tracing::warn!("shutdown grace period over; closing"),
    }
    if closed > 0 {
        tracing::warn!(
            tunnels = closed,
            "shutdown grace period over; tunnels closed"
        );
    }
}

fn builder(gw: &Gateway) -> auto::Builder<TokioExecutor> {
    let rt = gw.current();
    let server = &rt.config.server;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // Not hyper's own header-read timer: hyper allocates and registers a new one for every
        // request head (~1k instructions and one allocation per request). The connection's
        // watchdog in `serve_io` bounds the same time, from the end of the previous request (or
        // the connection's start) to a complete head.
        .header_read_timeout(None)
        .max_buf_size(server.max_header_bytes.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(server.max_header_bytes).unwrap_or(u32::MAX))
        .enable_connect_protocol()
        // Explicit rather than inherited: streams a client may keep open at once, and how many
        // it may open-and-reset (rapid reset) or make fail before the connection is cut off.
        .max_concurrent_streams(200)
        .max_pending_accept_reset_streams(20)
        .max_local_error_reset_streams(1024);
    builder
}

async fn serve_connection(
    gw: Arc<Gateway>,
    stream: tokio::net::TcpStream,
    conn: ConnInfo,
    tls: Option<TlsAcceptor>,
    closing: CancellationToken,
) {
    match tls {
        None => serve_io(gw, stream, conn, closing).await,
        // Boxed: the connection's task is allocated (and its memory written) whole for as long
        // as the connection is open, so a TLS handshake and stream held inline would make every
        // cleartext connection's task twice as large (8.9 KiB instead of 4.1 in release).
        Some(acceptor) => boxed(|| serve_tls(gw, stream, conn, acceptor, closing)).await,
    }
}

async fn serve_tls(
    gw: Arc<Gateway>,
    stream: tokio::net::TcpStream,
    conn: ConnInfo,
    acceptor: TlsAcceptor,
    closing: CancellationToken,
) {
    let peer = conn.peer;
    let handshake_timeout = gw.current().config.server.header_read_timeout.get();
    match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
        Ok(Ok(s)) => serve_io(gw, s, conn, closing).await,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %crate::error_chain::Chain(&e), "tls handshake failed")
        }
        Err(_) => tracing::debug!(%peer, "tls handshake timed out"),
    }
}

/// One request's future, as hyper's connection holds it. hyper keeps the space for its
/// service's future in an allocation of the connection's own, from the first request until the
/// connection closes; [`handle`]'s state (~5 KiB in release) held there would stay resident on
/// every idle keep-alive connection. Boxed here, it is allocated per request and freed when the
/// response head is ready: one allocation per request for ~7 KiB less per open connection (the
/// 1000-connection figure of `bench/run.sh`).
fn respond(
    gw: Arc<Gateway>,
    conn: Arc<ConnInfo>,
    req: Request<Incoming>,
    guard: ActiveGuard,
) -> impl Future<Output = Result<Response<GuardedBody<Body>>, Infallible>> + Send + 'static {
    let resp = boxed(|| handle(gw, conn, req.map(crate::service::boxed_body)));
    async move {
        let resp = resp.await;
        Ok(resp.map(|b| GuardedBody::new(b, guard)))
    }
}

/// The most a slow request head outlives `server.header_read_timeout` (see [`serve_hyper`]).
const SLOW_HEAD_GRACE: Duration = Duration::from_secs(1);

/// Serves one connection until it ends: through the HTTP/1.1 fast path ([`h1`]) while its
/// requests are common ones, then (from its first unusual request on, HTTP/2 included) through
/// hyper's server ([`serve_hyper`]).
async fn serve_io<S>(gw: Arc<Gateway>, io: S, conn: ConnInfo, closing: CancellationToken)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    // Shared by the connection's requests through an `Arc` of its own: cloning `ConnInfo` per
    // request would clone its listener-wide `CancellationToken`, whose clone and drop each take
    // a lock every connection of the listener shares.
    let conn = Arc::new(conn);
    match h1::serve(&gw, io, &conn, &closing).await {
        h1::Outcome::Done => {}
        // Boxed: hyper's connection state is only allocated for connections that need it.
        h1::Outcome::HandOver(io) => boxed(|| serve_hyper(gw, io, conn, closing)).await,
    }
}

/// Serves one connection with hyper's server until it ends. It is shut down gracefully
/// (in-flight requests finish) when the listener closes, and when nothing has been open on it
/// for `header_read_timeout`: an idle keep-alive or HTTP/2 connection, one that never sent its
/// first bytes, one whose request head is incomplete that long after the previous request ended
/// (also while the listener closes). One that still has nothing open [`SLOW_HEAD_GRACE`] later
/// is dropped.
async fn serve_hyper<S>(gw: Arc<Gateway>, io: S, conn: Arc<ConnInfo>, closing: CancellationToken)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let builder = builder(&gw);
    let idle = gw.current().config.server.header_read_timeout.get();
    let peer = conn.peer;
    let activity = conn.activity.clone();
    let service = {
        let activity = activity.clone();
        service_fn(move |req| respond(gw.clone(), conn.clone(), req, activity.enter()))
    };
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(connection);
    // After the watchdog's graceful shutdown, how long a connection with still nothing open may
    // stay: hyper closes one that is between requests at once, but not one still reading its
    // first request's head (a slow head), which is closed here without an answer.
    let grace = idle.min(SLOW_HEAD_GRACE);
    let mut shutting_down = false;
    let mut idle_closing = false;
    let result = loop {
        tokio::select! {
            r = connection.as_mut() => break r,
            () = closing.cancelled(), if !shutting_down => {
                shutting_down = true;
                connection.as_mut().graceful_shutdown();
            }
            // Also while the listener closes: a slow head must not outlive its bound then.
            () = activity.idle_for(idle), if !idle_closing => {
                idle_closing = true;
                if !shutting_down {
                    shutting_down = true;
                    tracing::debug!(%peer, "closing an idle connection");
                    connection.as_mut().graceful_shutdown();
                }
            }
            () = activity.idle_for(grace), if idle_closing => {
                tracing::debug!(%peer, "closing a connection whose request head did not complete");
                return;
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %crate::error_chain::Chain(&*e), "connection ended with an error");
    }
}

/// A gateway listening on one bound address, with its shutdown switch (for `main` and tests).
#[derive(Debug)]
pub struct Running {
    /// The bound address.
    pub addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Binds `addr` (use port 0 for an ephemeral port) and starts serving `gw` in a task.
    pub async fn start(
        gw: Arc<Gateway>,
        addr: SocketAddr,
        tls: Option<TlsAcceptor>,
    ) -> Result<Running, ServerError> {
        let bound = listeners::bind(addr, "")?;
        Ok(Running::serve(
            gw,
            bound.listener,
            bound.addr,
            Tls::Fixed(tls),
        ))
    }

    /// Serves `gw` on `listener`, bound at `addr`, in a task.
    pub(crate) fn serve(
        gw: Arc<Gateway>,
        listener: TcpListener,
        addr: SocketAddr,
        tls: Tls,
    ) -> Running {
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(serve_with(gw, listener, tls, rx));
        Running {
            addr,
            shutdown: tx,
            task,
        }
    }

    /// Serves the admin endpoints of `gw` on `listener`, bound at `addr`, in a task.
    pub(crate) fn serve_admin(
        gw: Arc<Gateway>,
        listener: TcpListener,
        addr: SocketAddr,
    ) -> Running {
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(crate::admin::serve_admin(gw, listener, rx));
        Running {
            addr,
            shutdown: tx,
            task,
        }
    }

    /// Binds `addr` and serves the admin endpoints (`/metrics`, `/healthz`, `/readyz`) of `gw`.
    pub async fn start_admin(gw: Arc<Gateway>, addr: SocketAddr) -> Result<Running, ServerError> {
        let bound = listeners::bind(addr, "admin ")?;
        Ok(Running::serve_admin(gw, bound.listener, bound.addr))
    }

    /// Stops accepting, lets in-flight requests finish (within the grace period) and returns
    /// when the listener task is done.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

/// Installs the global `tracing` subscriber for `log:` (JSON lines or text on stderr,
/// `log.level` as the filter, overridable with `RUST_LOG`). Does nothing when one is already installed.
pub(crate) fn init_logging(log: &crate::config::LogConfig) {
    init_logging_with(log, None);
}

/// Lines (access log included) the stderr writer may lag behind before new ones are dropped.
///
/// The queue is allocated whole when logging starts (32 bytes a line): 16,384 lines is 0.5 MiB,
/// ~0.4 s of access lines at 40k requests/s.
const LOG_QUEUE_LINES: usize = 16_384;

/// The writer thread of the subscriber [`init_logging_with`] installed, until [`flush_logging`].
static LOG_WRITER: std::sync::Mutex<Option<tracing_appender::non_blocking::WorkerGuard>> =
    std::sync::Mutex::new(None);

/// Counts the lines that writer dropped.
static LOG_DROPPED: std::sync::OnceLock<tracing_appender::non_blocking::ErrorCounter> =
    std::sync::OnceLock::new();

/// Log lines dropped so far because the stderr writer could not keep up
/// (`gateway_log_dropped_total`).
pub(crate) fn log_dropped() -> u64 {
    LOG_DROPPED
        .get()
        .map_or(0, |counter| counter.dropped_lines() as u64)
}

/// As [`init_logging`], with `level` (the CLI's `--log-level`) overriding both `RUST_LOG` and
/// `log.level`. Text lines carry ANSI colours only when stderr is a terminal.
///
/// Contract:
/// - a request task never writes to stderr: a line is formatted on the caller's thread and
///   handed to a writer thread (`log-writer`), which writes batches through one buffer and
///   flushes whenever it has caught up;
/// - when the writer lags [`LOG_QUEUE_LINES`] behind (stderr is a slow or stuck pipe), new
///   lines are dropped and counted (`gateway_log_dropped_total`) rather than stalling the
///   reactor: an access log must never block requests;
/// - [`flush_logging`] writes out what is queued; `launch::run` and `authgate run` call it on
///   exit.
pub(crate) fn init_logging_with(log: &crate::config::LogConfig, level: Option<&str>) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = level
        .and_then(|l| EnvFilter::try_new(l).ok())
        .map_or_else(EnvFilter::try_from_default_env, Ok)
        .or_else(|_| EnvFilter::try_new(&log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    if tracing::dispatcher::has_been_set() {
        return;
    }
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(LOG_QUEUE_LINES)
        .thread_name("log-writer")
        .finish(std::io::BufWriter::with_capacity(
            64 * 1024,
            std::io::stderr(),
        ));
    let dropped = writer.error_counter();
    // stderr: the CLI holds the stdout lock while a command runs.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(writer);
    let installed = match log.format {
        crate::config::LogFormat::Json => builder.json().flatten_event(true).try_init(),
        crate::config::LogFormat::Text => builder
            .event_format(crate::access_log::TextFormat::default())
            .try_init(),
    };
    if installed.is_ok() {
        let _ = LOG_DROPPED.set(dropped);
        if let Ok(mut slot) = LOG_WRITER.lock() {
            *slot = Some(guard);
        }
    }
}

/// Writes out every queued log line and stops the writer thread of [`init_logging_with`]
/// (waiting at most about a second); lines logged afterwards are dropped and counted. Call it
/// once, when the process is about to exit. Does nothing when that subscriber is not installed.
pub(crate) fn flush_logging() {
    let guard = LOG_WRITER.lock().ok().and_then(|mut slot| slot.take());
    drop(guard);
}

/// Resolves on SIGTERM or SIGINT. The handlers are installed when this is called (not when the
/// future is first polled), so call it before the listeners accept anything; must be called
/// within a Tokio runtime.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {},
                        _ = int.recv() => {},
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async move {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The size of what `f` returns (here: a future's state), without calling it.
    fn returned3<F: FnOnce(A, B, C) -> R, A, B, C, R>(_: F) -> usize {
        size_of::<R>()
    }
    fn returned4<F: FnOnce(A, B, C, D) -> R, A, B, C, D, R>(_: F) -> usize {
        size_of::<R>()
    }
    fn returned5<F: FnOnce(A, B, C, D, E) -> R, A, B, C, D, E, R>(_: F) -> usize {
        size_of::<R>()
    }

    /// What an idle keep-alive connection keeps allocated: its task (the whole future, written
    /// when spawned) and hyper's slot for the service's future. Neither may hold a TLS stream on
    /// a cleartext connection, nor a request's state between requests.
    #[test]
    fn an_open_connection_holds_neither_tls_state_nor_a_request_state() {
        let task = returned5(serve_connection);
        let cleartext = returned4(serve_io::<tokio::net::TcpStream>);
        let tls = returned5(serve_tls);
        assert!(
            tls > cleartext && task < cleartext + 256,
            "connection task {task} bytes, cleartext serving {cleartext}, TLS serving {tls}"
        );
        let request = returned4(respond);
        let handled = returned3(handle);
        assert!(
            request <= 128 && handled > 1024,
            "the request future hyper holds is {request} bytes, the request's state {handled}"
        );
    }
}

//! The upstream connection pool: keep-alive HTTP/1.1 connections to `upstream.url`, shared by
//! every request of one config version.
//!
//! Contract:
//! - a request takes an idle connection (the most recently used one first) or opens a new one
//!   (`upstream.connect_timeout` per address tried), and gives it back when the response body
//!   has been read to its end, never earlier: a connection carries one exchange at a time;
//! - a connection whose response was abandoned (client gone, timeout), that failed, that was
//!   upgraded (WebSocket) or that the upstream closed is never reused;
//! - a request that could not be written at all on a reused connection (the upstream closed it
//!   while it sat idle) is retried once on a new one; a request that may have reached the
//!   upstream is never retried;
//! - idle connections are dropped after `IDLE_TIMEOUT`, and at most `MAX_IDLE` are kept;
//! - a `GET`/`HEAD` without a body or upgrade (most requests) takes the common exchange of
//!   [`upstream_h1`] on connections of its own (no hyper task per connection); an idle one is
//!   reused only if the upstream has neither closed it nor sent anything on it since, and one
//!   found closed before any answer is replaced once by a new connection.
//!
//! hyper-util's legacy client does the same job generically; on the proxy's hot path it costs a
//! spawned task, a oneshot channel and a keyed pool lookup per request (it re-pools a
//! connection from a task that waits for it to become ready). Here the response body itself
//! returns the connection, so a proxied request costs one uncontended lock and no task.
//!
//! The idle connections are kept per thread (one shard per runtime worker, `thread_local`): a
//! connection goes back to the shard of the thread that finished its response, and a request
//! takes from its own thread's shard first, so with several workers no lock or counter is
//! shared between cores on the hot path. Nothing is stranded on a shard: a thread whose shard
//! is empty takes from the others before it opens a connection, every `put` drops its own
//! shard's expired connections, and a shard sweeps the others for expired ones once per
//! `IDLE_TIMEOUT`. `MAX_IDLE` is split evenly among the worker threads.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::{Body as _, Frame, Incoming, SizeHint};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use thread_local::ThreadLocal;

use tokio::net::TcpStream;

use super::upstream_h1::{self, Conn, ExchangeError, Home};
use super::{Body, BoxError};

/// Idle connections older than this are closed rather than reused.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// At most this many idle connections are kept; more are closed when they become idle. Each
/// costs the upstream a connection slot and us ~16 KiB of buffers: a burst of a thousand
/// concurrent requests should not leave a thousand connections open behind it (nginx's
/// `keepalive` directive caps them the same way).
const MAX_IDLE: usize = 256;

/// Why an exchange with the upstream failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UpstreamError {
    /// No connection could be opened (refused, unresolvable, timed out).
    #[error("{0}")]
    Connect(String),
    /// The connection failed during the exchange.
    #[error("{0}")]
    Exchange(String),
}

impl UpstreamError {
    /// Whether no connection could be made at all.
    pub(crate) fn is_connect(&self) -> bool {
        matches!(self, UpstreamError::Connect(_))
    }
}

struct Idle {
    sender: http1::SendRequest<Body>,
    since: Instant,
}

/// The idle connections of one thread, oldest first. Aligned to its own cache lines so that
/// two threads' shards never share one.
#[repr(align(128))]
struct Shard {
    state: Mutex<ShardState>,
}

struct ShardState {
    idle: Vec<Idle>,
    /// Idle connections of the common exchange ([`upstream_h1`]), oldest first.
    raw: Vec<Conn<TcpStream>>,
    /// When this shard last swept the other shards for expired connections.
    swept: Instant,
}

impl Shard {
    fn new() -> Shard {
        Shard {
            state: Mutex::new(ShardState {
                idle: Vec::new(),
                raw: Vec::new(),
                swept: Instant::now(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, ShardState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ShardState {
    /// Drops the connections idle for longer than `IDLE_TIMEOUT` (the oldest, at the front).
    fn drop_expired(&mut self, now: Instant) {
        let fresh = self
            .idle
            .iter()
            .position(|e| now.saturating_duration_since(e.since) <= IDLE_TIMEOUT)
            .unwrap_or(self.idle.len());
        self.idle.drain(..fresh);
        let fresh = self
            .raw
            .iter()
            .position(|c| now.saturating_duration_since(c.since) <= IDLE_TIMEOUT)
            .unwrap_or(self.raw.len());
        self.raw.drain(..fresh);
    }

    /// The most recently used connection of the common exchange, if one is fresh enough (the
    /// caller checks that it is quiet, outside the lock).
    fn pop_raw(&mut self, now: Instant) -> Option<Conn<TcpStream>> {
        let conn = self.raw.pop()?;
        if now.saturating_duration_since(conn.since) > IDLE_TIMEOUT {
            // The newest is too old: so is every older one.
            self.raw.clear();
            return None;
        }
        Some(conn)
    }

    /// The most recently used live connection, if one is fresh enough.
    fn pop(&mut self, now: Instant) -> Option<http1::SendRequest<Body>> {
        while let Some(entry) = self.idle.pop() {
            if entry.sender.is_closed() {
                continue;
            }
            if now.saturating_duration_since(entry.since) > IDLE_TIMEOUT {
                // The newest is too old: so is every older one.
                self.idle.clear();
                return None;
            }
            return Some(entry.sender);
        }
        None
    }
}

struct Shared {
    shards: ThreadLocal<Shard>,
    /// The most idle connections one shard keeps (`MAX_IDLE` split among the workers).
    max_per_shard: usize,
}

impl Shared {
    fn new() -> Shared {
        let workers = std::thread::available_parallelism().map_or(1, usize::from);
        Shared {
            shards: ThreadLocal::with_capacity(workers),
            max_per_shard: (MAX_IDLE / workers).max(1),
        }
    }

    fn put(&self, sender: http1::SendRequest<Body>) {
        if sender.is_closed() {
            return;
        }
        self.put_with(|state, now, max| {
            if state.idle.len() < max {
                state.idle.push(Idle { sender, since: now });
            }
        });
    }

    /// Puts a connection into this thread's shard with `push`, dropping the shard's expired
    /// connections, and once per `IDLE_TIMEOUT` the other shards' too.
    fn put_with(&self, push: impl FnOnce(&mut ShardState, Instant, usize)) {
        let now = Instant::now();
        let own = self.shards.get_or(Shard::new);
        let sweep = {
            let mut state = own.lock();
            state.drop_expired(now);
            push(&mut state, now, self.max_per_shard);
            let sweep = now.saturating_duration_since(state.swept) > IDLE_TIMEOUT;
            if sweep {
                state.swept = now;
            }
            sweep
        };
        if sweep {
            // Shards whose threads stopped proxying would otherwise keep their connections.
            for shard in self.shards.iter() {
                if !std::ptr::eq(shard, own)
                    && let Ok(mut state) = shard.state.try_lock()
                {
                    state.drop_expired(now);
                }
            }
        }
    }

    /// An idle connection of the common exchange: this thread's shard first, then the others';
    /// one the upstream closed, or sent unasked-for bytes on, is dropped.
    fn take_raw(&self) -> Option<Conn<TcpStream>> {
        let now = Instant::now();
        let own = self.shards.get_or(Shard::new);
        loop {
            let conn = own.lock().pop_raw(now).or_else(|| {
                self.shards
                    .iter()
                    .filter(|shard| !std::ptr::eq(*shard, own))
                    .find_map(|shard| shard.lock().pop_raw(now))
            })?;
            if conn.is_quiet() {
                return Some(conn);
            }
        }
    }

    fn take(&self) -> Option<http1::SendRequest<Body>> {
        let now = Instant::now();
        let own = self.shards.get_or(Shard::new);
        if let Some(sender) = own.lock().pop(now) {
            return Some(sender);
        }
        // Another thread's idle connection beats a new one.
        self.shards
            .iter()
            .filter(|shard| !std::ptr::eq(*shard, own))
            .find_map(|shard| shard.lock().pop(now))
    }
}

impl Home<TcpStream> for Arc<Shared> {
    fn rehome(&self, mut conn: Conn<TcpStream>) {
        self.put_with(|state, now, max| {
            if state.raw.len() < max {
                conn.since = now;
                state.raw.push(conn);
            }
        });
    }
}

/// Keep-alive connections to one upstream `host:port`.
#[derive(Clone)]
pub(crate) struct UpstreamPool {
    shared: Arc<Shared>,
    /// `host:port` as `lookup_host` takes it (IPv6 literals keep their brackets).
    address: String,
    connect_timeout: Duration,
}

impl std::fmt::Debug for UpstreamPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamPool")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl UpstreamPool {
    /// A pool for `authority` (port 80 when it has none).
    pub(crate) fn new(authority: &http::uri::Authority, connect_timeout: Duration) -> Self {
        let port = authority.port_u16().unwrap_or(80);
        UpstreamPool {
            shared: Arc::new(Shared::new()),
            address: format!("{}:{port}", authority.host()),
            connect_timeout,
        }
    }

    /// Sends `req` (origin-form URI, `Host` set) and returns the response; its body gives the
    /// connection back to the pool once read to the end.
    pub(crate) async fn send(
        &self,
        mut req: Request<Body>,
    ) -> Result<Response<Body>, UpstreamError> {
        if upstream_h1::eligible(&req) {
            return self.send_common(&req).await;
        }
        let mut reused = true;
        let mut sender = match self.shared.take() {
            Some(s) => s,
            None => {
                reused = false;
                self.connect().await?
            }
        };
        loop {
            // A re-pooled connection may still be finishing the previous exchange's bookkeeping.
            if sender.ready().await.is_err() {
                if !reused {
                    return Err(UpstreamError::Exchange(
                        "upstream closed a new connection".into(),
                    ));
                }
                sender = self.connect().await?;
                reused = false;
                continue;
            }
            match sender.try_send_request(req).await {
                Ok(resp) => return Ok(self.pooled_response(resp, sender)),
                Err(mut e) => match e.take_message() {
                    // Not written: the idle connection had been closed under us; safe to retry.
                    Some(unsent) if reused => {
                        req = unsent;
                        sender = self.connect().await?;
                        reused = false;
                    }
                    _ => {
                        return Err(UpstreamError::Exchange(
                            crate::error_chain::Chain(&e.into_error()).to_string(),
                        ));
                    }
                },
            }
        }
    }

    /// The common exchange ([`upstream_h1`]): a `GET`/`HEAD` without a body. One that found a
    /// reused connection closed before any answer is sent again once, on a new connection
    /// (both methods are idempotent: RFC 9110 9.2.2).
    async fn send_common(&self, req: &Request<Body>) -> Result<Response<Body>, UpstreamError> {
        if let Some(conn) = self.shared.take_raw() {
            match conn.send(req, self.shared.clone()).await {
                Err(ExchangeError::Stale(_)) => {}
                Err(e) => return Err(UpstreamError::Exchange(e.to_string())),
                Ok(resp) => return Ok(resp),
            }
        }
        let conn = Conn::new(self.connect_stream().await?);
        conn.send(req, self.shared.clone())
            .await
            .map_err(|e| UpstreamError::Exchange(e.to_string()))
    }

    fn pooled_response(
        &self,
        resp: Response<Incoming>,
        sender: http1::SendRequest<Body>,
    ) -> Response<Body> {
        let upgraded = resp.status() == http::StatusCode::SWITCHING_PROTOCOLS;
        let (parts, inner) = resp.into_parts();
        let mut body = PooledBody {
            inner,
            home: (!upgraded).then(|| (sender, self.shared.clone())),
        };
        if body.inner.is_end_stream() {
            body.go_home();
        }
        Response::from_parts(parts, Body::new(body))
    }

    async fn connect(&self) -> Result<http1::SendRequest<Body>, UpstreamError> {
        let stream = self.connect_stream().await?;
        let addr = stream
            .peer_addr()
            .map_or_else(|_| self.address.clone(), |a| a.to_string());
        let (sender, conn) = http1::Builder::new()
            .handshake::<_, Body>(TokioIo::new(stream))
            .await
            .map_err(|e| {
                UpstreamError::Connect(format!("{addr}: {}", crate::error_chain::Chain(&e)))
            })?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %crate::error_chain::Chain(&e), "upstream connection ended with an error");
            }
        });
        Ok(sender)
    }

    /// A new TCP connection to the upstream (each resolved address tried in turn).
    async fn connect_stream(&self) -> Result<TcpStream, UpstreamError> {
        let addrs = tokio::net::lookup_host(self.address.as_str())
            .await
            .map_err(|e| UpstreamError::Connect(format!("resolving {}: {e}", self.address)))?;
        let mut last = format!("{} resolved to no address", self.address);
        for addr in addrs {
            let stream = match tokio::time::timeout(
                self.connect_timeout,
                tokio::net::TcpStream::connect(addr),
            )
            .await
            {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    last = format!("connecting to {addr}: {e}");
                    continue;
                }
                Err(_) => {
                    last = format!(
                        "connecting to {addr}: no answer within {}",
                        humantime::format_duration(self.connect_timeout)
                    );
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            return Ok(stream);
        }
        Err(UpstreamError::Connect(last))
    }
}

/// A response body that returns its connection to the pool when it has been read to the end.
struct PooledBody {
    inner: Incoming,
    home: Option<(http1::SendRequest<Body>, Arc<Shared>)>,
}

impl PooledBody {
    fn go_home(&mut self) {
        let Some((mut sender, shared)) = self.home.take() else {
            return;
        };
        if sender.is_ready() {
            shared.put(sender);
            return;
        }
        // Usually ready by now; it is not while the request body is still being written (the
        // upstream answered early), and a connection must not be pooled in that state, or the
        // next request would wait behind that upload.
        tokio::spawn(async move {
            if sender.ready().await.is_ok() {
                shared.put(sender);
            }
        });
    }
}

impl hyper::body::Body for PooledBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => self.go_home(),
            // The server stops polling once `is_end_stream` says so: re-pool on the last frame.
            Poll::Ready(Some(Ok(_))) if self.inner.is_end_stream() => self.go_home(),
            Poll::Ready(Some(Err(_))) => self.home = None,
            _ => {}
        }
        polled.map(|f| f.map(|r| r.map_err(|e| Box::new(e) as BoxError)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

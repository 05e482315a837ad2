//! The one per-request context every phase reads and writes (pingora style): facts about the
//! connection, what sanitize and route decided, who identify found, and what the log line needs.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use auth_core::{TraceStep, User};
use http::{HeaderValue, Method};

use super::route::RouteDecision;

/// How the user was identified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdentitySource {
    /// The session cookie.
    Session,
    /// `Authorization: Basic`.
    Basic,
    /// `Authorization: Bearer`.
    Bearer,
    /// An API key in a `login.api_key_headers` header.
    ApiKey,
}

impl IdentitySource {
    /// Label for logs.
    pub(crate) fn label(self) -> &'static str {
        match self {
            IdentitySource::Session => "session",
            IdentitySource::Basic => "basic",
            IdentitySource::Bearer => "bearer",
            IdentitySource::ApiKey => "api_key",
        }
    }
}

/// Forwarding headers the client sent, captured before sanitize drops them; believed only when
/// the peer is a trusted proxy.
#[derive(Debug, Clone, Default)]
pub(crate) struct IncomingForwarding {
    /// `X-Forwarded-For`, all values joined with `,`.
    pub(crate) xff: Option<String>,
    /// `X-Forwarded-Proto`.
    pub(crate) proto: Option<String>,
    /// `X-Forwarded-Host`.
    pub(crate) host: Option<String>,
    /// `X-Original-URI` or `X-Forwarded-Uri` (forward-auth).
    pub(crate) uri: Option<String>,
    /// Several different original URIs were sent (refused by `check`).
    pub(crate) uri_conflict: bool,
    /// `X-Forwarded-Method` or `X-Original-Method` (forward-auth).
    pub(crate) method: Option<String>,
}

/// Everything one request carries through the phases.
#[derive(Debug)]
pub(crate) struct RequestContext {
    /// When the request head was received.
    pub(crate) started: Instant,
    /// The TCP peer.
    pub(crate) peer: SocketAddr,
    /// Whether the connection is TLS.
    pub(crate) tls: bool,
    /// Whether the peer is in `trusted_proxies`.
    pub(crate) peer_trusted: bool,
    /// The client address as the gateway believes it.
    pub(crate) client_ip: IpAddr,
    /// The request method.
    pub(crate) method: Method,
    /// The normalized path (matched and forwarded); the raw path until sanitize ran.
    pub(crate) path: String,
    /// The query string, unchanged.
    pub(crate) query: Option<String>,
    /// The client's `Host` (or `:authority`), a plain `host[:port]` once sanitize ran; read it
    /// as text with [`host_str`](Self::host_str).
    pub(crate) host: Option<HeaderValue>,
    /// Lower-cased `Upgrade` protocol when the client asked for one.
    pub(crate) upgrade: Option<String>,
    /// The upgrade came as an HTTP/2 extended `CONNECT` (RFC 8441), routed as the `GET` it becomes.
    pub(crate) extended_connect: bool,
    /// Forwarding headers as sent.
    pub(crate) incoming: IncomingForwarding,
    /// The route decision.
    pub(crate) route: Option<RouteDecision>,
    /// The identified user (shared with the session or the credential cache it came from).
    pub(crate) user: Option<Arc<User>>,
    /// How they were identified.
    pub(crate) identity: Option<IdentitySource>,
    /// The live session, when identify found one. Its `user` was moved into `user` above (read
    /// the user there, not here).
    pub(crate) session: Option<crate::session::Session>,
    /// The session cookie value that named it.
    pub(crate) session_cookie: Option<String>,
    /// Whether the (username, client IP) pair was locked out.
    pub(crate) locked: bool,
    /// Why credentials this request brought failed, for the metrics.
    pub(crate) auth_failure: Option<crate::audit::FailureReason>,
    /// The chain trace, when the chain ran.
    pub(crate) trace: Vec<TraceStep>,
    /// What the gateway decided, for the log and metrics.
    pub(crate) decision: &'static str,
    /// `Set-Cookie` values to add to the response (session refresh or clearing).
    pub(crate) set_cookies: Vec<HeaderValue>,
    /// Number of reserved headers the client sent.
    pub(crate) spoofed_headers: usize,
    /// The config version this request runs on.
    pub(crate) config_version: u64,
    /// When the upstream answered (response head), for the log.
    pub(crate) upstream_elapsed: Option<std::time::Duration>,
    /// The connection's peer address, preformatted as a header value (see `ConnInfo`).
    pub(crate) peer_ip_header: Option<HeaderValue>,
}

impl RequestContext {
    /// A fresh context for a request from `peer`.
    pub(crate) fn new(peer: SocketAddr, tls: bool, method: Method, config_version: u64) -> Self {
        RequestContext {
            started: Instant::now(),
            peer,
            tls,
            peer_trusted: false,
            client_ip: peer.ip(),
            method,
            path: String::new(),
            query: None,
            host: None,
            upgrade: None,
            extended_connect: false,
            incoming: IncomingForwarding::default(),
            route: None,
            user: None,
            identity: None,
            session: None,
            session_cookie: None,
            locked: false,
            auth_failure: None,
            trace: Vec::new(),
            decision: "unknown",
            set_cookies: Vec::new(),
            spoofed_headers: 0,
            config_version,
            upstream_elapsed: None,
            peer_ip_header: None,
        }
    }

    /// The client's address as a header value, when the client is the connection's peer: the
    /// connection's preformatted one (`ConnInfo`), so no request formats it again.
    pub(crate) fn client_ip_header(&self) -> Option<&HeaderValue> {
        self.peer_ip_header
            .as_ref()
            .filter(|_| self.client_ip == self.peer.ip().to_canonical())
    }

    /// The client's host as text (sanitize only keeps a host that is valid text).
    pub(crate) fn host_str(&self) -> Option<&str> {
        self.host.as_ref().and_then(|h| h.to_str().ok())
    }

    /// `http` or `https` as the client sees us (believing a trusted proxy's `X-Forwarded-Proto`).
    pub(crate) fn proto(&self) -> &str {
        if self.peer_trusted
            && let Some(p) = self.incoming.proto.as_deref()
            && (p == "http" || p == "https")
        {
            return p;
        }
        if self.tls { "https" } else { "http" }
    }
}

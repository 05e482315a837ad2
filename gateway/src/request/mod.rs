//! The request path: one module per phase, each holding its phase's body and contract, run in
//! order by `service::handle` over one [`context::RequestContext`], numbered as in the README:
//! 1 [`sanitize`] -> 2 [`route`] -> 3 [`identify`] -> 4 [`challenge`] -> 5 [`authorize`] ->
//! 6 [`forward`] -> 7 log (`access_log`). Requests under `login.prefix` leave the path after
//! sanitize for the gateway's own endpoints (`endpoints.rs`). This module imports neither: they
//! import it.
//!
//! Choices an operator can rely on (each detailed in its phase's module):
//! - identity and forwarding headers sent by clients are dropped in every spelling, on every
//!   route; `Connection` cannot name away what the gateway sets (it is applied first);
//! - a request without `Host` (or `:authority`), or with several, is 400; so is one whose host is
//!   not a plain `host[:port]` (userinfo, path or other characters), and one whose `Host`
//!   disagrees with the target's authority (an HTTP/1.1 absolute-form target, HTTP/2
//!   `:authority`), compared case-insensitively with the scheme's default port equal to none;
//! - a raw `#` ends the request-target: hyper (through `http::Uri`) drops it and what follows
//!   before any phase runs, so the path matched and forwarded is the one before it and the
//!   upstream never receives the fragment. Refusing it (400) would take reading the raw request
//!   line, which hyper does not expose; `attack::paths` pins that nothing after `#` is ever
//!   routed or forwarded;
//! - `CONNECT` is 405 (the gateway is no forward proxy), except an HTTP/2 extended `CONNECT` with
//!   `:protocol websocket` (RFC 8441), which is routed and authorized as the `GET` it becomes
//!   upstream; another `:protocol` is 501;
//! - paths are normalized once and the normalized path is both matched and forwarded;
//!   ambiguous paths (`%2F`, `\`, `%5C`, NUL and controls, dot segments raw or encoded, `;`)
//!   are 400; `//` collapses; the query passes unchanged;
//! - one access decision ([`authorize::decide`], shared with forward-auth's `check`): `public`
//!   routes are forwarded without identifying anyone (no identity headers); `deny` is 403 before
//!   identification;
//! - the client's `Authorization` is never forwarded, whatever identified the request (session,
//!   Basic, Bearer, nobody on a public route) and whatever its scheme, unless
//!   `upstream.pass_authorization`; nor is a `login.api_key_headers` header, ever; look-alikes
//!   of hop-by-hop, framing and credential headers
//!   (`Transfer_Encoding`, `Content.Length`) are dropped (see [`sanitize`]);
//! - malformed `Authorization: Basic` on a protected route is 400, never anonymous-then-2xx;
//! - a rule listing `GET` also covers `HEAD`;
//! - store or backend unavailability during identification is 503 (fail closed);
//! - the response-head timeout starts once the request body is sent; connection failures are
//!   502, timeouts 504; bodies stream both ways;
//! - a WebSocket tunnel (HTTP/1.1 `Upgrade` or HTTP/2 extended `CONNECT`) opens only on a valid
//!   `101` handshake, and only from an allowed `Origin` (the `public_url` origin or an
//!   `allowed_redirect_hosts` host; see [`forward::websocket_origin_allowed`]); tunnels are
//!   drained on shutdown (see [`tunnel`]); `Upgrade: h2c` is 400;
//! - the upstream cannot set the gateway's own cookies, and never receives them.

pub(crate) mod authorize;
pub mod bench;
pub(crate) mod challenge;
pub(crate) mod context;
pub(crate) mod error;
pub(crate) mod forward;
pub(crate) mod identify;
pub(crate) mod pool;
pub(crate) mod route;
pub(crate) mod sanitize;
pub(crate) mod tunnel;
pub(crate) mod upstream_h1;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::combinators::BoxBody;

use crate::activity::Activity;

/// Boxed error of a streamed body.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The body type on both sides of the gateway: streamed, boxed.
pub(crate) type Body = BoxBody<Bytes, BoxError>;

/// A body with nothing in it: zero-sized, so its box allocates nothing. What a request without
/// a body carries through the phases, from hyper's server and from the fast path alike.
pub(crate) fn empty_body() -> Body {
    use http_body_util::BodyExt;
    http_body_util::Empty::new()
        .map_err(|never| match never {})
        .boxed()
}

/// Facts about the connection a request came in on.
#[derive(Debug, Clone)]
pub(crate) struct ConnInfo {
    /// The TCP peer.
    pub(crate) peer: SocketAddr,
    /// Whether the connection is TLS.
    pub(crate) tls: bool,
    /// The peer's address as the `X-Forwarded-For` value it usually becomes, formatted once per
    /// connection rather than per request.
    pub(crate) peer_ip: Option<http::HeaderValue>,
    /// The listener's WebSocket tunnels (waited for, then closed, on shutdown).
    pub(crate) tunnels: tunnel::Tunnels,
    /// What is open on this connection (a tunnel keeps it from being closed as idle).
    pub(crate) activity: Arc<Activity>,
}

impl ConnInfo {
    /// The facts of a connection from `peer`.
    pub(crate) fn new(
        peer: SocketAddr,
        tls: bool,
        tunnels: tunnel::Tunnels,
        activity: Arc<Activity>,
    ) -> ConnInfo {
        let ip = peer.ip().to_canonical().to_string();
        ConnInfo {
            peer,
            tls,
            peer_ip: http::HeaderValue::from_str(&ip).ok(),
            tunnels,
            activity,
        }
    }
}

/// Boxes the future `make` returns, built directly in its allocation. `Box::pin(fut)` builds
/// the future on the stack and then copies all of it into the allocation, whatever part its
/// first state uses: for a request's future (~5 KiB) that copy was ~500 instructions per
/// request under callgrind, and with this it is gone (`bench/RESULTS.md`, "Memory per open
/// connection"). The allocation comes first, so the compiler writes the future in place.
/// Every future the gateway boxes goes through here.
#[inline(always)]
pub(crate) fn boxed<F: std::future::Future>(make: impl FnOnce() -> F) -> std::pin::Pin<Box<F>> {
    Box::into_pin(Box::write(Box::new_uninit(), make()))
}

/// A response with status `status` and no body beyond its reason.
pub(crate) fn status_response(status: StatusCode) -> Response<Body> {
    error::plain_response(status, status.canonical_reason().unwrap_or(""))
}

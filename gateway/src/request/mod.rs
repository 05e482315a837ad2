//! The request path: one function per phase, run in order by [`handle`] over one
//! [`context::RequestContext`]:
//! sanitize -> route -> identify -> challenge -> authorize -> forward -> log.
//! Requests under `login.prefix` leave the path after sanitize for [`crate::endpoints`].
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
//!   `allowed_redirect_hosts` host; see [`websocket_origin_allowed`]); tunnels are drained on
//!   shutdown (see [`tunnel`]); `Upgrade: h2c` is 400;
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

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderName};
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use http_body_util::combinators::BoxBody;
use hyper::body::Incoming;
use sanitize::{
    X_FORWARDED_FOR, X_FORWARDED_HOST, X_FORWARDED_METHOD, X_FORWARDED_PROTO, X_FORWARDED_URI,
    X_ORIGINAL_METHOD, X_ORIGINAL_URI, X_ORIGINAL_URL,
};

use crate::runtime::Runtime;
use crate::server::Gateway;
use authorize::{Decision, Via, Who};
use context::RequestContext;
use error::{ErrorSource, ProxyError};

/// Boxed error of a streamed body.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The body type on both sides of the gateway: streamed, boxed.
pub type Body = BoxBody<Bytes, BoxError>;

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
    pub(crate) activity: Arc<crate::server::idle::Activity>,
}

impl ConnInfo {
    /// The facts of a connection from `peer`.
    pub(crate) fn new(
        peer: SocketAddr,
        tls: bool,
        tunnels: tunnel::Tunnels,
        activity: Arc<crate::server::idle::Activity>,
    ) -> ConnInfo {
        let ip = forward::canonical_ip(peer.ip()).to_string();
        ConnInfo {
            peer,
            tls,
            peer_ip: http::HeaderValue::from_str(&ip).ok(),
            tunnels,
            activity,
        }
    }
}

/// Runs every phase for one request and logs it. Never fails: errors become responses here.
pub(crate) async fn handle(
    gw: Arc<Gateway>,
    conn: ConnInfo,
    req: Request<Incoming>,
) -> Response<Body> {
    let rt = gw.runtime.load_full();
    let mut ctx = RequestContext::new(conn.peer, conn.tls, req.method().clone(), rt.version);
    ctx.peer_ip_header = conn.peer_ip.clone();
    let error_format = error::ErrorFormat::of(req.headers());
    let req = req.map(|b| b.map_err(|e| Box::new(e) as BoxError).boxed());
    let mut resp = match process(&gw, &rt, &conn, &mut ctx, req).await {
        Ok(resp) => resp,
        Err(e) => {
            match e.origin {
                ErrorSource::Client if e.status == StatusCode::NOT_FOUND => {
                    ctx.decision = "not_found";
                    tracing::debug!(error = %e, "not found");
                }
                ErrorSource::Client => {
                    ctx.decision = "bad_request";
                    tracing::debug!(error = %e, "client error");
                }
                ErrorSource::Upstream => {
                    ctx.decision = "upstream_error";
                    tracing::warn!(error = %e, "upstream error");
                }
                ErrorSource::Internal if e.status == StatusCode::SERVICE_UNAVAILABLE => {
                    ctx.decision = "error";
                    // A login storm saturating the hashing pool makes one per request: logging
                    // each would turn the storm into a log flood on the reactor.
                    if let Some(suppressed) = error::UNAVAILABLE_LOG.allow() {
                        tracing::error!(error = %e, suppressed, "unavailable (503)");
                    }
                }
                ErrorSource::Internal => {
                    ctx.decision = "error";
                    tracing::error!(error = %e, "internal error");
                }
            }
            e.to_response(error_format, rt.services.error_template.as_deref())
        }
    };
    for c in ctx.set_cookies.drain(..) {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    for step in &ctx.trace {
        gw.metrics.backend_step(step);
    }
    let status = resp.status().as_u16();
    gw.metrics.request(ctx.decision, status);
    gw.metrics
        .request_duration(ctx.decision, ctx.started.elapsed());
    if let Some(reason) = ctx.auth_failure {
        gw.metrics.auth_failure(reason);
    }
    if ctx.decision == "upstream_error" {
        gw.metrics.upstream_error(status);
    }
    crate::access_log::log_request(&ctx, status);
    resp
}

/// Whether `host` is a plain `name[:port]`, `IPv4[:port]` or `[IPv6][:port]`: no userinfo, path,
/// percent-encoding, spaces or other characters that parsers could read differently.
fn plain_host(host: &str) -> bool {
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        if v6.is_empty()
            || !v6
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return false;
        }
        match after {
            "" => return true,
            p => match p.strip_prefix(':') {
                Some(port) => ("v6", Some(port)),
                None => return false,
            },
        }
    } else {
        match host.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        }
    };
    let name_ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    name_ok && port_ok
}

/// Whether `host` (a `Host` value) and `authority` (the request-target's) name the same host and
/// port: case-insensitively, the `scheme`'s default port (80, 443) standing for no port. Anything
/// else in either (userinfo...) makes them differ.
fn same_authority(host: &str, authority: &str, scheme: Option<&str>) -> bool {
    fn split(hp: &str) -> (&str, Option<&str>) {
        // `[v6]:port`: the port follows the bracket.
        let after = hp.rfind(']').map_or(0, |i| i + 1);
        match hp[after..].rfind(':') {
            Some(i) => (&hp[..after + i], Some(&hp[after + i + 1..])),
            None => (hp, None),
        }
    }
    let default = match scheme {
        Some(s) if s.eq_ignore_ascii_case("http") => Some(80),
        Some(s) if s.eq_ignore_ascii_case("https") => Some(443),
        _ => None,
    };
    let port = |p: Option<&str>| match p {
        None => Ok(default),
        Some(p) => p.parse::<u16>().map(Some).map_err(|_| ()),
    };
    let ((h1, p1), (h2, p2)) = (split(host.trim()), split(authority));
    h1.eq_ignore_ascii_case(h2) && port(p1).is_ok_and(|p| Ok(p) == port(p2))
}

/// Sanitize: capture forwarding facts, normalize the path, drop reserved and hop-by-hop headers.
fn sanitize(
    rt: &Runtime,
    ctx: &mut RequestContext,
    req: &mut Request<Body>,
) -> Result<(), ProxyError> {
    let headers = req.headers();
    // One pass over the names finds what goes; the forwarding headers are among the reserved
    // names, so a request without any (the usual case) needs no lookup for each of them.
    let found = sanitize::scan(headers, Some(&rt.reserved));
    if found.reserved_values > 0 {
        ctx.incoming = incoming_forwarding(headers);
    }
    // Two Host headers: the gateway and the upstream could each pick a different one
    // (RFC 9112 §3.2 requires a 400).
    let mut hosts = headers.get_all(header::HOST).iter();
    let host_header = hosts.next();
    if hosts.next().is_some() {
        return Err(ProxyError::bad_request("several Host headers"));
    }
    // `Host` and the target's authority (HTTP/2 `:authority`, an HTTP/1.1 absolute-form target)
    // naming different hosts: what the gateway routes on and what a client, cache or the
    // upstream takes for the target could differ (RFC 9113 §8.3.1; RFC 9112 §3.2.2 lets a server
    // ignore `Host` there, so another hop may route on the authority).
    if let (Some(host), Some(authority)) = (host_header, req.uri().authority())
        && !host
            .to_str()
            .is_ok_and(|h| same_authority(h, authority.as_str(), req.uri().scheme_str()))
    {
        return Err(ProxyError::bad_request(
            "Host and the request-target's authority disagree",
        ));
    }
    // The value as received (a shared reference into the parsed request, not a copy): it is
    // routed on, and sent upstream as `X-Forwarded-Host` (and `Host` with `preserve_host`).
    let host = host_header
        .filter(|h| h.to_str().is_ok())
        .cloned()
        .or_else(|| {
            req.uri()
                .authority()
                .and_then(|a| http::HeaderValue::from_str(a.as_str()).ok())
        })
        .filter(|h| h.to_str().is_ok_and(|h| !h.trim().is_empty()));
    // Without a host no `host:` rule can match, and the upstream would pick its default virtual
    // host (perhaps the protected one): refused (RFC 9112 §3.2 requires it for HTTP/1.1).
    let Some(host_str) = host.as_ref().and_then(|h| h.to_str().ok()) else {
        return Err(ProxyError::bad_request("no Host"));
    };
    // `x@admin.test` is not `admin.test` to the route table, but is to an upstream that parses
    // `Host` as a URL authority: only plain `host[:port]` passes.
    if !plain_host(host_str) {
        return Err(ProxyError::bad_request("malformed Host"));
    }
    ctx.host = host;
    ctx.peer_trusted = forward::is_trusted(ctx.peer.ip(), &rt.trusted_proxies);
    ctx.client_ip = forward::client_ip(
        ctx.peer.ip(),
        ctx.incoming.xff.as_deref(),
        &rt.trusted_proxies,
    );

    // The gateway is no forward proxy: `CONNECT` is only an HTTP/2 WebSocket (RFC 8441), routed
    // and authorized as the `GET` it becomes upstream.
    if req.method() == Method::CONNECT {
        match tunnel::extended_connect(req).as_deref() {
            Some("websocket") => {
                ctx.extended_connect = true;
                ctx.method = Method::GET;
            }
            Some(_) => {
                return Err(ProxyError::client(
                    StatusCode::NOT_IMPLEMENTED,
                    "unsupported :protocol",
                ));
            }
            None => {
                return Err(ProxyError::client(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "CONNECT refused",
                ));
            }
        }
    }

    ctx.query = req.uri().query().map(str::to_string);
    ctx.path = rt
        .routes
        .normalize(req.uri().path())
        .map_err(|e| ProxyError::bad_request(format!("ambiguous path: {e}")))?;

    let upgrade = if found.connection {
        sanitize::upgrade_request(req.headers())
    } else {
        None
    };
    ctx.upgrade = match upgrade {
        Some(p) if p == "h2c" => return Err(ProxyError::bad_request("Upgrade: h2c refused")),
        Some(p) if p == "websocket" => Some(p),
        _ if ctx.extended_connect => Some("websocket".to_string()),
        _ => None,
    };
    ctx.spoofed_headers = found.reserved_values;
    found.remove_from(req.headers_mut());
    if ctx.spoofed_headers > 0 {
        tracing::debug!(
            count = ctx.spoofed_headers,
            "dropped client-sent reserved headers"
        );
    }
    Ok(())
}

/// The forwarding headers a client sent (read before sanitize drops them; believed only from a
/// trusted proxy).
fn incoming_forwarding(headers: &http::HeaderMap) -> context::IncomingForwarding {
    let joined = |name: HeaderName| {
        let mut values = headers.get_all(name).iter().filter_map(|v| v.to_str().ok());
        let first = values.next()?;
        let mut all = first.to_string();
        for v in values {
            all.push(',');
            all.push_str(v);
        }
        Some(all)
    };
    let mut uris: Vec<&str> = [X_ORIGINAL_URI, X_ORIGINAL_URL, X_FORWARDED_URI]
        .into_iter()
        .flat_map(|n| headers.get_all(n).iter())
        .filter_map(|v| v.to_str().ok())
        .collect();
    uris.sort_unstable();
    uris.dedup();
    context::IncomingForwarding {
        xff: joined(X_FORWARDED_FOR),
        proto: joined(X_FORWARDED_PROTO).map(|p| p.trim().to_ascii_lowercase()),
        host: joined(X_FORWARDED_HOST),
        uri_conflict: uris.len() > 1,
        uri: uris.first().map(|u| u.to_string()),
        method: joined(X_FORWARDED_METHOD).or_else(|| joined(X_ORIGINAL_METHOD)),
    }
}

async fn process(
    gw: &Gateway,
    rt: &Runtime,
    conn: &ConnInfo,
    ctx: &mut RequestContext,
    mut req: Request<Body>,
) -> Result<Response<Body>, ProxyError> {
    sanitize(rt, ctx, &mut req)?;

    if route::path_has_prefix(&ctx.path, &rt.prefix) {
        if ctx.extended_connect {
            // Endpoints answer pages, never a tunnel: a 2xx would tell the client one is open.
            return Err(ProxyError::bad_request(
                "no WebSocket on the gateway's endpoints",
            ));
        }
        ctx.decision = "endpoint";
        // Boxed: the login endpoints' state is large and would otherwise be part of (and moved
        // with) every proxied request's future.
        return Box::pin(crate::endpoints::handle(gw, rt, ctx, req)).await;
    }

    let decision = rt
        .routes
        .decide(ctx.host_str(), ctx.method.as_str(), &ctx.path);
    let access = decision.access.clone();
    ctx.route = Some(decision);

    let mut decision = authorize::decide(&access, Who::NotAsked);
    if decision == Decision::Identify {
        identify::identify(rt, ctx, req.headers()).await?;
        decision = authorize::decide(&access, Who::identified(ctx.user.as_deref()));
    }
    ctx.decision = decision.label(Via::Proxy);
    match decision {
        Decision::Public | Decision::Allow => forward(rt, conn, ctx, req).await,
        Decision::Deny => Ok(crate::endpoints::forbidden_page(rt, None)),
        Decision::Forbidden => Ok(crate::endpoints::forbidden_page(rt, ctx.user.as_deref())),
        Decision::Challenge => Ok(challenge::challenge(rt, ctx, req.headers())),
        Decision::Identify => Err(ProxyError::internal("no decision after identification")),
    }
}

/// Forward: build the upstream request and stream the exchange.
async fn forward(
    rt: &Runtime,
    conn: &ConnInfo,
    ctx: &mut RequestContext,
    mut req: Request<Body>,
) -> Result<Response<Body>, ProxyError> {
    if ctx.upgrade.is_some() && !websocket_origin_allowed(rt, ctx, req.headers()) {
        ctx.decision = "websocket_origin";
        return Ok(status_response(StatusCode::FORBIDDEN));
    }
    if ctx.extended_connect {
        tunnel::to_http11_websocket(&mut req);
    }
    let client_upgrade = ctx
        .upgrade
        .is_some()
        .then(|| tunnel::ClientUpgrade::take(&mut req, conn));
    let plan = forward::ForwardPlan {
        target: &rt.upstream,
        headers: &rt.headers,
        cookie_names: [
            rt.services.sessions.cookie_name(),
            rt.services.sessions.csrf_cookie_name(),
        ],
    };
    let upstream_req = forward::upstream_request(ctx, &plan, req)?;
    let mut resp = forward::exchange(
        &rt.upstream.pool,
        ctx,
        rt.upstream.timeout,
        upstream_req,
        client_upgrade,
    )
    .await?;
    forward::drop_own_set_cookies(resp.headers_mut(), &plan.cookie_names);
    if ctx.extended_connect {
        tunnel::to_http2_response(&mut resp)?;
    }
    Ok(resp)
}

/// Cross-site WebSocket hijacking defence: browsers attach cookies (and cached Basic
/// credentials) to WebSocket handshakes from any site, and only `Origin` tells them apart. A
/// WebSocket upgrade is forwarded only when `Origin` is our `public_url` origin or an
/// `http(s)` origin on a `login.allowed_redirect_hosts` host; without `Origin` (a non-browser
/// client) only when the user was not identified by the session cookie.
fn websocket_origin_allowed(rt: &Runtime, ctx: &RequestContext, headers: &http::HeaderMap) -> bool {
    let mut origins = headers.get_all(header::ORIGIN).iter();
    let (Some(origin), None) = (origins.next(), origins.next()) else {
        return headers.get(header::ORIGIN).is_none()
            && ctx.identity != Some(context::IdentitySource::Session);
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    // An origin is `scheme://host[:port]`, nothing after it.
    let authority = origin.split_once("://").map_or("", |(_, rest)| rest);
    if authority.is_empty() || authority.contains(['/', '?', '#', '@', '\\']) {
        return false;
    }
    crate::login::validate_next(
        &format!("{origin}/"),
        &rt.public_url,
        &rt.allowed_redirect_hosts,
    )
    .is_some()
}

/// A response with status `status` and no body beyond its reason.
pub(crate) fn status_response(status: StatusCode) -> Response<Body> {
    error::plain_response(status, status.canonical_reason().unwrap_or(""))
}

#[cfg(test)]
mod tests {
    use super::{plain_host, same_authority};

    #[test]
    fn authorities_compare_by_host_and_effective_port() {
        for (host, authority, scheme) in [
            ("gw.test", "gw.test", Some("http")),
            ("GW.test", "gw.TEST", Some("http")),
            ("gw.test", "gw.test:80", Some("http")),
            ("gw.test:443", "gw.test", Some("https")),
            ("gw.test:8080", "gw.test:8080", Some("http")),
            ("[::1]", "[::1]:80", Some("http")),
            ("gw.test", "gw.test", None),
        ] {
            assert!(
                same_authority(host, authority, scheme),
                "{host} {authority}"
            );
        }
        for (host, authority, scheme) in [
            ("app.test", "other.host", Some("http")),
            ("gw.test", "gw.test:443", Some("http")),
            ("gw.test", "gw.test:8080", Some("http")),
            ("gw.test", "user@gw.test", Some("http")),
            ("gw.test", "gw.test:", Some("http")),
            ("gw.test", "gw.test:80", None),
            ("gw.test", "gw.test.", Some("http")),
            ("[::1]", "[::2]", Some("http")),
        ] {
            assert!(
                !same_authority(host, authority, scheme),
                "{host} {authority}"
            );
        }
    }

    #[test]
    fn only_plain_hosts_pass() {
        for ok in [
            "gw.test",
            "GW.test:8080",
            "gw.test.",
            "127.0.0.1:80",
            "[::1]",
            "[::1]:443",
            "internal_host",
        ] {
            assert!(plain_host(ok), "{ok}");
        }
        for bad in [
            "x@admin.test",
            "admin.test@evil.example",
            "admin.test:80@evil",
            "admin.test/x",
            "admin.test\\x",
            "admin test",
            "admin.test:",
            "admin.test:8o",
            "admin.test:123456",
            "admin.test:80:80",
            "%61dmin.test",
            "[::1",
            "[::1]x",
            "[evil.example]",
            ":80",
            "admin.test,evil.example",
        ] {
            assert!(!plain_host(bad), "{bad}");
        }
    }
}

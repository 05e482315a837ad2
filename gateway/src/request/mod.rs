//! The request path: one function per phase, run in order by [`handle`] over one
//! [`context::RequestContext`]:
//! sanitize -> route -> identify -> challenge -> authorize -> forward -> log.
//! Requests under `login.prefix` leave the path after sanitize for [`crate::endpoints`].
//!
//! Choices an operator can rely on (each detailed in its phase's module):
//! - identity and forwarding headers sent by clients are dropped in every spelling, on every
//!   route; `Connection` cannot name away what the gateway sets (it is applied first);
//! - a request without `Host` (or `:authority`), or with several, is 400;
//! - paths are normalized once and the normalized path is both matched and forwarded;
//!   ambiguous paths (`%2F`, `\`, `%5C`, NUL and controls, dot segments raw or encoded, `;`)
//!   are 400; `//` collapses; the query passes unchanged;
//! - `public` routes are forwarded without identifying anyone (no identity headers, the client's
//!   `Authorization` passes); `deny` is 403 before identification;
//! - malformed `Authorization: Basic` on a protected route is 400, never anonymous-then-2xx;
//! - a rule listing `GET` also covers `HEAD`;
//! - store or backend unavailability during identification is 503 (fail closed);
//! - the response-head timeout starts once the request body is sent; connection failures are
//!   502, timeouts 504; bodies stream both ways;
//! - a WebSocket tunnel opens only on a valid `101` handshake, and only from an allowed
//!   `Origin` (the `public_url` origin or an `allowed_redirect_hosts` host; see
//!   [`websocket_origin_allowed`]); `Upgrade: h2c` is 400;
//! - the upstream cannot set the gateway's own cookies, and never receives them.

pub(crate) mod authorize;
pub mod bench;
pub(crate) mod challenge;
pub(crate) mod context;
pub(crate) mod error;
pub(crate) mod forward;
pub(crate) mod identify;
pub(crate) mod route;
pub(crate) mod sanitize;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::header;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use http_body_util::combinators::BoxBody;
use hyper::body::Incoming;

use crate::config::Access;
use crate::runtime::Runtime;
use crate::server::Gateway;
use context::RequestContext;
use error::{ErrorSource, ProxyError};

/// Boxed error of a streamed body.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The body type on both sides of the gateway: streamed, boxed.
pub type Body = BoxBody<Bytes, BoxError>;

/// Facts about the connection a request came in on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnInfo {
    /// The TCP peer.
    pub(crate) peer: SocketAddr,
    /// Whether the connection is TLS.
    pub(crate) tls: bool,
}

/// Runs every phase for one request and logs it. Never fails: errors become responses here.
pub(crate) async fn handle(
    gw: Arc<Gateway>,
    conn: ConnInfo,
    req: Request<Incoming>,
) -> Response<Body> {
    let rt = gw.runtime.load_full();
    let mut ctx = RequestContext::new(conn.peer, conn.tls, req.method().clone(), rt.version);
    let req = req.map(|b| b.map_err(|e| Box::new(e) as BoxError).boxed());
    let mut resp = match process(&gw, &rt, &mut ctx, req).await {
        Ok(resp) => resp,
        Err(e) => {
            match e.origin {
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
            e.to_response()
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
    crate::access_log::log_request(&ctx, status);
    resp
}

/// Sanitize: capture forwarding facts, normalize the path, drop reserved and hop-by-hop headers.
fn sanitize(
    rt: &Runtime,
    ctx: &mut RequestContext,
    req: &mut Request<Body>,
) -> Result<(), ProxyError> {
    let headers = req.headers();
    let joined = |name: &str| {
        let v: Vec<&str> = headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        (!v.is_empty()).then(|| v.join(","))
    };
    ctx.incoming.xff = joined("x-forwarded-for");
    ctx.incoming.proto = joined("x-forwarded-proto").map(|p| p.trim().to_ascii_lowercase());
    ctx.incoming.host = joined("x-forwarded-host");
    let mut uris: Vec<&str> = ["x-original-uri", "x-original-url", "x-forwarded-uri"]
        .iter()
        .flat_map(|n| headers.get_all(*n).iter())
        .filter_map(|v| v.to_str().ok())
        .collect();
    uris.sort_unstable();
    uris.dedup();
    ctx.incoming.uri_conflict = uris.len() > 1;
    ctx.incoming.uri = uris.first().map(|u| u.to_string());
    ctx.incoming.method = joined("x-forwarded-method").or_else(|| joined("x-original-method"));
    // Two Host headers: the gateway and the upstream could each pick a different one
    // (RFC 9112 §3.2 requires a 400).
    if headers.get_all(header::HOST).iter().count() > 1 {
        return Err(ProxyError::bad_request("several Host headers"));
    }
    ctx.host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
        .filter(|h| !h.trim().is_empty());
    // Without a host no `host:` rule can match, and the upstream would pick its default virtual
    // host (perhaps the protected one): refused (RFC 9112 §3.2 requires it for HTTP/1.1).
    if ctx.host.is_none() {
        return Err(ProxyError::bad_request("no Host"));
    }
    ctx.peer_trusted = forward::is_trusted(ctx.peer.ip(), &rt.trusted_proxies);
    ctx.client_ip = forward::client_ip(
        ctx.peer.ip(),
        ctx.incoming.xff.as_deref(),
        &rt.trusted_proxies,
    );

    ctx.path = req.uri().path().to_string();
    ctx.query = req.uri().query().map(str::to_string);
    ctx.path = rt
        .routes
        .normalize(req.uri().path())
        .map_err(|e| ProxyError::bad_request(format!("ambiguous path: {e}")))?;

    ctx.upgrade = match sanitize::upgrade_request(req.headers()) {
        Some(p) if p == "h2c" => return Err(ProxyError::bad_request("Upgrade: h2c refused")),
        Some(p) if p == "websocket" => Some(p),
        _ => None,
    };
    ctx.spoofed_headers = sanitize::sanitize_headers(req.headers_mut(), &rt.reserved);
    if ctx.spoofed_headers > 0 {
        tracing::debug!(
            count = ctx.spoofed_headers,
            "dropped client-sent reserved headers"
        );
    }
    Ok(())
}

async fn process(
    gw: &Gateway,
    rt: &Runtime,
    ctx: &mut RequestContext,
    mut req: Request<Body>,
) -> Result<Response<Body>, ProxyError> {
    sanitize(rt, ctx, &mut req)?;

    if route::path_has_prefix(&ctx.path, &rt.prefix) {
        ctx.decision = "endpoint";
        return crate::endpoints::handle(gw, rt, ctx, req).await;
    }

    let decision = rt
        .routes
        .decide(ctx.host.as_deref(), ctx.method.as_str(), &ctx.path);
    let access = decision.access.clone();
    ctx.route = Some(decision);

    match access {
        Access::Public => {
            ctx.decision = "public";
            return forward(gw, rt, ctx, req).await;
        }
        Access::Deny => {
            ctx.decision = "deny";
            return Ok(crate::endpoints::forbidden_page(rt, None));
        }
        _ => {}
    }

    identify::identify(rt, ctx, req.headers()).await?;
    if ctx.user.is_none() {
        return Ok(challenge::challenge(rt, ctx, req.headers()));
    }
    if authorize::authorize(&access, ctx.user.as_ref()) == authorize::Verdict::Forbid {
        ctx.decision = "forbidden";
        return Ok(crate::endpoints::forbidden_page(rt, ctx.user.as_ref()));
    }
    ctx.decision = "allowed";
    forward(gw, rt, ctx, req).await
}

/// Forward: build the upstream request and stream the exchange.
async fn forward(
    gw: &Gateway,
    rt: &Runtime,
    ctx: &mut RequestContext,
    mut req: Request<Body>,
) -> Result<Response<Body>, ProxyError> {
    if ctx.upgrade.is_some() && !websocket_origin_allowed(rt, ctx, req.headers()) {
        ctx.decision = "websocket_origin";
        return Ok(status_response(StatusCode::FORBIDDEN));
    }
    let client_upgrade = ctx.upgrade.is_some().then(|| hyper::upgrade::on(&mut req));
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
        &gw.client,
        ctx,
        rt.upstream.timeout,
        upstream_req,
        client_upgrade,
    )
    .await?;
    forward::drop_own_set_cookies(resp.headers_mut(), &plan.cookie_names);
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

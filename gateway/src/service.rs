//! One request, end to end: runs phase 1 ([`sanitize`]), hands a request under `login.prefix`
//! to the gateway's own [`endpoints`](crate::endpoints) and every other one through the proxy
//! phases ([`crate::request`]), turns an error into its response (the one place that does), sets
//! the context's cookies, counts the request and logs it (phase 7).

use std::sync::Arc;

use http::header;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::{Body as _, Incoming};

use crate::request::authorize::{self, Decision, Via, Who};
use crate::request::context::RequestContext;
use crate::request::error::{self, ErrorSource, ProxyError};
use crate::request::{Body, BoxError, ConnInfo, challenge, forward, identify, route, sanitize};
use crate::runtime::Runtime;
use crate::state::Gateway;

/// Runs every phase for one request and logs it. Never fails: errors become responses here.
pub(crate) async fn handle(
    gw: Arc<Gateway>,
    conn: Arc<ConnInfo>,
    req: Request<Body>,
) -> Response<Body> {
    let rt = gw.runtime.load_full();
    let mut ctx = RequestContext::new(conn.peer, conn.tls, req.method().clone(), rt.version);
    ctx.peer_ip_header = conn.peer_ip.clone();
    let accept = error::AcceptValues::of(req.headers());
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
            e.to_response(
                error::ErrorFormat::of_accept(&accept),
                rt.services.error_template.as_deref(),
            )
        }
    };
    for c in ctx.set_cookies.drain(..) {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    for step in &ctx.trace {
        gw.metrics.backend_step(step);
    }
    let status = resp.status().as_u16();
    gw.metrics
        .request(ctx.decision, status, ctx.started.elapsed());
    if let Some(reason) = ctx.auth_failure {
        gw.metrics.auth_failure(reason);
    }
    if ctx.decision == "upstream_error" {
        gw.metrics.upstream_error(status);
    }
    crate::access_log::log_request(&ctx, status);
    resp
}

async fn process(
    gw: &Gateway,
    rt: &Runtime,
    conn: &ConnInfo,
    ctx: &mut RequestContext,
    mut req: Request<Body>,
) -> Result<Response<Body>, ProxyError> {
    sanitize::sanitize(rt, ctx, &mut req)?;

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
        // Single sign-on has its own module (it uses the login endpoints' pages and session
        // start, so the login endpoints do not dispatch to it).
        let rest = &ctx.path[rt.prefix.len()..];
        if rest.starts_with("/oidc/") {
            let rest = rest.to_string();
            return crate::request::boxed(|| crate::sso::handle(rt, ctx, req.headers(), &rest))
                .await;
        }
        return crate::request::boxed(|| crate::endpoints::handle(gw, rt, ctx, req)).await;
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
        Decision::Public | Decision::Allow => forward::forward(rt, conn, ctx, req).await,
        Decision::Deny => Ok(crate::endpoints::forbidden_page(rt, None)),
        Decision::Forbidden => Ok(crate::endpoints::forbidden_page(rt, ctx.user.as_deref())),
        Decision::Challenge => Ok(challenge::challenge(rt, ctx, req.headers())),
        Decision::Identify => Err(ProxyError::internal("no decision after identification")),
    }
}

/// The request's body as the phases take it. A body that has ended before it was read (a `GET`,
/// any request without one) becomes an empty body of no size, whose box allocates nothing: the
/// common request costs one allocation less. Nothing can be read from such a body, so dropping
/// hyper's handle of it changes nothing (an upgrade is taken from the request, not its body).
pub(crate) fn boxed_body(body: Incoming) -> Body {
    if body.is_end_stream() {
        crate::request::empty_body()
    } else {
        body.map_err(|e| Box::new(e) as BoxError).boxed()
    }
}

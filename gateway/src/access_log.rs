//! The one structured log line per request. It carries method, normalized path, route, decision,
//! user, backend entry, status, timings and config version — never a password, cookie or token
//! (the context holds none of those, and headers are not logged).

use super::request::context::RequestContext;

/// Emits the access line for a finished request (JSON or text per the subscriber installed by
/// `main`; `log.format` picks it).
pub(crate) fn log_request(ctx: &RequestContext, status: u16) {
    let route = ctx
        .route
        .as_ref()
        .map(|r| r.to_string())
        .unwrap_or_else(|| "-".into());
    let user = ctx
        .user
        .as_ref()
        .map(|u| u.username.as_str())
        .unwrap_or("-");
    let entry = ctx.user.as_ref().map(|u| u.backend.as_str()).unwrap_or("-");
    let trace = ctx
        .trace
        .iter()
        .map(|s| format!("{}={}({}us)", s.entry, s.outcome, s.elapsed.as_micros()))
        .collect::<Vec<_>>()
        .join(",");
    tracing::info!(
        target: "gateway::access",
        method = %ctx.method,
        path = %ctx.path,
        route = %route,
        decision = ctx.decision,
        user = user,
        identity = ctx.identity.map(|i| i.label()).unwrap_or("-"),
        backend = entry,
        trace = %trace,
        client_ip = %ctx.client_ip,
        status = status,
        spoofed_headers = ctx.spoofed_headers,
        elapsed_us = ctx.started.elapsed().as_micros() as u64,
        upstream_us = ctx.upstream_elapsed.map(|d| d.as_micros() as u64),
        config_version = ctx.config_version,
        "request"
    );
}

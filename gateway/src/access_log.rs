//! Phase 7, **log**: the one structured log line per request. It carries method, normalized
//! path, route, decision, user, backend entry, status, timings and config version — never a
//! password, cookie or token (the context holds none of those, and headers are not logged).

use std::fmt;

use auth_core::TraceStep;

use super::request::context::RequestContext;
use super::request::route::RouteDecision;

/// Emits the access line for a finished request (JSON or text per the subscriber installed by
/// `main`; `log.format` picks it).
///
/// Contract: the fields are formatted straight into the subscriber's line buffer (no string
/// is built per field or per trace step), and nothing is done when the line is filtered out.
pub(crate) fn log_request(ctx: &RequestContext, status: u16) {
    if !tracing::enabled!(target: "gateway::access", tracing::Level::INFO) {
        return;
    }
    let user = ctx
        .user
        .as_ref()
        .map(|u| u.username.as_str())
        .unwrap_or("-");
    let entry = ctx.user.as_ref().map(|u| u.backend.as_str()).unwrap_or("-");
    tracing::info!(
        target: "gateway::access",
        method = %ctx.method,
        path = %ctx.path,
        route = %Route(ctx.route.as_ref()),
        decision = ctx.decision,
        user = user,
        identity = ctx.identity.map(|i| i.label()).unwrap_or("-"),
        backend = entry,
        trace = %Trace(&ctx.trace),
        client_ip = %ctx.client_ip,
        status = status,
        spoofed_headers = ctx.spoofed_headers,
        elapsed_us = ctx.started.elapsed().as_micros() as u64,
        upstream_us = ctx.upstream_elapsed.map(|d| d.as_micros() as u64),
        config_version = ctx.config_version,
        "request"
    );
}

/// The `route` field: the matched route counted from 1, `default`, or `-` before routing.
struct Route<'a>(Option<&'a RouteDecision>);

impl fmt::Display for Route<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(route) => fmt::Display::fmt(route, f),
            None => f.write_str("-"),
        }
    }
}

/// The `trace` field: `entry=outcome(NNus)` per chain step, comma-separated.
struct Trace<'a>(&'a [TraceStep]);

impl fmt::Display for Trace<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(
                f,
                "{}={}({}us)",
                step.entry,
                step.outcome,
                step.elapsed.as_micros()
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn step(entry: &str, outcome: &'static str, micros: u64) -> TraceStep {
        TraceStep {
            entry: entry.into(),
            outcome,
            detail: None,
            elapsed: Duration::from_micros(micros),
        }
    }

    #[test]
    fn trace_and_route_fields_keep_their_format() {
        assert_eq!(Trace(&[]).to_string(), "");
        assert_eq!(
            Trace(&[
                step("ldap", "unavailable", 1500),
                step("local", "authenticated", 7)
            ])
            .to_string(),
            "ldap=unavailable(1500us),local=authenticated(7us)"
        );
        assert_eq!(Route(None).to_string(), "-");
    }
}

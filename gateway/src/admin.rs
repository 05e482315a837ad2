//! The admin listener (`admin.listen`): `/metrics` (Prometheus text format), `/healthz` (the
//! process is up) and `/readyz` (every chain backend's `health()` and the session store; 503
//! when a backend whose entry has `on_error: deny` is down, or the session store is).
//!
//! `authgate lockouts` also talks to it: `GET /lockouts` (the lockouts in force, JSON) and
//! `POST /lockouts/clear` (`{"user": NAME}`). Those two answer only a loopback peer naming a
//! loopback `Host` with a JSON body (a browser cannot send that cross-site without a preflight,
//! nor through DNS rebinding): anyone else gets 403.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use auth_core::OnError;
use http::{Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::request::Body;
use crate::request::error::{full_body, plain_response};
use crate::state::Gateway;

/// The longest a scrape waits for the lockout store to count the lockouts in force.
const LOCKOUT_COUNT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

async fn answer(gw: Arc<Gateway>, peer: SocketAddr, req: Request<Incoming>) -> Response<Body> {
    match req.uri().path() {
        "/lockouts" | "/lockouts/clear" if !local_operator(peer, &req) => plain_response(
            StatusCode::FORBIDDEN,
            "lockouts are managed from the gateway's own host (a loopback address)",
        ),
        "/lockouts" if req.method() == http::Method::GET => {
            match gw.current().services.lockout.list().await {
                Ok(locks) => json_response(StatusCode::OK, &serde_json::json!(locks)),
                Err(e) => plain_response(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
            }
        }
        "/lockouts/clear" if req.method() == http::Method::POST => clear_lockouts(&gw, req).await,
        "/metrics" => {
            let rt = gw.current();
            if let Some(n) = rt.services.sessions.active_sessions() {
                gw.metrics.set_active_sessions(n);
            }
            // A store that is down must not hold the scrape: the gauge keeps its last value.
            match tokio::time::timeout(LOCKOUT_COUNT_TIMEOUT, rt.services.lockout.list()).await {
                Ok(Ok(locks)) => gw.metrics.set_lockouts_active(locks.len()),
                Ok(Err(e)) => tracing::warn!(error = %e, "cannot count the lockouts in force"),
                Err(_) => tracing::warn!("counting the lockouts in force timed out"),
            }
            let mut resp = Response::new(full_body(gw.metrics.encode()));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            resp
        }
        "/healthz" => plain_response(StatusCode::OK, "ok"),
        "/readyz" => readyz(&gw).await,
        _ => plain_response(StatusCode::NOT_FOUND, "Not Found"),
    }
}

/// Each chain entry's `health()` (bounded by its `timeout`): its name, `ok` or `error: ...`,
/// and its `on_error`.
async fn backend_health(rt: &crate::runtime::Runtime) -> Vec<(String, String, OnError)> {
    let mut out = Vec::new();
    for entry in rt.chain.entries() {
        let status = match tokio::time::timeout(entry.timeout, entry.backend.health()).await {
            Ok(Ok(())) => "ok".to_string(),
            Ok(Err(e)) => format!("error: {e}"),
            Err(_) => "error: timed out".to_string(),
        };
        out.push((entry.name.clone(), status, entry.on_error));
    }
    out
}

/// Logs a WARN for each chain entry whose backend is down now (at start: `/readyz` says the
/// same, but nobody may be asking yet).
pub(crate) async fn warn_down_backends(gw: Arc<Gateway>) {
    let rt = gw.current();
    for (name, status, on_error) in backend_health(&rt).await {
        if let Some(error) = status.strip_prefix("error: ") {
            tracing::warn!(
                entry = %name,
                error = %error,
                on_error = ?on_error,
                "chain entry `{name}` is unavailable at start: {error}"
            );
        }
    }
}

/// Whether a lockout request comes from this host: a loopback peer, a loopback or `localhost`
/// `Host`, and (for a POST) a JSON content type.
fn local_operator(peer: SocketAddr, req: &Request<Incoming>) -> bool {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let host = host
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback_host = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    let json = req.method() == http::Method::GET
        || req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
    peer.ip().to_canonical().is_loopback() && loopback_host && json
}

/// `POST /lockouts/clear` with `{"user": NAME}`: ends that user's lockouts, audits each end, and
/// answers the ended ones.
async fn clear_lockouts(gw: &Gateway, req: Request<Incoming>) -> Response<Body> {
    use http_body_util::BodyExt;
    let body = match http_body_util::Limited::new(req.into_body(), 4096)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(_) => return plain_response(StatusCode::BAD_REQUEST, "body too long or unreadable"),
    };
    let Some(user) = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["user"].as_str().map(str::to_string))
    else {
        return plain_response(StatusCode::BAD_REQUEST, "expected {\"user\": \"NAME\"}");
    };
    let rt = gw.current();
    match rt.services.lockout.clear_user(&user).await {
        Ok(cleared) => {
            for lock in &cleared {
                rt.services.audit.emit(crate::audit::Event::LockoutEnd {
                    scope: crate::audit::LockScope::User,
                    user: lock.user.as_deref(),
                    client_ip: &lock.client,
                    reason: crate::audit::LockEnd::Cleared,
                });
            }
            json_response(StatusCode::OK, &serde_json::json!({ "cleared": cleared }))
        }
        Err(e) => plain_response(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let mut resp = Response::new(full_body(value.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp
}

async fn readyz(gw: &Gateway) -> Response<Body> {
    let rt = gw.current();
    let mut ready = true;
    let mut backends = serde_json::Map::new();
    for (name, status, on_error) in backend_health(&rt).await {
        if status != "ok" && on_error == OnError::Deny {
            ready = false;
        }
        backends.insert(name, serde_json::Value::String(status));
    }
    let sessions = match rt.services.sessions.check().await {
        Ok(()) => "ok".to_string(),
        Err(e) => {
            ready = false;
            format!("error: {e}")
        }
    };
    let body = serde_json::json!({
        "ready": ready,
        "config_version": rt.version,
        "backends": backends,
        "sessions": sessions,
    });
    let mut resp = Response::new(full_body(body.to_string()));
    *resp.status_mut() = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp
}

/// Serves the admin endpoints on `listener` until `shutdown` turns `true`.
pub(crate) async fn serve_admin(
    gw: Arc<Gateway>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                let gw = gw.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let gw = gw.clone();
                        async move { Ok::<_, Infallible>(answer(gw, peer, req).await) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    break;
                }
            }
        }
    }
}

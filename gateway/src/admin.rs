//! The admin listener (`admin.listen`): `/metrics` (Prometheus text format), `/healthz` (the
//! process is up) and `/readyz` (every chain backend's `health()` and the session store; 503
//! when a backend whose entry has `on_error: deny` is down, or the session store is).

use std::convert::Infallible;
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
use crate::server::Gateway;

async fn answer(gw: Arc<Gateway>, req: Request<Incoming>) -> Response<Body> {
    match req.uri().path() {
        "/metrics" => {
            let rt = gw.current();
            if let Some(n) = rt.services.sessions.active_sessions() {
                gw.metrics.set_active_sessions(n);
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

async fn readyz(gw: &Gateway) -> Response<Body> {
    let rt = gw.current();
    let mut ready = true;
    let mut backends = serde_json::Map::new();
    for entry in rt.chain.entries() {
        let status = match tokio::time::timeout(entry.timeout, entry.backend.health()).await {
            Ok(Ok(())) => "ok".to_string(),
            Ok(Err(e)) => format!("error: {e}"),
            Err(_) => "error: timed out".to_string(),
        };
        if status != "ok" && entry.on_error == OnError::Deny {
            ready = false;
        }
        backends.insert(entry.name.clone(), serde_json::Value::String(status));
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
pub async fn serve_admin(
    gw: Arc<Gateway>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let gw = gw.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let gw = gw.clone();
                        async move { Ok::<_, Infallible>(answer(gw, req).await) }
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

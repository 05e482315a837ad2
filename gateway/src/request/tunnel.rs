//! WebSocket tunnels: the upgrade handshake with the upstream and the byte copy after it.
//!
//! Contract:
//! - a tunnel opens only when the upstream answers `101` with `Upgrade: websocket` and the
//!   `Sec-WebSocket-Accept` derived from the key the gateway sent (RFC 6455 §4.2.2); any other
//!   `101` is 502, so an upstream cannot turn the connection into a raw channel past the gateway;
//! - an HTTP/2 WebSocket (RFC 8441 extended `CONNECT` with `:protocol websocket`) goes upstream as
//!   an HTTP/1.1 `GET` with `Upgrade: websocket` and a key generated here; the upstream's valid
//!   `101` becomes `200` for the HTTP/2 client (without the HTTP/1.1 handshake headers), any
//!   other `2xx` is 502 (the client would believe in a tunnel that does not exist), other
//!   statuses pass unchanged;
//! - a tunnel lasts until both directions are closed (a half-closed tunnel waits for the other
//!   side), or until shutdown: open tunnels belong to their listener ([`Tunnels`]), which waits
//!   for them up to `server.shutdown_grace`, then closes both sides;
//! - a tunnel counts as activity on its client connection, so an HTTP/2 connection carrying one
//!   is never closed as idle.

use std::time::Duration;

use http::header::{self, HeaderValue};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::error::ProxyError;
use super::{Body, ConnInfo};
use crate::activity::ActiveGuard;

/// The open tunnels of one listener.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tunnels {
    tracker: TaskTracker,
    closing: CancellationToken,
}

impl Tunnels {
    /// No tunnels yet.
    pub(crate) fn new() -> Tunnels {
        Tunnels::default()
    }

    /// How many tunnels are open (or waiting for both sides to switch protocols).
    pub(crate) fn open(&self) -> usize {
        self.tracker.len()
    }

    /// Waits for the open tunnels to end by themselves until `deadline`, then closes the rest
    /// and waits for their tasks. Returns how many were closed at the deadline.
    pub(crate) async fn drain(&self, deadline: tokio::time::Instant) -> usize {
        self.tracker.close();
        if tokio::time::timeout_at(deadline, self.tracker.wait())
            .await
            .is_ok()
        {
            return 0;
        }
        let left = self.tracker.len();
        self.closing.cancel();
        // Dropping both upgraded streams is all a closing task does: this is quick.
        let _ = tokio::time::timeout(Duration::from_secs(5), self.tracker.wait()).await;
        left
    }

    /// Copies bytes both ways between the client and the upstream once both have switched
    /// protocols, until either side closes or the listener's shutdown grace is over. `active`
    /// keeps the client's connection from being closed as idle meanwhile (HTTP/2).
    fn spawn(&self, client: OnUpgrade, upstream: OnUpgrade, active: ActiveGuard) {
        let closing = self.closing.clone();
        self.tracker.spawn(async move {
            let _active = active;
            let (client, upstream) = tokio::select! {
                r = async { tokio::try_join!(client, upstream) } => match r {
                    Ok(pair) => pair,
                    Err(e) => {
                        tracing::warn!(error = %crate::error_chain::Chain(&e), "upgrade failed");
                        return;
                    }
                },
                () = closing.cancelled() => return,
            };
            let mut c = TokioIo::new(client);
            let mut u = TokioIo::new(upstream);
            tokio::select! {
                r = tokio::io::copy_bidirectional(&mut c, &mut u) => {
                    if let Err(e) = r {
                        tracing::debug!(error = %crate::error_chain::Chain(&e), "upgraded connection ended with an error");
                    }
                }
                () = closing.cancelled() => {
                    tracing::info!("shutdown grace over: closing an upgraded connection");
                }
            }
        });
    }
}

/// The client's side of a requested WebSocket upgrade: its pending upgrade, the key the upstream
/// must answer to, and where the tunnel will be tracked.
pub(crate) struct ClientUpgrade {
    on_upgrade: OnUpgrade,
    key: Option<String>,
    tunnels: Tunnels,
    active: ActiveGuard,
}

impl ClientUpgrade {
    /// Takes the pending upgrade of `req` (HTTP/1.1 `Upgrade` or HTTP/2 extended `CONNECT`),
    /// after [`to_http11_websocket`] for the latter.
    pub(crate) fn take<B>(req: &mut Request<B>, conn: &ConnInfo) -> ClientUpgrade {
        let key = req
            .headers()
            .get("sec-websocket-key")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_string());
        ClientUpgrade {
            on_upgrade: hyper::upgrade::on(req),
            key,
            tunnels: conn.tunnels.clone(),
            active: conn.activity.enter(),
        }
    }

    /// Checks the upstream's `101` against the handshake and, when valid, opens the tunnel.
    pub(crate) fn open<B>(self, resp: &mut Response<B>) -> Result<(), ProxyError> {
        let accepted = self
            .key
            .as_deref()
            .map(websocket_accept)
            .zip(resp.headers().get("sec-websocket-accept"))
            .is_some_and(|(want, got)| got.as_bytes() == want.as_bytes());
        let upgrade_ok = resp
            .headers()
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("websocket"));
        if !accepted || !upgrade_ok {
            return Err(ProxyError::bad_gateway(
                "upstream answered 101 without a valid WebSocket handshake",
            ));
        }
        let upstream = hyper::upgrade::on(resp);
        self.tunnels.spawn(self.on_upgrade, upstream, self.active);
        Ok(())
    }
}

/// Whether `req` is an HTTP/2 extended `CONNECT` and for which protocol (lower-cased).
pub(crate) fn extended_connect<B>(req: &Request<B>) -> Option<String> {
    if req.method() != Method::CONNECT {
        return None;
    }
    req.extensions()
        .get::<hyper::ext::Protocol>()
        .map(|p| p.as_str().to_ascii_lowercase())
}

/// Rewrites an HTTP/2 WebSocket request (extended `CONNECT`) into the HTTP/1.1 handshake the
/// upstream expects: `GET`, a fresh `Sec-WebSocket-Key`, `Sec-WebSocket-Version: 13` unless the
/// client named one, no body. `Connection`/`Upgrade` are set by the forward phase.
pub(crate) fn to_http11_websocket(req: &mut Request<Body>) {
    *req.method_mut() = Method::GET;
    req.extensions_mut().remove::<hyper::ext::Protocol>();
    let headers = req.headers_mut();
    headers.insert("sec-websocket-key", new_websocket_key());
    if !headers.contains_key("sec-websocket-version") {
        headers.insert("sec-websocket-version", HeaderValue::from_static("13"));
    }
    headers.remove(header::CONTENT_LENGTH);
    *req.body_mut() = super::error::full_body(bytes::Bytes::new());
}

/// The HTTP/2 client's answer to the upstream's handshake response: a valid `101` becomes
/// `200` without the HTTP/1.1 handshake headers; another `2xx` is 502.
pub(crate) fn to_http2_response(resp: &mut Response<Body>) -> Result<(), ProxyError> {
    let status = resp.status();
    if status == StatusCode::SWITCHING_PROTOCOLS {
        *resp.status_mut() = StatusCode::OK;
        strip_handshake_headers(resp.headers_mut());
    } else if status.is_success() {
        return Err(ProxyError::bad_gateway(
            "upstream accepted a WebSocket request without switching protocols",
        ));
    }
    Ok(())
}

fn strip_handshake_headers(headers: &mut HeaderMap) {
    for name in [
        header::CONNECTION,
        header::UPGRADE,
        header::SEC_WEBSOCKET_ACCEPT,
        header::CONTENT_LENGTH,
        header::TRANSFER_ENCODING,
    ] {
        headers.remove(name);
    }
}

/// A random `Sec-WebSocket-Key`: 16 bytes, base64 (RFC 6455 §4.1).
fn new_websocket_key() -> HeaderValue {
    use base64::Engine;
    let bytes: [u8; 16] = rand::random();
    let key = base64::engine::general_purpose::STANDARD.encode(bytes);
    HeaderValue::from_str(&key).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `Sec-WebSocket-Accept` for `key` (RFC 6455 §4.2.2).
fn websocket_accept(key: &str) -> String {
    use base64::Engine;
    use sha1::Digest;
    let mut h = sha1::Sha1::new();
    h.update(key.as_bytes());
    h.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_accept_matches_rfc_6455() {
        assert_eq!(
            websocket_accept("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn generated_keys_are_16_random_bytes() {
        use base64::Engine;
        let a = new_websocket_key();
        let b = new_websocket_key();
        assert_ne!(a, b);
        let raw = base64::engine::general_purpose::STANDARD
            .decode(a.as_bytes())
            .unwrap();
        assert_eq!(raw.len(), 16);
    }
}

//! WebSockets over HTTP/2 (RFC 8441 extended `CONNECT` with `:protocol websocket`), end to end:
//! hyper's HTTP/2 client speaks to the gateway, a tungstenite client runs over the stream, and
//! the recording upstream's WebSocket echo answers the HTTP/1.1 handshake the gateway makes.
//! Same authentication, authorization and `Origin` checks as an HTTP/1.1 WebSocket.

use crate::support;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use support::{Harness, basic};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;

const CONFIG: &str = r#"
server:
  public_url: "http://127.0.0.1:8080"
upstream:
  url: "http://{upstream}"
  connect_timeout: 1s
  timeout: 2s
session:
  secure: false
  secret: "0123456789abcdef0123456789abcdef-test"
login:
  allowed_redirect_hosts: [app.example.org]
routes:
  - match: { path: /static/ }
    access: public
  - match: { path: /ws/admin }
    access: { groups: [admins] }
  - match: { path: /internal/ }
    access: deny
  - match: { path: / }
    access: authenticated
"#;

/// An HTTP/2 connection (prior knowledge) whose server SETTINGS have arrived, so extended
/// CONNECT may be sent.
async fn h2(h: &Harness) -> SendRequest<Empty<Bytes>> {
    let tcp = tokio::net::TcpStream::connect(h.addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let warm = sender
        .send_request(
            Request::get("http://gw.test/static/warmup")
                .body(Empty::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(warm.status(), 200);
    sender
}

/// Sends an extended CONNECT for `path` with `protocol` and `headers`.
async fn connect(
    sender: &mut SendRequest<Empty<Bytes>>,
    path: &str,
    protocol: &'static str,
    headers: &[(&str, &str)],
) -> Response<Incoming> {
    let mut req = Request::builder()
        .method(Method::CONNECT)
        .uri(format!("http://gw.test{path}"))
        .header("sec-websocket-version", "13");
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    let mut req = req.body(Empty::new()).unwrap();
    req.extensions_mut()
        .insert(hyper::ext::Protocol::from_static(protocol));
    sender.send_request(req).await.unwrap()
}

/// A WebSocket client over the upgraded HTTP/2 stream of `resp`.
async fn websocket(resp: Response<Incoming>) -> WebSocketStream<TokioIo<hyper::upgrade::Upgraded>> {
    let upgraded = hyper::upgrade::on(resp).await.expect("stream upgraded");
    WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Client, None).await
}

async fn echoes(ws: &mut WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>, text: &str) {
    ws.send(Message::text(text)).await.unwrap();
    let echoed = tokio::time::timeout(std::time::Duration::from_secs(5), ws.next())
        .await
        .expect("echo in time")
        .expect("stream open")
        .expect("a message");
    assert_eq!(echoed, Message::text(text));
}

#[tokio::test]
async fn h2_websocket_is_translated_authenticated_and_echoes() {
    let h = Harness::start_with(CONFIG).await;
    let mut sender = h2(&h).await;
    h.upstream.clear();
    let alice = basic("alice", "alice-pw");
    let resp = connect(
        &mut sender,
        "/ws/echo?room=1",
        "websocket",
        &[
            ("authorization", &alice),
            ("x-remote-user", "spoofed-admin"),
            ("sec-websocket-protocol", "chat"),
        ],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    for gone in ["sec-websocket-accept", "upgrade", "connection"] {
        assert!(resp.headers().get(gone).is_none(), "{gone} sent over h2");
    }
    let mut ws = websocket(resp).await;
    echoes(&mut ws, "hello over h2").await;
    ws.send(Message::binary(vec![0u8, 1, 2, 255]))
        .await
        .unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::binary(vec![0u8, 1, 2, 255])
    );
    // A second tunnel on the same connection, next to the first.
    let resp2 = connect(
        &mut sender,
        "/ws/two",
        "websocket",
        &[("authorization", &alice)],
    )
    .await;
    assert_eq!(resp2.status(), StatusCode::OK);
    let mut ws2 = websocket(resp2).await;
    echoes(&mut ws2, "second").await;
    echoes(&mut ws, "first again").await;
    ws.close(None).await.ok();
    ws2.close(None).await.ok();

    let seen = h.upstream.seen();
    assert_eq!(seen.len(), 2, "one upstream handshake per tunnel");
    let up = &seen[0];
    assert_eq!(up.method, "GET");
    assert_eq!(up.path, "/ws/echo?room=1");
    assert_eq!(up.get("upgrade").as_deref(), Some("websocket"));
    assert_eq!(up.get("connection").as_deref(), Some("upgrade"));
    assert_eq!(up.get("sec-websocket-version").as_deref(), Some("13"));
    assert_eq!(up.get("sec-websocket-protocol").as_deref(), Some("chat"));
    let key = up.get("sec-websocket-key").expect("a generated key");
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(key.as_bytes())
        .unwrap();
    assert_eq!(raw.len(), 16);
    assert_ne!(
        seen[1].get("sec-websocket-key").unwrap(),
        key,
        "fresh key per tunnel"
    );
    assert_eq!(up.all("x-remote-user"), ["alice"]);
    assert!(up.get("authorization").is_none());
}

#[tokio::test]
async fn h2_websocket_anonymous_is_challenged_and_authorization_applies() {
    let h = Harness::start_with(CONFIG).await;
    let mut sender = h2(&h).await;
    h.upstream.clear();
    let resp = connect(&mut sender, "/ws/echo", "websocket", &[]).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.headers().get("www-authenticate").is_some());
    let resp = connect(
        &mut sender,
        "/ws/echo",
        "websocket",
        &[("authorization", "Basic !!!")],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let alice = basic("alice", "alice-pw");
    let resp = connect(
        &mut sender,
        "/ws/admin",
        "websocket",
        &[("authorization", &alice)],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN, "alice is no admin");
    let resp = connect(
        &mut sender,
        "/internal/ws",
        "websocket",
        &[("authorization", &alice)],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN, "deny route");
    assert!(h.upstream.seen().is_empty(), "{:?}", h.upstream.seen());
    let bob = basic("bob", "bob-pw");
    let resp = connect(
        &mut sender,
        "/ws/admin",
        "websocket",
        &[("authorization", &bob)],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let mut ws = websocket(resp).await;
    echoes(&mut ws, "admin channel").await;
    assert_eq!(h.upstream.seen().len(), 1);
    assert_eq!(h.upstream.seen()[0].all("x-remote-user"), ["bob"]);
}

#[tokio::test]
async fn h2_websocket_origin_is_checked_like_http11() {
    let h = Harness::start_with(CONFIG).await;
    let jar = support::login(&h, "alice", "alice-pw").await;
    let cookie = jar.header();
    let alice = basic("alice", "alice-pw");
    let mut sender = h2(&h).await;
    h.upstream.clear();
    for origin in [
        "http://evil.example",
        "null",
        "http://127.0.0.1:8080.evil.example",
        "http://127.0.0.1:8080@evil.example",
    ] {
        for (name, value) in [("cookie", cookie.as_str()), ("authorization", &alice)] {
            let resp = connect(
                &mut sender,
                "/ws/echo",
                "websocket",
                &[(name, value), ("origin", origin)],
            )
            .await;
            assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{name} from {origin}");
        }
    }
    // No Origin with the session cookie alone: a browser always sends one, so refuse.
    let resp = connect(&mut sender, "/ws/echo", "websocket", &[("cookie", &cookie)]).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(h.upstream.seen().is_empty(), "{:?}", h.upstream.seen());
    for origin in ["http://127.0.0.1:8080", "https://app.example.org"] {
        let resp = connect(
            &mut sender,
            "/ws/echo",
            "websocket",
            &[("cookie", &cookie), ("origin", origin)],
        )
        .await;
        assert_eq!(resp.status(), StatusCode::OK, "session from {origin}");
        let mut ws = websocket(resp).await;
        echoes(&mut ws, origin).await;
    }
    let seen = h.upstream.seen();
    assert_eq!(seen.len(), 2);
    assert!(
        seen.iter()
            .all(|r| r.get("cookie").is_none_or(|c| !c.contains("gw_session")))
    );
}

#[tokio::test]
async fn h2_websocket_needs_a_real_upstream_handshake() {
    let h = Harness::start_with(CONFIG).await;
    let mut sender = h2(&h).await;
    let alice = basic("alice", "alice-pw");
    // The upstream answers 200 (no WebSocket there): the client must not believe in a tunnel.
    let resp = connect(
        &mut sender,
        "/plain",
        "websocket",
        &[("authorization", &alice)],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    // 101 without a valid Sec-WebSocket-Accept.
    let resp = connect(
        &mut sender,
        "/fake101",
        "websocket",
        &[("authorization", &alice)],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    // Another protocol than websocket: not implemented, nothing forwarded.
    h.upstream.clear();
    let resp = connect(
        &mut sender,
        "/ws/echo",
        "connect-udp",
        &[("authorization", &alice)],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NOT_IMPLEMENTED);
    assert!(h.upstream.seen().is_empty());
    // The gateway's own endpoints are no WebSocket (a 2xx would tell the client a tunnel is open).
    for path in ["/_auth/login", "/_auth/check", "/_auth/logout"] {
        let resp = connect(&mut sender, path, "websocket", &[("authorization", &alice)]).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{path}");
    }
    assert!(h.upstream.seen().is_empty());
    // The connection still serves.
    let resp = connect(
        &mut sender,
        "/ws/echo",
        "websocket",
        &[("authorization", &alice)],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let mut ws = websocket(resp).await;
    echoes(&mut ws, "still fine").await;
}

/// An idle HTTP/2 connection is closed after `header_read_timeout` (1 s here), but one carrying a
/// tunnel is not idle, however quiet the tunnel is.
#[tokio::test]
async fn h2_tunnel_keeps_its_connection_beyond_the_idle_timeout() {
    let yaml = CONFIG.replace("  public_url:", "  header_read_timeout: 1s\n  public_url:");
    let h = Harness::start_with(&yaml).await;
    let mut sender = h2(&h).await;
    let alice = basic("alice", "alice-pw");
    let resp = connect(
        &mut sender,
        "/ws/quiet",
        "websocket",
        &[("authorization", &alice)],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let mut ws = websocket(resp).await;
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    echoes(&mut ws, "after a quiet while").await;
    ws.close(None).await.ok();
    drop(ws);
    // With the tunnel gone the connection is idle, and closed.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert!(sender.is_closed(), "idle connection kept open");
}

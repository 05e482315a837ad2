//! Graceful shutdown with open WebSocket tunnels: the listener closes at once, a tunnel keeps
//! carrying messages within `server.shutdown_grace`, and is closed when the grace is over;
//! tunnels that ended by themselves do not hold the shutdown.

use crate::support;

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use support::{Harness, basic};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const GRACE: Duration = Duration::from_secs(2);

fn config(grace: &str) -> String {
    support::BASE_CONFIG.replace(
        "  public_url:",
        &format!("  shutdown_grace: {grace}\n  public_url:"),
    )
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open_ws(h: &Harness) -> Ws {
    let mut req = format!("ws://{}/ws/echo", h.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", basic("alice", "alice-pw").parse().unwrap());
    let (ws, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(resp.status(), 101);
    ws
}

async fn echo(ws: &mut Ws, text: &str) -> bool {
    if ws.send(Message::text(text)).await.is_err() {
        return false;
    }
    matches!(
        tokio::time::timeout(Duration::from_secs(2), ws.next()).await,
        Ok(Some(Ok(m))) if m == Message::text(text)
    )
}

/// Whether the tunnel is closed: the next read ends (EOF, error or close) within `within`.
async fn closed_within(ws: &mut Ws, within: Duration) -> bool {
    matches!(
        tokio::time::timeout(within, ws.next()).await,
        Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_))))
    )
}

#[tokio::test]
async fn open_tunnel_works_during_the_grace_and_is_closed_after_it() {
    let mut h = Harness::start_with(&config("2s")).await;
    let mut ws = open_ws(&h).await;
    assert!(echo(&mut ws, "before").await);

    let started = Instant::now();
    let running = h.running.take().unwrap();
    let stop = tokio::spawn(running.shutdown());
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The listener is closed...
    assert!(
        tokio::net::TcpStream::connect(h.addr).await.is_err(),
        "still accepting during shutdown"
    );
    // ...but the tunnel still carries messages, and shutdown waits for it.
    assert!(echo(&mut ws, "during the grace").await);
    assert!(echo(&mut ws, "still during the grace").await);
    assert!(!stop.is_finished(), "shutdown did not wait for the tunnel");
    // When the grace is over the tunnel is closed and shutdown returns.
    assert!(
        closed_within(&mut ws, GRACE + Duration::from_secs(2)).await,
        "tunnel still open after the grace"
    );
    let closed_at = started.elapsed();
    assert!(
        closed_at >= GRACE - Duration::from_millis(200),
        "closed after {closed_at:?}, before the grace"
    );
    tokio::time::timeout(Duration::from_secs(3), stop)
        .await
        .expect("shutdown returns once tunnels are closed")
        .unwrap();
    assert!(started.elapsed() < GRACE + Duration::from_secs(2));
}

#[tokio::test]
async fn tunnels_closed_by_the_client_do_not_hold_shutdown() {
    let mut h = Harness::start_with(&config("20s")).await;
    let mut ws = open_ws(&h).await;
    assert!(echo(&mut ws, "hello").await);
    let running = h.running.take().unwrap();
    let started = Instant::now();
    let stop = tokio::spawn(running.shutdown());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(echo(&mut ws, "still there").await);
    ws.close(None).await.unwrap();
    assert!(closed_within(&mut ws, Duration::from_secs(2)).await);
    // The close handshake is done; the client closes its TCP connection (as browsers do).
    drop(ws);
    tokio::time::timeout(Duration::from_secs(3), stop)
        .await
        .expect("shutdown returns once the last tunnel ended, long before the 20 s grace")
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn http2_tunnel_is_kept_within_the_grace_and_closed_after_it() {
    use bytes::Bytes;
    use http_body_util::Empty;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use tokio_tungstenite::tungstenite::protocol::Role;

    let mut h = Harness::start_with(&config("2s")).await;
    let tcp = tokio::net::TcpStream::connect(h.addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let warm = sender
        .send_request(
            http::Request::get("http://gw.test/static/x")
                .body(Empty::<Bytes>::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(warm.status(), 200);
    let mut req = http::Request::builder()
        .method(http::Method::CONNECT)
        .uri("http://gw.test/ws/echo")
        .header("authorization", basic("alice", "alice-pw"))
        .header("sec-websocket-version", "13")
        .body(Empty::<Bytes>::new())
        .unwrap();
    req.extensions_mut()
        .insert(hyper::ext::Protocol::from_static("websocket"));
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let upgraded = hyper::upgrade::on(resp).await.unwrap();
    let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
        TokioIo::new(upgraded),
        Role::Client,
        None,
    )
    .await;

    let started = Instant::now();
    let stop = tokio::spawn(h.running.take().unwrap().shutdown());
    tokio::time::sleep(Duration::from_millis(300)).await;
    ws.send(Message::text("during")).await.unwrap();
    let m = tokio::time::timeout(Duration::from_secs(2), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(m, Message::text("during"));
    assert!(!stop.is_finished());
    let end = tokio::time::timeout(GRACE + Duration::from_secs(2), ws.next()).await;
    assert!(
        matches!(end, Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_))))),
        "h2 tunnel not closed after the grace: {end:?}"
    );
    assert!(started.elapsed() >= GRACE - Duration::from_millis(200));
    tokio::time::timeout(Duration::from_secs(3), stop)
        .await
        .expect("shutdown returns")
        .unwrap();
}

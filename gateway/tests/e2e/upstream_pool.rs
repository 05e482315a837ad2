//! The upstream connection pool (`gateway/src/request/pool.rs`), seen from a raw upstream that
//! counts its connections: keep-alive reuse, a retry when the upstream closed an idle
//! connection, no reuse of an abandoned exchange, and no mixed-up responses under concurrency.

use crate::support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use gateway::__test::Metrics;
use gateway::__test::{Gateway, Running};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// How the raw upstream treats a connection after each response.
#[derive(Clone, Copy)]
enum Mode {
    /// Keeps it open for the next request.
    KeepAlive,
    /// Closes it right after the response, without saying so (`Connection: close` absent), as
    /// an upstream does when its keep-alive timeout fires between two requests.
    CloseSilently,
}

/// An HTTP/1.1 upstream answering `200` with the request path as body; `/big` streams
/// `BIG` bytes slowly. Counts accepted connections.
struct CountingUpstream {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

const BIG: usize = 4 * 1024 * 1024;

impl CountingUpstream {
    async fn start(mode: Mode) -> CountingUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(stream, mode));
            }
        });
        CountingUpstream {
            addr,
            connections,
            task,
        }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for CountingUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(stream: tokio::net::TcpStream, mode: Mode) {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    loop {
        let mut request_line = String::new();
        if read.read_line(&mut request_line).await.unwrap_or(0) == 0 {
            return;
        }
        loop {
            let mut line = String::new();
            if read.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("?")
            .to_string();
        if path == "/big" {
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {BIG}\r\n\r\n");
            if write.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let chunk = vec![b'x'; 64 * 1024];
            for _ in 0..BIG / chunk.len() {
                if write.write_all(&chunk).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        } else {
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{path}",
                path.len()
            );
            if write.write_all(resp.as_bytes()).await.is_err() {
                return;
            }
        }
        if let Mode::CloseSilently = mode {
            // Read nothing more: drop both halves.
            let _ = write.shutdown().await;
            return;
        }
    }
}

const CONFIG: &str = r#"
server:
  public_url: "http://127.0.0.1:8080"
upstream:
  url: "http://{upstream}"
  connect_timeout: 1s
  timeout: 5s
session:
  secure: false
  secret: "0123456789abcdef0123456789abcdef-test"
routes:
  - match: { path: / }
    access: public
"#;

async fn gateway_for(upstream: SocketAddr) -> (Running, tempfile::TempDir) {
    let config = support::parse_config(CONFIG, upstream);
    let dir = tempfile::tempdir().unwrap();
    let backend = support::default_backend();
    let runtime = support::runtime(config, &backend, dir.path(), 1).await;
    let gateway = Gateway::new(runtime, Arc::new(Metrics::new()));
    let running = Running::start(gateway, "127.0.0.1:0".parse().unwrap(), None)
        .await
        .unwrap();
    (running, dir)
}

async fn get(client: &reqwest::Client, gw: SocketAddr, path: &str) -> (u16, String) {
    let resp = client
        .get(format!("http://{gw}{path}"))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

#[tokio::test]
async fn sequential_requests_share_one_upstream_connection() {
    let upstream = CountingUpstream::start(Mode::KeepAlive).await;
    let (gw, _dir) = gateway_for(upstream.addr).await;
    let client = support::client();
    for i in 0..50 {
        let path = format!("/seq/{i}");
        assert_eq!(get(&client, gw.addr, &path).await, (200, path));
    }
    assert_eq!(upstream.connections(), 1, "keep-alive connection reused");
    gw.shutdown().await;
}

#[tokio::test]
async fn an_idle_connection_closed_by_the_upstream_is_not_a_502() {
    let upstream = CountingUpstream::start(Mode::CloseSilently).await;
    let (gw, _dir) = gateway_for(upstream.addr).await;
    let client = support::client();
    for i in 0..30 {
        let path = format!("/closing/{i}");
        assert_eq!(
            get(&client, gw.addr, &path).await,
            (200, path),
            "request {i}"
        );
        // The close reaches the gateway while the connection sits idle (a request racing the
        // FIN itself may get a 502: it may have reached the upstream, so it is not retried).
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(upstream.connections(), 30, "one connection per request");
    gw.shutdown().await;
}

#[tokio::test]
async fn an_abandoned_response_never_leaks_into_the_next_request() {
    let upstream = CountingUpstream::start(Mode::KeepAlive).await;
    let (gw, _dir) = gateway_for(upstream.addr).await;
    // A raw client reads the head of /big and a little of its body, then hangs up.
    let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(b"GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 16 * 1024];
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    drop(s);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let client = support::client();
    for i in 0..5 {
        let path = format!("/after/{i}");
        assert_eq!(get(&client, gw.addr, &path).await, (200, path));
    }
    assert_eq!(
        upstream.connections(),
        2,
        "the half-read connection is closed, not pooled; the next requests share a new one"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn concurrent_requests_get_their_own_responses() {
    let upstream = CountingUpstream::start(Mode::KeepAlive).await;
    let (gw, _dir) = gateway_for(upstream.addr).await;
    let client = support::client();
    for round in 0..5 {
        let calls: Vec<_> = (0..40)
            .map(|i| {
                let client = client.clone();
                let path = format!("/c/{round}/{i}");
                async move { (get(&client, gw.addr, &path).await, path) }
            })
            .collect();
        for ((status, body), path) in futures_util::future::join_all(calls).await {
            assert_eq!((status, body), (200, path));
        }
    }
    let opened = upstream.connections();
    assert!(
        (1..=40).contains(&opened),
        "at most one connection per concurrent request, reused across rounds: {opened}"
    );
    gw.shutdown().await;
}

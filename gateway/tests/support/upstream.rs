//! A recording upstream: answers every request and records its method, path and headers.
//! `/slow/...` answers after 3 s; `/upload` counts the body bytes as they stream and answers
//! the count; `/ws` is a WebSocket echo.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::protocol::Role;

/// One request as the upstream saw it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
}

impl Recorded {
    /// All values of header `name`.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect()
    }

    /// The single value of `name`, if any.
    pub fn get(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    }
}

/// The running upstream.
#[derive(Clone)]
pub struct RecordingUpstream {
    pub addr: SocketAddr,
    pub requests: Arc<Mutex<Vec<Recorded>>>,
    task: Arc<tokio::task::JoinHandle<()>>,
}

impl Drop for RecordingUpstream {
    fn drop(&mut self) {
        if Arc::strong_count(&self.task) == 1 {
            self.task.abort();
        }
    }
}

impl RecordingUpstream {
    pub async fn start() -> RecordingUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests: Arc<Mutex<Vec<Recorded>>> = Arc::default();
        let rec = requests.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let rec = rec.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let rec = rec.clone();
                        async move { Ok::<_, Infallible>(answer(rec, req).await) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        RecordingUpstream {
            addr,
            requests,
            task: Arc::new(task),
        }
    }

    /// Every request seen so far.
    pub fn seen(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    /// The last request seen.
    pub fn last(&self) -> Option<Recorded> {
        self.requests.lock().unwrap().last().cloned()
    }

    /// Forgets what was recorded.
    pub fn clear(&self) {
        self.requests.lock().unwrap().clear();
    }
}

type Body = http_body_util::combinators::BoxBody<Bytes, hyper::Error>;

fn text(status: StatusCode, s: String) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(s)).map_err(|n| match n {}).boxed());
    *r.status_mut() = status;
    r
}

async fn answer(rec: Arc<Mutex<Vec<Recorded>>>, mut req: Request<Incoming>) -> Response<Body> {
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    rec.lock().unwrap().push(Recorded {
        method: req.method().to_string(),
        path: path.clone(),
        headers: req.headers().clone(),
    });
    if path.starts_with("/slow") {
        tokio::time::sleep(Duration::from_secs(3)).await;
        return text(StatusCode::OK, "slow".into());
    }
    if path.starts_with("/delay") {
        tokio::time::sleep(Duration::from_millis(800)).await;
        return text(StatusCode::OK, "delayed".into());
    }
    if path.starts_with("/upload") {
        let mut body = req.into_body();
        let mut n: u64 = 0;
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(f) => {
                    if let Some(d) = f.data_ref() {
                        n += d.len() as u64;
                    }
                }
                Err(_) => return text(StatusCode::BAD_REQUEST, "broken body".into()),
            }
        }
        return text(StatusCode::OK, n.to_string());
    }
    if let Some(n) = path.strip_prefix("/download/") {
        // Streams `n` bytes in 64 KiB chunks, generated lazily.
        let total: u64 = n.parse().unwrap_or(0);
        let chunk = Bytes::from(vec![b'y'; 64 * 1024]);
        let stream = futures_util::stream::unfold(0u64, move |sent| {
            let chunk = chunk.clone();
            async move {
                if sent >= total {
                    return None;
                }
                let len = (total - sent).min(chunk.len() as u64) as usize;
                Some((
                    Ok::<_, hyper::Error>(hyper::body::Frame::data(chunk.slice(..len))),
                    sent + len as u64,
                ))
            }
        });
        return Response::new(BodyExt::boxed(http_body_util::StreamBody::new(stream)));
    }
    if path.contains("fake101") {
        // Claims to switch protocols without a WebSocket handshake, then speaks HTTP.
        let on_upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(upgraded) = on_upgrade.await {
                use tokio::io::AsyncWriteExt;
                let mut io = TokioIo::new(upgraded);
                let _ = io
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\ntunnel!")
                    .await;
            }
        });
        let mut r = text(StatusCode::SWITCHING_PROTOCOLS, String::new());
        r.headers_mut()
            .insert("connection", http::HeaderValue::from_static("upgrade"));
        r.headers_mut()
            .insert("upgrade", http::HeaderValue::from_static("websocket"));
        return r;
    }
    if path.starts_with("/ws") {
        let Some(key) = req.headers().get("sec-websocket-key").cloned() else {
            return text(StatusCode::BAD_REQUEST, "no key".into());
        };
        let on_upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(upgraded) = on_upgrade.await {
                let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    Role::Server,
                    None,
                )
                .await;
                while let Some(Ok(msg)) = ws.next().await {
                    if msg.is_text() || msg.is_binary() {
                        if ws.send(msg).await.is_err() {
                            break;
                        }
                    } else if msg.is_close() {
                        break;
                    }
                }
            }
        });
        let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
        let mut r = text(StatusCode::SWITCHING_PROTOCOLS, String::new());
        r.headers_mut()
            .insert("connection", http::HeaderValue::from_static("upgrade"));
        r.headers_mut()
            .insert("upgrade", http::HeaderValue::from_static("websocket"));
        r.headers_mut().insert(
            "sec-websocket-accept",
            http::HeaderValue::from_str(&accept).unwrap(),
        );
        return r;
    }
    text(StatusCode::OK, format!("upstream saw {path}"))
}

/// An address nothing listens on: an upstream that is down.
pub fn dead_upstream() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}

/// A gateway config whose every route is public, in front of `upstream` (an address, or
/// `{upstream}` for the harness's recording upstream, whose `/slow/` paths then time out) with
/// a 500 ms `upstream.timeout`; `login_extra` is added under `login:` (e.g. `  error_template: ...\n`).
pub fn public_config(upstream: &str, login_extra: &str) -> String {
    format!(
        r#"
server:
  public_url: "http://127.0.0.1:8080"
upstream:
  url: "http://{upstream}"
  connect_timeout: 1s
  timeout: 500ms
session:
  secure: false
  secret: "0123456789abcdef0123456789abcdef-test"
login:
  title: "Sign in"
{login_extra}routes:
  - match: {{ path: / }}
    access: public
"#
    )
}

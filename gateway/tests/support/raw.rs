//! Raw-TCP helpers for the attack suites: write exact bytes to the gateway, read exact bytes
//! back, split pipelined responses, and a raw upstream that records the bytes it receives.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One parsed HTTP/1.x response.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    /// Header names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The first value of `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Parses every complete response in `bytes` (bodies framed by Content-Length or chunked;
/// 1xx/204/304 and responses to HEAD have none when `head` says so). Stops at the first
/// incomplete one.
pub fn parse_responses(bytes: &[u8], head: bool) -> Vec<RawResponse> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while let Some(end) = find(rest, b"\r\n\r\n") {
        let head_text = String::from_utf8_lossy(&rest[..end]).into_owned();
        let mut lines = head_text.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let mut body_start = &rest[end + 4..];
        let get = |n: &str| headers.iter().find(|(h, _)| h == n).map(|(_, v)| v.clone());
        let no_body = head || status < 200 || status == 204 || status == 304;
        let body: Vec<u8>;
        if no_body {
            body = Vec::new();
        } else if get("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
            let mut b = Vec::new();
            loop {
                let Some(le) = find(body_start, b"\r\n") else {
                    return out;
                };
                let size_text = String::from_utf8_lossy(&body_start[..le]).into_owned();
                let Ok(size) =
                    usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
                else {
                    return out;
                };
                body_start = &body_start[le + 2..];
                if size == 0 {
                    let Some(te) = find(body_start, b"\r\n") else {
                        return out;
                    };
                    // no trailers from the gateway expected: skip up to the blank line
                    let mut rest2 = body_start;
                    let mut t = te;
                    while t != 0 {
                        rest2 = &rest2[t + 2..];
                        let Some(n) = find(rest2, b"\r\n") else {
                            return out;
                        };
                        t = n;
                    }
                    body_start = &rest2[2..];
                    break;
                }
                if body_start.len() < size + 2 {
                    return out;
                }
                b.extend_from_slice(&body_start[..size]);
                body_start = &body_start[size + 2..];
            }
            body = b;
        } else if let Some(len) = get("content-length").and_then(|l| l.parse::<usize>().ok()) {
            if body_start.len() < len {
                return out;
            }
            body = body_start[..len].to_vec();
            body_start = &body_start[len..];
        } else {
            body = body_start.to_vec();
            body_start = &[];
        }
        out.push(RawResponse {
            status,
            headers,
            body,
        });
        rest = body_start;
    }
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// What came back on one connection.
#[derive(Debug)]
pub struct Exchange {
    /// Everything read.
    pub bytes: Vec<u8>,
    /// Whether the server closed the connection (EOF) before the read deadline.
    pub closed: bool,
    /// How long until EOF (or the deadline).
    pub elapsed: Duration,
}

impl Exchange {
    /// The responses read.
    pub fn responses(&self) -> Vec<RawResponse> {
        parse_responses(&self.bytes, false)
    }

    /// The first response (panics with the raw bytes when there is none).
    pub fn first(&self) -> RawResponse {
        self.responses().into_iter().next().unwrap_or_else(|| {
            panic!(
                "no complete response in {:?}",
                String::from_utf8_lossy(&self.bytes)
            )
        })
    }

    /// Status of the first response, 0 when nothing parseable came back.
    pub fn status(&self) -> u16 {
        self.responses().first().map_or(0, |r| r.status)
    }
}

/// Writes `request` and reads until EOF or `wait` passes.
pub async fn exchange_for(addr: SocketAddr, request: &[u8], wait: Duration) -> Exchange {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let start = Instant::now();
    // The server may answer and close before everything is written (e.g. 431): ignore.
    let _ = s.write_all(request).await;
    let mut bytes = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let deadline = start + wait;
    let mut closed = false;
    loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        match tokio::time::timeout(deadline - now, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(n)) => bytes.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    Exchange {
        bytes,
        closed,
        elapsed: start.elapsed(),
    }
}

/// Writes `request` (which should end with `Connection: close` semantics or be followed by a
/// close from the server) and reads for at most 5 s.
pub async fn send(addr: SocketAddr, request: &str) -> Exchange {
    exchange_for(addr, request.as_bytes(), Duration::from_secs(5)).await
}

/// Reads responses on a kept-alive connection until `n` complete responses arrived, EOF, or
/// `wait` passes; returns them.
pub async fn send_expecting(
    addr: SocketAddr,
    request: &[u8],
    n: usize,
    wait: Duration,
) -> (Vec<RawResponse>, bool) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let _ = s.write_all(request).await;
    let mut bytes = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let deadline = Instant::now() + wait;
    let mut closed = false;
    loop {
        if parse_responses(&bytes, false).len() >= n {
            break;
        }
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        match tokio::time::timeout(deadline - now, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(n)) => bytes.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    (parse_responses(&bytes, false), closed)
}

/// An upstream that records the raw bytes of every connection and answers each with one
/// fixed `200` and `Connection: close`, once the client has been idle for 300 ms (so the
/// recorded bytes include whatever followed the head: body, chunks, trailers).
#[derive(Clone)]
pub struct RawUpstream {
    pub addr: SocketAddr,
    pub connections: Arc<Mutex<Vec<Vec<u8>>>>,
    task: Arc<tokio::task::JoinHandle<()>>,
}

impl Drop for RawUpstream {
    fn drop(&mut self) {
        if Arc::strong_count(&self.task) == 1 {
            self.task.abort();
        }
    }
}

impl RawUpstream {
    pub async fn start() -> RawUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        let rec = connections.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    continue;
                };
                let rec = rec.clone();
                tokio::spawn(async move {
                    let mut bytes = Vec::new();
                    let mut buf = [0u8; 16 * 1024];
                    loop {
                        match tokio::time::timeout(
                            Duration::from_millis(300),
                            stream.read(&mut buf),
                        )
                        .await
                        {
                            Ok(Ok(0)) | Ok(Err(_)) => break,
                            Ok(Ok(n)) => bytes.extend_from_slice(&buf[..n]),
                            Err(_) => break,
                        }
                    }
                    rec.lock().unwrap().push(bytes);
                    let _ = stream
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                        )
                        .await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        RawUpstream {
            addr,
            connections,
            task: Arc::new(task),
        }
    }

    /// The bytes of every connection so far, as text.
    pub fn seen(&self) -> Vec<String> {
        self.connections
            .lock()
            .unwrap()
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect()
    }
}

/// A GET request for `path` with `extra` header lines (each ending in `\r\n`), closing.
pub fn get(path: &str, extra: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: gw.test\r\n{extra}Connection: close\r\n\r\n")
}

/// A gateway with config `yaml` (`{upstream}` replaced by `upstream`) over the default users,
/// for tests that need an upstream other than [`super::RecordingUpstream`].
pub struct RawHarness {
    pub running: Option<super::Running>,
    pub addr: SocketAddr,
    pub upstream: RawUpstream,
    pub dir: tempfile::TempDir,
}

impl RawHarness {
    pub async fn start(yaml: &str) -> RawHarness {
        let upstream = RawUpstream::start().await;
        let backend = super::default_backend();
        let config = super::parse_config(yaml, upstream.addr);
        let dir = tempfile::tempdir().unwrap();
        let runtime = super::runtime(config, &backend, dir.path(), 1).await;
        let gateway = super::Gateway::new(runtime, Arc::new(super::Metrics::new()));
        let running = super::Running::start(gateway, "127.0.0.1:0".parse().unwrap(), None)
            .await
            .expect("gateway starts");
        RawHarness {
            addr: running.addr,
            running: Some(running),
            upstream,
            dir,
        }
    }
}

/// The `name=value` of every `Set-Cookie` in `resp` (value empty when cleared).
pub fn set_cookies(resp: &RawResponse) -> Vec<(String, String, String)> {
    resp.all("set-cookie")
        .into_iter()
        .filter_map(|sc| {
            let first = sc.split(';').next()?;
            let (n, v) = first.split_once('=')?;
            Some((n.trim().to_string(), v.trim().to_string(), sc.to_string()))
        })
        .collect()
}

/// The value `resp` sets for cookie `name`, if any (an empty value means cleared).
pub fn set_cookie(resp: &RawResponse, name: &str) -> Option<String> {
    set_cookies(resp)
        .into_iter()
        .find(|(n, _, _)| n == name)
        .map(|(_, v, _)| v)
}

/// A login form fetched over raw TCP: the CSRF cookie pair and the hidden fields.
#[derive(Debug, Clone)]
pub struct RawForm {
    /// `name=value` of the CSRF cookie.
    pub csrf_cookie: String,
    pub csrf: String,
    pub next: Option<String>,
}

/// `GET /_auth/login<query>` with `extra` header lines.
pub async fn fetch_login_form(addr: SocketAddr, query: &str, extra: &str) -> RawForm {
    let ex = send(addr, &get(&format!("/_auth/login{query}"), extra)).await;
    let resp = ex.first();
    assert_eq!(resp.status, 200, "login form: {}", resp.text());
    let (n, v, _) = set_cookies(&resp)
        .into_iter()
        .find(|(n, v, _)| n.ends_with("_csrf") && !v.is_empty())
        .expect("csrf cookie");
    let html = resp.text();
    RawForm {
        csrf_cookie: format!("{n}={v}"),
        csrf: super::hidden_field(&html, "csrf").expect("csrf field"),
        next: super::hidden_field(&html, "next"),
    }
}

/// `application/x-www-form-urlencoded` of `fields`.
pub fn form_body(fields: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}

/// POSTs `body` (form-encoded) to `path` with `cookie` as the Cookie header (when not empty)
/// and `extra` header lines; returns the response.
pub async fn post_form(
    addr: SocketAddr,
    path: &str,
    cookie: &str,
    extra: &str,
    body: &str,
) -> RawResponse {
    let cookie = if cookie.is_empty() {
        String::new()
    } else {
        format!("Cookie: {cookie}\r\n")
    };
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: gw.test\r\n{cookie}{extra}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    send(addr, &req).await.first()
}

/// Logs in through the form over raw TCP with `next`; returns the response (303 on success).
/// `cookie_extra` is added to the Cookie header (e.g. an existing session).
pub async fn login_raw(
    addr: SocketAddr,
    user: &str,
    password: &str,
    next: &str,
    cookie_extra: &str,
) -> RawResponse {
    let form = fetch_login_form(addr, "", "").await;
    let cookie = if cookie_extra.is_empty() {
        form.csrf_cookie.clone()
    } else {
        format!("{}; {cookie_extra}", form.csrf_cookie)
    };
    let body = form_body(&[
        ("username", user),
        ("password", password),
        ("csrf", &form.csrf),
        ("next", next),
    ]);
    post_form(addr, "/_auth/login", &cookie, "", &body).await
}

/// A gateway whose chain is built from the config file itself (real backends such as
/// `static`), in front of a [`super::RecordingUpstream`].
pub struct FileHarness {
    pub running: Option<super::Running>,
    pub addr: SocketAddr,
    pub upstream: super::RecordingUpstream,
    pub dir: tempfile::TempDir,
}

impl FileHarness {
    pub async fn start(yaml: &str) -> FileHarness {
        FileHarness::start_in(tempfile::tempdir().unwrap(), yaml).await
    }

    /// As [`FileHarness::start`], with the config written into `dir` (which may already hold
    /// files the config names, such as a user store).
    pub async fn start_in(dir: tempfile::TempDir, yaml: &str) -> FileHarness {
        let upstream = super::RecordingUpstream::start().await;
        let path = dir.path().join("gateway.yaml");
        std::fs::write(
            &path,
            yaml.replace("{upstream}", &upstream.addr.to_string()),
        )
        .unwrap();
        let runtime = gateway::__test::build_runtime(
            &path,
            1,
            None,
            &gateway::launch::default_chain_builder(),
        )
        .await
        .expect("runtime builds");
        let gateway = super::Gateway::new(runtime, Arc::new(super::Metrics::new()));
        let running = super::Running::start(gateway, "127.0.0.1:0".parse().unwrap(), None)
            .await
            .expect("gateway starts");
        FileHarness {
            addr: running.addr,
            running: Some(running),
            upstream,
            dir,
        }
    }
}

/// An upstream that answers the n-th request head it reads (on any connection) with the n-th
/// scripted response, then keeps the connection open for the next one, or closes it when the
/// script says so. Counts the connections it accepted.
pub struct ScriptedUpstream {
    pub addr: SocketAddr,
    pub connections: Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ScriptedUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ScriptedUpstream {
    /// `script`: each response's bytes, and whether to close the connection after it.
    pub async fn start(script: Vec<(Vec<u8>, bool)>) -> ScriptedUpstream {
        use std::sync::atomic::Ordering;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let script = Arc::new(Mutex::new(std::collections::VecDeque::from(script)));
        let count = connections.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    continue;
                };
                count.fetch_add(1, Ordering::SeqCst);
                let script = script.clone();
                tokio::spawn(async move {
                    let mut pending = Vec::new();
                    let mut buf = [0u8; 4096];
                    loop {
                        let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") else {
                            match stream.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => pending.extend_from_slice(&buf[..n]),
                            }
                            continue;
                        };
                        pending.drain(..end + 4);
                        let next = script.lock().unwrap().pop_front();
                        let Some((response, close)) = next else {
                            return;
                        };
                        if stream.write_all(&response).await.is_err() {
                            return;
                        }
                        if close {
                            let _ = stream.shutdown().await;
                            return;
                        }
                    }
                });
            }
        });
        ScriptedUpstream {
            addr,
            connections,
            task,
        }
    }

    /// How many connections the gateway opened to it.
    pub fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A gateway with config `yaml` in front of the upstream at `upstream`, over the default users.
pub async fn gateway_for(yaml: &str, upstream: SocketAddr) -> (super::Running, tempfile::TempDir) {
    let backend = super::default_backend();
    let config = super::parse_config(yaml, upstream);
    let dir = tempfile::tempdir().unwrap();
    let runtime = super::runtime(config, &backend, dir.path(), 1).await;
    let gateway = super::Gateway::new(runtime, Arc::new(super::Metrics::new()));
    let running = super::Running::start(gateway, "127.0.0.1:0".parse().unwrap(), None)
        .await
        .expect("gateway starts");
    (running, dir)
}

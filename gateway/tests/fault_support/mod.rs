//! Helpers of the fault tests: a TCP proxy that can be cut and restored in front of a real
//! service, an HTTP auth service whose behaviour the test switches, a gateway started in-process
//! from a YAML file through the real loader and chain builder, and an open-fd counter.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use gateway::__test::Metrics;
use gateway::__test::build_runtime;
use gateway::__test::{Gateway, Running};
use gateway::launch::default_chain_builder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A TCP forwarder on a fixed local port: `cut()` closes the listening socket (new connections
/// are refused) and resets every open connection; `restore()` listens again on the same port.
pub struct CutProxy {
    pub addr: SocketAddr,
    target: SocketAddr,
    cut_tx: watch::Sender<u64>,
    accept: Option<JoinHandle<()>>,
}

impl CutProxy {
    pub async fn start(target: SocketAddr) -> CutProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (cut_tx, _) = watch::channel(0u64);
        let mut p = CutProxy {
            addr,
            target,
            cut_tx,
            accept: None,
        };
        p.accept = Some(p.spawn_accept(listener));
        p
    }

    fn spawn_accept(&self, listener: TcpListener) -> JoinHandle<()> {
        let target = self.target;
        let cut_rx = self.cut_tx.subscribe();
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                let mut cut = cut_rx.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        // Both sockets are dropped: the peers see the connection end mid-use.
                        _ = cut.changed() => {}
                    }
                });
            }
        })
    }

    /// Stops listening and resets open connections.
    pub async fn cut(&mut self) {
        if let Some(a) = self.accept.take() {
            a.abort();
            let _ = a.await;
        }
        self.cut_tx.send_modify(|g| *g += 1);
        // Let the connection tasks see the cut.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    /// Listens again on the same port.
    pub async fn restore(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("cannot listen again on {}: {e}", self.addr),
            }
        };
        self.accept = Some(self.spawn_accept(listener));
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        if let Some(a) = self.accept.take() {
            a.abort();
        }
        self.cut_tx.send_modify(|g| *g += 1);
    }
}

/// How [`AuthService`] answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// `alice`/`alice-pw` -> 200 `{"authenticated": true, ...}`, other known passwords 401,
    /// unknown users 404.
    Healthy = 0,
    /// Answers after 30 s.
    Slow = 1,
    /// 200 with a body that is not JSON.
    GarbageJson = 2,
    /// Bytes that are not HTTP at all, then close.
    GarbageBytes = 3,
    /// 500.
    ServerError = 4,
}

/// An HTTP authentication service for the `http` backend (its protocol: POST JSON
/// `{"username","password"}`), written against raw TCP so it can misbehave at will.
pub struct AuthService {
    pub addr: SocketAddr,
    mode: Arc<AtomicU8>,
    calls: Arc<std::sync::atomic::AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for AuthService {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl AuthService {
    pub async fn start() -> AuthService {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mode = Arc::new(AtomicU8::new(Mode::Healthy as u8));
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (m, c) = (mode.clone(), calls.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (m, c) = (m.clone(), c.clone());
                tokio::spawn(async move {
                    let _ = serve_auth(stream, m, c).await;
                });
            }
        });
        AuthService {
            addr,
            mode,
            calls,
            task,
        }
    }

    pub fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

async fn serve_auth(
    mut s: TcpStream,
    mode: Arc<AtomicU8>,
    calls: Arc<std::sync::atomic::AtomicUsize>,
) -> std::io::Result<()> {
    // One request per connection (we answer `Connection: close`).
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let body = loop {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = s.read(&mut chunk).await?;
                if n == 0 {
                    return Ok(());
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            break buf[end + 4..end + 4 + len].to_vec();
        }
    };
    calls.fetch_add(1, Ordering::SeqCst);
    let respond = |status: &str, body: &str| {
        format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let out = match mode.load(Ordering::SeqCst) {
        1 => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            respond("200 OK", r#"{"authenticated": true, "username": "alice"}"#)
        }
        2 => respond("200 OK", "<html>definitely not json"),
        3 => "\x00\x7fSSH-2.0-garbage\r\n\r\n\u{1}\u{2}".to_string(),
        4 => respond("500 Internal Server Error", "{}"),
        _ => {
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            match (v["username"].as_str(), v["password"].as_str()) {
                (Some("alice"), Some("alice-pw")) => respond(
                    "200 OK",
                    r#"{"authenticated": true, "username": "alice", "email": "alice@example.org"}"#,
                ),
                (Some("alice"), _) => respond("401 Unauthorized", "{}"),
                _ => respond("404 Not Found", "{}"),
            }
        }
    };
    s.write_all(out.as_bytes()).await?;
    s.shutdown().await
}

/// A gateway started from `yaml` (written to a temp dir as `gateway.yaml`) through the real
/// loader and chain builder, serving on 127.0.0.1:0.
pub struct Gw {
    pub gateway: Arc<Gateway>,
    pub running: Option<Running>,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
}

impl Gw {
    pub async fn start(yaml: &str) -> Gw {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gateway.yaml");
        std::fs::write(&path, yaml).unwrap();
        let runtime = build_runtime(&path, 1, None, &default_chain_builder())
            .await
            .unwrap_or_else(|e| panic!("config builds: {e}"));
        let gateway = Gateway::new(runtime, Arc::new(Metrics::new()));
        let running = Running::start(gateway.clone(), "127.0.0.1:0".parse().unwrap(), None)
            .await
            .expect("gateway starts");
        let addr = running.addr;
        Gw {
            gateway,
            running: Some(running),
            addr,
            dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

/// The common head of the fault configs: an upstream, memory sessions, no credential cache (it
/// would hide a backend outage from Basic requests) and a lockout that never triggers.
pub fn head(upstream: SocketAddr) -> String {
    format!(
        r#"
server:
  public_url: "http://127.0.0.1:8080"
upstream:
  url: "http://{upstream}"
  connect_timeout: 1s
  timeout: 2s
session:
  secure: false
  secret: "0123456789abcdef0123456789abcdef-test"
cache:
  credentials_ttl: 0s
protection:
  max_failures: 100000
routes:
  - match: {{ path: / }}
    access: authenticated
"#
    )
}

/// Number of open file descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Polls `f` every 100 ms until it is true or `within` passed; returns whether it became true.
pub async fn eventually<F, Fut>(within: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if f().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `true` when env `CI=true`: tests needing an unreachable external service must then fail.
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

//! End-to-end: the access log is one JSON line per request with the decision, and never holds a
//! password, cookie or token. Alone in its binary because it installs a subscriber.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use support::{Harness, basic, client, login};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn access_log_is_structured_and_secret_free() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .finish();
    // The test runtime is single-threaded: every gateway task logs through this subscriber.
    let _guard = tracing::subscriber::set_default(subscriber);

    let h = Harness::start().await;
    let c = client();
    let token = basic("alice", "alice-pw");
    let r = c
        .get(h.url("/app/page?q=1"))
        .header("authorization", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .get(h.url("/app/page"))
        .header("authorization", basic("alice", "wrong-secret-pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let jar = login(&h, "bob", "bob-pw").await;
    let session = jar.cookies["gw_session"].clone();
    let r = c
        .get(h.url("/admin/x"))
        .header("cookie", jar.header())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    for secret in [
        "alice-pw",
        "wrong-secret-pw",
        "bob-pw",
        session.as_str(),
        token.trim_start_matches("Basic "),
    ] {
        assert!(!text.contains(secret), "log holds a secret: {secret}");
    }
    let access: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("every line is JSON"))
        .filter(|v| v["target"] == "gateway::access")
        .collect();
    let allowed = access
        .iter()
        .find(|v| v["path"] == "/app/page" && v["status"] == 200)
        .expect("access line for the allowed request");
    assert_eq!(allowed["method"], "GET");
    assert_eq!(allowed["decision"], "allowed");
    assert_eq!(allowed["user"], "alice");
    assert_eq!(allowed["identity"], "basic");
    assert_eq!(allowed["backend"], "test");
    assert_eq!(allowed["route"], "5", "routes are counted from 1");
    assert_eq!(allowed["config_version"], 1);
    assert!(allowed["elapsed_us"].as_u64().is_some());
    let refused = access
        .iter()
        .find(|v| v["path"] == "/app/page" && v["status"] == 401)
        .expect("access line for the refused request");
    assert_eq!(refused["decision"], "challenge");
    assert_eq!(refused["user"], "-");
    assert!(refused["trace"].as_str().unwrap().contains("test=rejected"));
    let admin = access
        .iter()
        .find(|v| v["path"] == "/admin/x")
        .expect("access line for the session request");
    assert_eq!(admin["identity"], "session");
    assert_eq!(admin["user"], "bob");
    assert_eq!(admin["route"], "2");
}

/// Without `session.secret`, start-up says once (at WARN, naming the file) that the secret was
/// generated; a reload does not repeat it; a configured secret says nothing.
#[tokio::test]
async fn a_generated_session_secret_is_announced_once_with_its_file() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let dir = tempfile::tempdir().unwrap();
    let upstream: std::net::SocketAddr = "127.0.0.1:9".parse().unwrap();
    let generated = support::parse_config(
        &support::BASE_CONFIG.replace("  secret: \"0123456789abcdef0123456789abcdef-test\"\n", ""),
        upstream,
    );
    assert!(generated.session.secret.is_none());
    let services = gateway::__test::Services::from_config(&generated, dir.path(), dir.path())
        .await
        .expect("services");
    let reloaded =
        gateway::__test::Services::carry_over(&services, &generated, dir.path(), dir.path())
            .await
            .expect("reload");
    drop(reloaded);
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let file = dir.path().join("session.secret");
    assert!(file.is_file(), "the secret was written");
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("session.secret is not set"))
        .collect();
    assert_eq!(warnings.len(), 1, "once, not per reload: {log}");
    assert!(warnings[0].contains(" WARN "), "{log}");
    assert!(
        warnings[0].contains(&file.display().to_string()),
        "names the file: {log}"
    );
    assert!(!warnings[0].contains(&std::fs::read_to_string(&file).unwrap().trim().to_string()));

    let configured = support::parse_config(support::BASE_CONFIG, upstream);
    captured.0.lock().unwrap().clear();
    gateway::__test::Services::from_config(&configured, dir.path(), dir.path())
        .await
        .expect("services");
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(!log.contains("session.secret"), "{log}");
}

/// The real `authgate run`, stderr a file (not a terminal): text lines without ANSI colour,
/// written by the background writer, and the access line of a request that finishes after
/// SIGTERM still reaches stderr before the process exits 0; `/metrics` counts dropped lines.
#[tokio::test]
async fn the_last_access_line_reaches_stderr_on_exit() {
    use std::process::{Command, Stdio};
    use std::time::Duration;

    let dir = tempfile::tempdir().unwrap();
    let upstream = support::RecordingUpstream::start().await;
    let free_port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (port, admin) = (free_port(), free_port());
    let path = dir.path().join("gateway.yaml");
    std::fs::write(
        &path,
        format!(
            r#"
server:
  listen: "127.0.0.1:{port}"
  public_url: "http://127.0.0.1:{port}"
admin:
  listen: "127.0.0.1:{admin}"
upstream:
  url: "http://{}"
session:
  secure: false
  secret: "0123456789abcdef0123456789abcdef-test"
log:
  format: text
  level: info
chain:
  - name: demo
    type: static
    options:
      allow_plaintext: true
      users:
        alice: {{ password: alice-pw }}
routes:
  - match: {{ path: / }}
    access: public
"#,
            upstream.addr
        ),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let stderr_path = dir.path().join("stderr.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_authgate"))
        .args(["run", "--config"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .expect("gateway starts");
    let pid = child.id();
    let kill = |sig: &str| {
        let _ = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status();
    };
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut up = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if !up {
        kill("KILL");
        panic!("the gateway did not listen");
    }
    let metrics = client()
        .get(format!("http://127.0.0.1:{admin}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("gateway_log_dropped_total 0"), "{metrics}");

    // A slow request on the wire, then SIGTERM: its access line is logged while shutting down.
    let in_flight = tokio::spawn(support::raw(
        addr,
        "GET /delay/last-line HTTP/1.1\r\nHost: gw\r\n\r\n",
    ));
    tokio::time::sleep(Duration::from_millis(200)).await;
    kill("TERM");
    let resp = in_flight.await.unwrap();
    assert_eq!(support::raw_status(&resp), 200, "{resp}");
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    if !status.success() {
        kill("KILL");
    }
    assert!(status.success(), "exit status {status:?}");

    let log = std::fs::read_to_string(&stderr_path).unwrap();
    assert!(
        !log.contains('\u{1b}'),
        "no ANSI escapes off a terminal: {log}"
    );
    let access = log
        .lines()
        .find(|l| l.contains("gateway::access") && l.contains("path=/delay/last-line"))
        .unwrap_or_else(|| panic!("the last access line was lost: {log}"));
    assert!(access.contains("status=200"), "{access}");
    assert!(access.contains("route=1"), "{access}");
    assert!(
        access.contains("trace= "),
        "an empty trace, as before: {access}"
    );
    assert!(log.contains("shutdown requested"), "{log}");
    assert!(
        log.find("shutdown requested") < log.find("path=/delay/last-line"),
        "the access line came after the shutdown began: {log}"
    );
}

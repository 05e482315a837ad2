//! End-to-end: the real `authgate run` binary with a built-in backend: it serves, reloads on
//! SIGHUP, drains and exits 0 on SIGTERM, and exits 2 on an invalid config.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use support::{RecordingUpstream, basic, client};

fn free_port() -> u16 {
    // The binary needs a concrete port in its config; take one the kernel just handed out.
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn config(port: u16, admin: u16, upstream: std::net::SocketAddr, static_access: &str) -> String {
    format!(
        r#"
server:
  listen: "127.0.0.1:{port}"
  public_url: "http://127.0.0.1:{port}"
admin:
  listen: "127.0.0.1:{admin}"
upstream:
  url: "http://{upstream}"
session:
  secure: false
  secret: "0123456789abcdef0123456789abcdef-test"
log:
  format: json
chain:
  - name: demo
    type: static
    options:
      allow_plaintext: true
      users:
        alice: {{ password: alice-pw, groups: [staff] }}
routes:
  - match: {{ path: /static/ }}
    access: {static_access}
"#
    )
}

/// Writes a config holding a literal secret as an operator must: readable by its owner only
/// (`authgate run` refuses it otherwise).
fn write_private(path: &std::path::Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn signal(pid: u32, sig: &str) {
    assert!(
        Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status()
            .unwrap()
            .success()
    );
}

async fn wait_for(addr: (&str, u16)) {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("nothing listening on {addr:?}");
}

#[tokio::test]
async fn gateway_run_serves_reloads_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = RecordingUpstream::start().await;
    let (port, admin) = (free_port(), free_port());
    let path = dir.path().join("gateway.yaml");
    write_private(&path, &config(port, admin, upstream.addr, "public"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_authgate"))
        .args(["run", "--config"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("gateway starts");
    let pid = child.id();
    let guard = scopeguard(pid);
    wait_for(("127.0.0.1", port)).await;
    let base = format!("http://127.0.0.1:{port}");
    let c = client();
    assert_eq!(
        c.get(format!("{base}/static/x"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let ok = c
        .get(format!("{base}/app"))
        .header("authorization", basic("alice", "alice-pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(
        upstream.last().unwrap().get("x-remote-user").as_deref(),
        Some("alice")
    );
    let ready = c
        .get(format!("http://127.0.0.1:{admin}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);

    // Write the new config in place (same inode): the watcher or SIGHUP picks it up.
    write_private(&path, &config(port, admin, upstream.addr, "deny"));
    signal(pid, "HUP");
    let mut denied = false;
    for _ in 0..50 {
        if c.get(format!("{base}/static/x"))
            .send()
            .await
            .unwrap()
            .status()
            == 403
        {
            denied = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(denied, "reload not applied");

    // SIGTERM during a slow request (raw TCP: the request is on the wire before the signal):
    // it completes, then the process exits 0.
    let in_flight = tokio::spawn(support::raw(
        std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        "GET /delay HTTP/1.1\r\nHost: gw\r\nAuthorization: Basic YWxpY2U6YWxpY2UtcHc=\r\n\r\n",
    ));
    tokio::time::sleep(Duration::from_millis(200)).await;
    signal(pid, "TERM");
    let resp = in_flight.await.unwrap();
    assert_eq!(support::raw_status(&resp), 200, "{resp}");
    assert!(resp.ends_with("delayed"), "{resp}");
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    drop(guard);
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn gateway_run_exits_2_on_an_invalid_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.yaml");
    std::fs::write(
        &path,
        "upstream: {url: \"http://127.0.0.1:1\"}\nroutes: nope\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_authgate"))
        .args(["run", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("gateway.yaml:"), "{stderr}");
}

/// A literal secret in a config file other users can read stops `authgate run` (exit 2, before
/// listening), naming the file, the key with its line and column, and the fix.
#[test]
fn gateway_run_refuses_a_readable_config_with_a_literal_secret() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.yaml");
    let port = free_port();
    std::fs::write(
        &path,
        config(port, free_port(), "127.0.0.1:1".parse().unwrap(), "public"),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_authgate"))
        .args(["run", "--config"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`authgate run` started with a readable literal secret");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let shown = path.display();
    assert!(
        stderr.contains(&format!(
            "{shown}:11:11: `session.secret` is written in this file, which other users can read (mode 0644): run `chmod 600 {shown}`"
        )),
        "{stderr}"
    );
    assert!(
        std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(),
        "it did not listen"
    );
}

/// Kills the child if the test fails before it exits.
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(self.0.to_string())
                .status();
        }
    }
}

fn scopeguard(pid: u32) -> KillOnDrop {
    KillOnDrop(pid)
}

//! End-to-end: the real `authgate run` binary with a built-in backend: it serves, reloads on
//! SIGHUP, drains and exits 0 on SIGTERM, and exits 2 on an invalid config.

use crate::support;

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

/// The config of [`audit_trail_metrics_and_lockouts`]: a static user, a chain entry whose
/// server is down (`on_error: next`), a short lockout, the audit trail to `audit` as JSON.
fn audited_config(
    port: u16,
    admin: u16,
    upstream: std::net::SocketAddr,
    audit: &std::path::Path,
    alice_password: &str,
) -> String {
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
  revalidate: 1s
protection:
  max_failures: 3
  window: 1m
  lockout: 2s
log:
  format: json
audit:
  format: json
  to: "{audit}"
chain:
  - name: demo
    type: static
    options:
      allow_plaintext: true
      users:
        alice: {{ password: {alice_password}, groups: [staff] }}
  - name: directory
    type: ldap
    on_error: next
    timeout: 2s
    options:
      url: ldap://127.0.0.1:1
      user_dn: "uid={{username}},dc=example,dc=org"
"#,
        audit = audit.display()
    )
}

/// The audit file's events, parsed.
fn audit_events(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// Waits until the audit file holds an event matching `pred` (the writer is asynchronous).
async fn audit_event(
    path: &std::path::Path,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    for _ in 0..100 {
        if let Some(e) = audit_events(path).into_iter().find(&pred) {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "no such audit event in:\n{}",
        std::fs::read_to_string(path).unwrap_or_default()
    );
}

/// The value of the sample `name` (with its labels, as written) in a Prometheus exposition.
fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// `authgate lockouts ARGS` against the config at `path`; its stdout.
fn lockouts_cli(path: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_authgate"))
        .arg("lockouts")
        .args(args)
        .arg("--config")
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// An operator's view of `authgate run`: each login failure says why in the audit trail (wrong
/// password, unknown user, locked) with every chain step, without the password; a lockout's
/// start, its clearing by `authgate lockouts clear` and its expiry; a form login, a logout, a
/// session ended by a password change, reloads applied and refused; the metrics an SRE
/// scrapes; and a WARN at start for the backend that is down.
#[tokio::test]
async fn audit_trail_metrics_and_lockouts() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = RecordingUpstream::start().await;
    let (port, admin) = (free_port(), free_port());
    let path = dir.path().join("gateway.yaml");
    let audit = dir.path().join("audit.log");
    write_private(
        &path,
        &audited_config(port, admin, upstream.addr, &audit, "alice-pw"),
    );
    let log = std::fs::File::create(dir.path().join("stdout.log")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_authgate"))
        .args(["run", "--config"])
        .arg(&path)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("gateway starts");
    let pid = child.id();
    let guard = scopeguard(pid);
    wait_for(("127.0.0.1", port)).await;
    let base = format!("http://127.0.0.1:{port}");
    let c = client();
    let get_as = |user: &str, password: &str| {
        c.get(format!("{base}/app"))
            .header("authorization", basic(user, password))
            .send()
    };

    // A wrong password, then an unknown user with an escape sequence in the name.
    assert_eq!(get_as("alice", "wrong-pw-1").await.unwrap().status(), 401);
    let wrong = audit_event(&audit, |e| e["event"] == "login_failure").await;
    assert_eq!(wrong["reason"], "wrong_password");
    assert_eq!(wrong["method"], "basic");
    assert_eq!(wrong["attempted_user"], "alice");
    assert_eq!(wrong["client_ip"], "127.0.0.1");
    assert_eq!(wrong["steps"][0]["entry"], "demo");
    assert_eq!(wrong["steps"][0]["outcome"], "rejected");
    assert_eq!(wrong["steps"][1]["entry"], "directory");
    assert_eq!(wrong["steps"][1]["outcome"], "unavailable");
    assert!(wrong["ts"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        get_as("mallory", "whatever-pw").await.unwrap().status(),
        401
    );
    let unknown = audit_event(&audit, |e| e["reason"] == "unknown_user").await;
    assert_eq!(unknown["attempted_user"], "mallory");
    assert_eq!(unknown["steps"][0]["outcome"], "not_found");
    // The credential policy refuses a control character before any backend; the name is
    // written escaped.
    assert_eq!(
        get_as("mallory\u{1b}[2J", "whatever-pw")
            .await
            .unwrap()
            .status(),
        401
    );
    let policy = audit_event(&audit, |e| e["reason"] == "policy").await;
    assert_eq!(policy["attempted_user"], "mallory\\u{1b}[2J");
    assert_eq!(policy["steps"][0]["entry"], "policy");

    // A success names the backend.
    assert_eq!(get_as("alice", "alice-pw").await.unwrap().status(), 200);
    let ok = audit_event(&audit, |e| e["event"] == "login_success").await;
    assert_eq!(ok["user"], "alice");
    assert_eq!(ok["backend"], "demo");
    assert_eq!(ok["steps"][0]["outcome"], "authenticated");

    // Three wrong passwords lock alice out: the right one is then refused as `locked`.
    for i in 2..=4 {
        get_as("alice", &format!("wrong-pw-{i}")).await.unwrap();
    }
    let start = audit_event(&audit, |e| e["event"] == "lockout_start").await;
    assert_eq!(start["scope"], "user");
    assert_eq!(start["user"], "alice");
    assert_eq!(start["client_ip"], "127.0.0.1");
    assert_eq!(start["seconds"], 2);
    assert_eq!(get_as("alice", "alice-pw").await.unwrap().status(), 401);
    audit_event(&audit, |e| {
        e["reason"] == "locked" && e["attempted_user"] == "alice"
    })
    .await;

    // The metrics say the same, with bounded labels.
    let metrics = c
        .get(format!("http://127.0.0.1:{admin}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        sample(
            &metrics,
            "gateway_auth_failures_total{reason=\"wrong_password\"}"
        ),
        Some(4.0),
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            "gateway_auth_failures_total{reason=\"unknown_user\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&metrics, "gateway_auth_failures_total{reason=\"policy\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&metrics, "gateway_auth_failures_total{reason=\"locked\"}"),
        Some(1.0)
    );
    assert_eq!(sample(&metrics, "gateway_lockouts_active"), Some(1.0));
    assert_eq!(
        sample(
            &metrics,
            &format!(
                "gateway_build_info{{version=\"{}\",commit=\"{}\"}}",
                env!("CARGO_PKG_VERSION"),
                authgate_commit()
            )
        ),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            "gateway_request_duration_seconds_count{decision=\"allowed\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
    assert!(!metrics.contains("alice"), "no usernames in labels");

    // The admin listener's lockout endpoints refuse what a web page could send: a form body,
    // or a Host that is not loopback (DNS rebinding).
    let clear = format!("http://127.0.0.1:{admin}/lockouts/clear");
    let form = c
        .post(&clear)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("user=alice")
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 403);
    let rebound = c
        .get(format!("http://127.0.0.1:{admin}/lockouts"))
        .header("host", "attacker.example:9090")
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status(), 403);

    // The operator lists the lockout and clears it (memory store: through the admin listener).
    let listed = lockouts_cli(&path, &["list"]);
    assert!(
        listed.starts_with("USER   CLIENT     REMAINING\nalice  127.0.0.1  "),
        "{listed}"
    );
    assert_eq!(
        lockouts_cli(&path, &["clear", "ALICE"]),
        "cleared the lockout of `alice` from 127.0.0.1\n"
    );
    let cleared = audit_event(&audit, |e| e["event"] == "lockout_end").await;
    assert_eq!(cleared["reason"], "cleared");
    assert_eq!(lockouts_cli(&path, &["list"]), "no lockouts in force\n");
    assert_eq!(get_as("alice", "alice-pw").await.unwrap().status(), 200);

    // A lockout left alone ends by itself.
    for i in 5..=7 {
        get_as("alice", &format!("wrong-pw-{i}")).await.unwrap();
    }
    let expired = audit_event(&audit, |e| {
        e["event"] == "lockout_end" && e["reason"] == "expired"
    })
    .await;
    assert_eq!(expired["user"], "alice");

    // A form login, and a logout.
    let mut jar = support::Jar::default();
    let form = c.get(format!("{base}/_auth/login")).send().await.unwrap();
    jar.absorb(&form);
    let csrf = support::hidden_field(&form.text().await.unwrap(), "csrf").unwrap();
    let posted = c
        .post(format!("{base}/_auth/login"))
        .header("cookie", jar.header())
        .form(&[
            ("username", "alice"),
            ("password", "alice-pw"),
            ("csrf", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 303);
    jar.absorb(&posted);
    audit_event(&audit, |e| {
        e["event"] == "login_success" && e["method"] == "form"
    })
    .await;
    let confirm = c
        .get(format!("{base}/_auth/logout"))
        .header("cookie", jar.header())
        .send()
        .await
        .unwrap();
    let csrf = support::hidden_field(&confirm.text().await.unwrap(), "csrf").unwrap();
    let out = c
        .post(format!("{base}/_auth/logout"))
        .header("cookie", jar.header())
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    let logout = audit_event(&audit, |e| e["event"] == "logout").await;
    assert_eq!(logout["user"], "alice");
    assert_eq!(logout["backend"], "demo");

    // A new session, then a reload that changes alice's password: the reload is audited, and
    // the session ends at its next revalidation.
    let mut jar = support::Jar::default();
    let form = c.get(format!("{base}/_auth/login")).send().await.unwrap();
    jar.absorb(&form);
    let csrf = support::hidden_field(&form.text().await.unwrap(), "csrf").unwrap();
    let posted = c
        .post(format!("{base}/_auth/login"))
        .header("cookie", jar.header())
        .form(&[
            ("username", "alice"),
            ("password", "alice-pw"),
            ("csrf", &csrf),
        ])
        .send()
        .await
        .unwrap();
    jar.absorb(&posted);
    write_private(
        &path,
        &audited_config(port, admin, upstream.addr, &audit, "alice-new-pw"),
    );
    signal(pid, "HUP");
    let reload = audit_event(&audit, |e| e["event"] == "reload").await;
    assert_eq!(reload["result"], "ok");
    assert_eq!(reload["version"], 2);
    assert_eq!(reload["previous_version"], 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let after = c
        .get(format!("{base}/app"))
        .header("cookie", jar.header())
        .send()
        .await
        .unwrap();
    assert_ne!(after.status(), 200, "the session ended");
    let ended = audit_event(&audit, |e| e["event"] == "session_ended").await;
    assert_eq!(ended["reason"], "credentials_changed");
    assert_eq!(ended["user"], "alice");

    // A refused config: the old one keeps serving, and the audit says why.
    write_private(
        &path,
        "upstream: {url: \"http://127.0.0.1:1\"}\nroutes: nope\n",
    );
    signal(pid, "HUP");
    let refused = audit_event(&audit, |e| {
        e["event"] == "reload" && e["result"] == "refused"
    })
    .await;
    assert_eq!(refused["version"], 2);
    assert!(
        refused["errors"][0]
            .as_str()
            .unwrap()
            .contains("gateway.yaml:"),
        "{refused}"
    );

    signal(pid, "TERM");
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    drop(guard);
    assert!(status.success(), "exit status {status:?}");

    // Never a password, in the audit trail or the log.
    let trail = std::fs::read_to_string(&audit).unwrap();
    let output = std::fs::read_to_string(dir.path().join("stdout.log")).unwrap();
    for secret in ["alice-pw", "wrong-pw", "whatever-pw", "alice-new-pw"] {
        assert!(!trail.contains(secret), "{secret} in the audit trail");
        assert!(!output.contains(secret), "{secret} in the log");
    }
    // The entry that was down at start was named in a WARN.
    assert!(
        output.lines().any(|l| l.contains("WARN")
            && l.contains("directory")
            && l.contains("unavailable at start")),
        "{output}"
    );
}

/// The commit `authgate --version` names.
fn authgate_commit() -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_authgate"))
        .arg("--version")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    text.split("(commit ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .unwrap()
        .to_string()
}

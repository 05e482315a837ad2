//! End-to-end: hot reload from a file, the admin listener, graceful shutdown; listeners and the
//! TLS certificate following a reload (`live`).

use crate::support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use gateway::__test::Metrics;
use gateway::__test::{Gateway, Running};
use gateway::__test::{Reloader, build_runtime};
use gateway::launch::default_chain_builder;
use support::{RecordingUpstream, basic, client, default_backend, login, registered};

fn config_text(upstream: std::net::SocketAddr, table: &str, static_access: &str) -> String {
    format!(
        r#"
server:
  listen: "127.0.0.1:0"
  public_url: "http://127.0.0.1:8080"
upstream:
  url: "http://{upstream}"
  timeout: 5s
session:
  secure: false
  secret: "0123456789abcdef0123456789abcdef-test"
data_dir: data
chain:
  - name: test
    type: e2e_table
    options:
      table: {table}
routes:
  - match: {{ path: /static/ }}
    access: {static_access}
  - match: {{ path: /delay }}
    access: {static_access}
  - match: {{ path: / }}
    access: authenticated
"#
    )
}

struct Setup {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    upstream: RecordingUpstream,
    gw: Arc<Gateway>,
    running: Option<Running>,
    reloader: Arc<Reloader>,
    table: String,
}

impl Setup {
    async fn new(name: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let upstream = RecordingUpstream::start().await;
        let backend = default_backend();
        let table = format!("{name}-{}", std::process::id());
        registered::share(&table, &backend);
        let path = dir.path().join("gateway.yaml");
        std::fs::write(&path, config_text(upstream.addr, &table, "public")).unwrap();
        let builder = default_chain_builder();
        let rt = build_runtime(&path, 1, None, &builder)
            .await
            .expect("first config loads");
        let gw = Gateway::new(rt, Arc::new(Metrics::new()));
        let running = Running::start(gw.clone(), "127.0.0.1:0".parse().unwrap(), None)
            .await
            .unwrap();
        let reloader = Arc::new(Reloader::new(gw.clone(), &path, builder));
        Setup {
            _dir: dir,
            path,
            upstream,
            gw,
            running: Some(running),
            reloader,
            table,
        }
    }

    /// The served config version once it is `want`, or the last one seen after `limit`.
    async fn version_within(&self, want: u64, limit: Duration) -> u64 {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let version = self.gw.current().version();
            if version == want || std::time::Instant::now() >= deadline {
                return version;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn url(&self, p: &str) -> String {
        format!("http://{}{}", self.running.as_ref().unwrap().addr, p)
    }

    fn write(&self, static_access: &str) {
        write_atomically(
            &self.path,
            &config_text(self.upstream.addr, &self.table, static_access),
        );
    }
}

fn write_atomically(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

async fn status(url: &str) -> u16 {
    client().get(url).send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn a_bad_reload_keeps_the_old_config_and_a_good_one_swaps_routes() {
    let s = Setup::new("swap").await;
    assert_eq!(status(&s.url("/static/x")).await, 200);

    write_atomically(&s.path, "server: [this is not: a mapping\n");
    assert!(s.reloader.reload().await.is_err());
    assert_eq!(s.gw.current().version(), 1);
    assert_eq!(status(&s.url("/static/x")).await, 200);

    // Valid YAML but an unknown route access: refused as well.
    s.write("everybody");
    assert!(s.reloader.reload().await.is_err());
    assert_eq!(status(&s.url("/static/x")).await, 200);

    s.write("deny");
    assert_eq!(s.reloader.reload().await.unwrap(), 2);
    assert_eq!(status(&s.url("/static/x")).await, 403);

    let metrics = s.gw.metrics().encode();
    assert!(
        metrics.contains("gateway_reloads_total{result=\"error\"} 2"),
        "{metrics}"
    );
    assert!(metrics.contains("gateway_reloads_total{result=\"ok\"} 1"));
    assert!(metrics.contains("gateway_config_version 2"));
}

#[tokio::test]
async fn in_flight_requests_finish_on_their_config_and_sessions_survive() {
    let s = Setup::new("inflight").await;
    // A session made before the reload.
    let h = support::Harness {
        gateway: s.gw.clone(),
        running: None,
        upstream: s.upstream.clone(),
        backend: default_backend(),
        addr: s.running.as_ref().unwrap().addr,
        dir: tempfile::tempdir().unwrap(),
    };
    let jar = login(&h, "alice", "alice-pw").await;

    let url = s.url("/delay");
    let in_flight = tokio::spawn(async move { status(&url).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    s.write("deny");
    assert_eq!(s.reloader.reload().await.unwrap(), 2);
    assert_eq!(
        in_flight.await.unwrap(),
        200,
        "in-flight request was cut or re-decided"
    );
    assert_eq!(status(&s.url("/delay")).await, 403);

    let who = client()
        .get(s.url("/_auth/whoami"))
        .header("cookie", jar.header())
        .send()
        .await
        .unwrap();
    assert_eq!(who.status(), 200, "session lost on reload");
}

#[tokio::test]
async fn a_file_change_triggers_a_reload() {
    let s = Setup::new("watch").await;
    let task = s.reloader.clone().spawn();
    tokio::time::sleep(Duration::from_millis(200)).await;
    s.write("deny");
    let version = s.version_within(2, Duration::from_secs(5)).await;
    task.abort();
    assert_eq!(version, 2, "file change not picked up");
    assert_eq!(status(&s.url("/static/x")).await, 403);
}

/// A log file written beside the config (the soak's `gateway.err`, an access log) must not
/// hold reloads off: the watcher only counts events on the config file (or `..data` swaps), and
/// the debounce gives up waiting for quiet after `MAX_DEBOUNCE`.
#[tokio::test]
async fn writes_to_other_files_in_the_directory_do_not_hold_off_a_reload() {
    let s = Setup::new("busydir").await;
    let task = s.reloader.clone().spawn();
    let log = s.path.with_file_name("gateway.log");
    let writer = tokio::spawn(async move {
        use std::io::Write;
        let mut f = std::fs::File::create(&log).unwrap();
        loop {
            writeln!(f, "a log line").unwrap();
            f.flush().unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    s.write("deny");
    let version = s.version_within(2, Duration::from_secs(5)).await;
    writer.abort();
    task.abort();
    assert_eq!(
        version, 2,
        "file change not picked up while another file was written"
    );
    assert_eq!(status(&s.url("/static/x")).await, 403);
}

#[tokio::test]
async fn admin_serves_metrics_health_and_readiness() {
    let s = Setup::new("admin").await;
    let backend = default_backend();
    registered::share(&s.table, &backend);
    s.write("public");
    s.reloader.reload().await.unwrap();
    let admin = Running::start_admin(s.gw.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let c = client();
    let base = format!("http://{}", admin.addr);
    assert_eq!(status(&s.url("/static/x")).await, 200);
    let r = c
        .get(s.url("/app"))
        .header("authorization", basic("alice", "alice-pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    assert_eq!(status(&format!("{base}/healthz")).await, 200);
    let ready = c.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let v: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(v["backends"]["test"], "ok");

    let m = c
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        m.contains("gateway_requests_total{decision=\"public\",status=\"200\"} 1"),
        "{m}"
    );
    assert!(m.contains("gateway_requests_total{decision=\"allowed\",status=\"200\"} 1"));
    assert!(
        m.contains("gateway_backend_decisions_total{entry=\"test\",outcome=\"authenticated\"} 1")
    );
    assert!(m.contains("gateway_backend_latency_seconds_count{entry=\"test\"} 1"));
    assert!(m.contains("gateway_config_version 2"));
    assert!(m.contains("gateway_active_sessions 0"), "{m}");
    let h = support::Harness {
        gateway: s.gw.clone(),
        running: None,
        upstream: s.upstream.clone(),
        backend: default_backend(),
        addr: s.running.as_ref().unwrap().addr,
        dir: tempfile::tempdir().unwrap(),
    };
    login(&h, "alice", "alice-pw").await;
    let m = c
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(m.contains("gateway_active_sessions 1"), "{m}");

    backend
        .healthy
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let down = c.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(down.status(), 503);
    admin.shutdown().await;
}

#[tokio::test]
async fn graceful_shutdown_lets_in_flight_requests_finish() {
    let mut s = Setup::new("graceful").await;
    let url = s.url("/delay");
    let in_flight = tokio::spawn(async move { status(&url).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let addr = s.running.as_ref().unwrap().addr;
    let running = s.running.take().unwrap();
    let stopping = tokio::spawn(running.shutdown());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still accepting after shutdown"
    );
    assert_eq!(in_flight.await.unwrap(), 200);
    tokio::time::timeout(Duration::from_secs(5), stopping)
        .await
        .expect("shutdown finished")
        .unwrap();
}

#[tokio::test]
async fn users_authenticated_by_a_provisioning_entry_are_mirrored_locally() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = RecordingUpstream::start().await;
    registered::share("provision", &default_backend());
    let db = dir.path().join("users.db");
    let path = dir.path().join("gateway.yaml");
    std::fs::write(
        &path,
        format!(
            r#"
server:
  public_url: "http://127.0.0.1:8080"
upstream:
  url: "http://{}"
session:
  secure: false
  secret: "0123456789abcdef0123456789abcdef-test"
users_db: "sqlite://{}"
chain:
  - name: test
    type: e2e_table
    provision: update
    options: {{ table: provision }}
"#,
            upstream.addr,
            db.display()
        ),
    )
    .unwrap();
    let builder = default_chain_builder();
    let rt = build_runtime(&path, 1, None, &builder)
        .await
        .expect("loads");
    let gw = Gateway::new(rt, Arc::new(Metrics::new()));
    let running = Running::start(gw, "127.0.0.1:0".parse().unwrap(), None)
        .await
        .unwrap();
    let resp = client()
        .get(format!("http://{}/app", running.addr))
        .header("authorization", basic("bob", "bob-pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let store = auth_backends::UserStore::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let bob = store
        .get_by_username("bob")
        .await
        .unwrap()
        .expect("bob was provisioned");
    let user = bob.to_user();
    assert!(user.groups.contains("admins"), "{user:?}");
    assert_eq!(user.email.as_deref(), Some("bob@example.org"));
    assert!(store.get_by_username("alice").await.unwrap().is_none());
    running.shutdown().await;
}

#[tokio::test]
async fn a_kubernetes_style_symlink_swap_reloads_and_a_touch_does_not() {
    use std::os::unix::fs::symlink;
    let s = Setup::new("k8s").await;
    // Lay the config out as a ConfigMap volume does:
    // gateway.yaml -> ..data/gateway.yaml, ..data -> ..v1
    let dir = s.path.parent().unwrap().to_path_buf();
    let v1 = dir.join("..v1");
    std::fs::create_dir(&v1).unwrap();
    std::fs::write(
        v1.join("gateway.yaml"),
        config_text(s.upstream.addr, &s.table, "public"),
    )
    .unwrap();
    symlink("..v1", dir.join("..data")).unwrap();
    std::fs::remove_file(&s.path).unwrap();
    symlink("..data/gateway.yaml", &s.path).unwrap();
    let task = s.reloader.clone().spawn();
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Same content, new mtime: no reload.
    std::fs::write(
        v1.join("gateway.yaml"),
        config_text(s.upstream.addr, &s.table, "public"),
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(s.gw.current().version(), 1, "reloaded an unchanged file");

    let v2 = dir.join("..v2");
    std::fs::create_dir(&v2).unwrap();
    std::fs::write(
        v2.join("gateway.yaml"),
        config_text(s.upstream.addr, &s.table, "deny"),
    )
    .unwrap();
    symlink("..v2", dir.join("..data_tmp")).unwrap();
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    let version = s.version_within(2, Duration::from_secs(5)).await;
    task.abort();
    assert_eq!(version, 2, "symlink swap not picked up");
    assert_eq!(status(&s.url("/static/x")).await, 403);
}

/// Listeners and the TLS certificate follow a reload of a gateway started from its file
/// (`launch::start`, as `authgate run` does), and the keys a reload cannot change are named.
mod live {
    use std::net::SocketAddr;
    use std::path::{Path, PathBuf};
    use std::process::{Command, Stdio};
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::support::{RecordingUpstream, default_backend, registered};
    use super::{status, write_atomically};

    /// A port nothing listens on now (bound and released).
    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    /// A self-signed certificate for `localhost` and its key, made by `openssl`, with `cn` as
    /// its subject.
    fn make_cert(dir: &Path, cn: &str) -> (PathBuf, PathBuf) {
        let cert = dir.join(format!("{cn}.crt"));
        let key = dir.join(format!("{cn}.key"));
        let status = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec"])
            .args(["-pkeyopt", "ec_paramgen_curve:prime256v1"])
            .args(["-nodes", "-days", "1", "-subj", &format!("/CN={cn}")])
            .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
            .args(["-addext", "basicConstraints=critical,CA:FALSE"])
            .args(["-addext", "extendedKeyUsage=serverAuth"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stderr(Stdio::null())
            .status()
            .expect("openssl runs");
        assert!(status.success(), "openssl made no certificate");
        (cert, key)
    }

    /// The subject of DER certificate `der`, as `openssl x509` prints it.
    fn subject_of(der: &[u8]) -> String {
        let mut child = Command::new("openssl")
            .args([
                "x509", "-inform", "DER", "-noout", "-subject", "-nameopt", "RFC2253",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("openssl runs");
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), der).unwrap();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        text.strip_prefix("subject=")
            .unwrap_or(&text)
            .trim()
            .to_string()
    }

    /// The subject `openssl s_client` sees on a new connection to `addr`.
    async fn s_client_subject(addr: SocketAddr) -> String {
        let out = tokio::process::Command::new("openssl")
            .args([
                "s_client",
                "-connect",
                &addr.to_string(),
                "-servername",
                "localhost",
            ])
            .args(["-nameopt", "RFC2253"])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .await
            .expect("openssl s_client runs");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        text.lines()
            .find_map(|l| l.strip_prefix("subject="))
            .map(|s| s.trim().to_string())
            .unwrap_or(text)
    }

    type Tls = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

    /// A TLS connection to `addr` for `localhost`, trusting the certificates in `roots`.
    async fn tls_connect(addr: SocketAddr, roots: &[&Path]) -> Tls {
        let mut store = rustls::RootCertStore::empty();
        for root in roots {
            for c in rustls_pemfile::certs(&mut std::fs::read(root).unwrap().as_slice()) {
                store.add(c.unwrap()).unwrap();
            }
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth();
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect("localhost".try_into().unwrap(), tcp)
            .await
            .expect("TLS handshake")
    }

    /// The subject of the certificate `stream`'s server presented.
    fn served_subject(stream: &Tls) -> String {
        subject_of(&stream.get_ref().1.peer_certificates().unwrap()[0])
    }

    /// One HTTP/1.1 keep-alive GET on `stream`; the response's status line.
    async fn get_on(stream: &mut Tls, path: &str) -> String {
        stream
            .write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed before a response");
            buf.extend_from_slice(&chunk[..n]);
        }
        let text = String::from_utf8_lossy(&buf).to_string();
        // Drain the body (its length is in the head) so the connection can be reused.
        let len = text
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse::<usize>().unwrap())
            })
            .unwrap_or(0);
        let head_len = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let mut body = buf.len() - head_len;
        while body < len {
            body += stream.read(&mut chunk).await.unwrap();
        }
        text.lines().next().unwrap_or_default().to_string()
    }

    struct Live {
        dir: tempfile::TempDir,
        path: PathBuf,
        upstream: RecordingUpstream,
        table: String,
        started: Option<gateway::launch::Started>,
    }

    impl Live {
        async fn start(name: &str, listen: &[&str], tls: bool, access: &str) -> Live {
            let dir = tempfile::tempdir().unwrap();
            let upstream = RecordingUpstream::start().await;
            let table = format!("live-{name}-{}", std::process::id());
            registered::share(&table, &default_backend());
            let path = dir.path().join("gateway.yaml");
            let mut live = Live {
                dir,
                path,
                upstream,
                table,
                started: None,
            };
            live.write(listen, tls, access);
            live.started = Some(
                gateway::launch::start(&live.path, gateway::launch::default_chain_builder())
                    .await
                    .expect("starts"),
            );
            live
        }

        fn started(&self) -> &gateway::launch::Started {
            self.started.as_ref().unwrap()
        }

        fn write(&self, listen: &[&str], tls: bool, access: &str) {
            self.write_with_admin(listen, tls, access, None);
        }

        fn write_with_admin(&self, listen: &[&str], tls: bool, access: &str, admin: Option<&str>) {
            let listen: Vec<String> = listen.iter().map(|l| format!("\"{l}\"")).collect();
            let admin = admin.map_or(String::new(), |a| format!("admin:\n  listen: \"{a}\"\n"));
            let (scheme, tls) = if tls {
                ("https", "\n  tls: { cert: tls/cert.pem, key: tls/key.pem }")
            } else {
                ("http", "")
            };
            write_atomically(
                &self.path,
                &format!(
                    r#"
server:
  listen: [{listen}]
  public_url: "{scheme}://localhost:8443"{tls}
  shutdown_grace: 5s
{admin}upstream:
  url: "http://{upstream}"
  timeout: 5s
session:
  secure: false
  secret: "0123456789abcdef0123456789abcdef-test"
data_dir: data
chain:
  - name: test
    type: e2e_table
    options: {{ table: {table} }}
routes:
  - match: {{ path: / }}
    access: {access}
"#,
                    listen = listen.join(", "),
                    upstream = self.upstream.addr,
                    table = self.table,
                ),
            );
        }

        /// Installs `cert` and `key` as `tls/cert.pem` and `tls/key.pem` (renamed into place,
        /// as certbot and cert-manager do).
        fn install_cert(&self, cert: &Path, key: &Path) {
            let tls = self.dir.path().join("tls");
            std::fs::create_dir_all(&tls).unwrap();
            write_atomically(
                &tls.join("cert.pem"),
                &std::fs::read_to_string(cert).unwrap(),
            );
            write_atomically(&tls.join("key.pem"), &std::fs::read_to_string(key).unwrap());
        }

        async fn reload(&self) -> Result<u64, gateway::launch::ReloadError> {
            self.started().reload().await
        }

        async fn stop(mut self) {
            if let Some(s) = self.started.take() {
                tokio::time::timeout(Duration::from_secs(10), s.stop())
                    .await
                    .expect("stopped in time");
            }
        }
    }

    #[tokio::test]
    async fn a_reload_binds_a_new_listen_address_and_drains_a_removed_one() {
        let s = Live::start("listen", &["127.0.0.1:0"], false, "public").await;
        let first = s.started().listening()[0];
        let port = free_port();
        let added: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();

        s.write(&["127.0.0.1:0", &added.to_string()], false, "public");
        s.reload().await.unwrap();
        assert_eq!(s.started().listening(), [first, added]);
        assert_eq!(status(&format!("http://{added}/x")).await, 200);
        assert_eq!(status(&format!("http://{first}/x")).await, 200);

        // Requests in flight on both listeners while the first is removed.
        let on_removed = tokio::spawn(status_of(format!("http://{first}/delay")));
        let on_kept = tokio::spawn(status_of(format!("http://{added}/delay")));
        tokio::time::sleep(Duration::from_millis(200)).await;
        s.write(&[&added.to_string()], false, "public");
        s.reload().await.unwrap();
        assert_eq!(s.started().listening(), [added]);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            tokio::net::TcpStream::connect(first).await.is_err(),
            "the removed address still accepts"
        );
        assert_eq!(on_removed.await.unwrap(), 200, "in-flight request cut");
        assert_eq!(
            on_kept.await.unwrap(),
            200,
            "request on a kept listener cut"
        );
        assert_eq!(status(&format!("http://{added}/x")).await, 200);
        s.stop().await;
    }

    async fn status_of(url: String) -> u16 {
        status(&url).await
    }

    #[tokio::test]
    async fn the_admin_listener_is_added_moved_and_closed_on_reload() {
        let s = Live::start("admin", &["127.0.0.1:0"], false, "public").await;
        assert_eq!(s.started().admin_listening(), None);
        let healthz = |addr: SocketAddr| status_of(format!("http://{addr}/healthz"));

        let first = SocketAddr::from(([127, 0, 0, 1], free_port()));
        s.write_with_admin(&["127.0.0.1:0"], false, "public", Some(&first.to_string()));
        s.reload().await.unwrap();
        assert_eq!(s.started().admin_listening(), Some(first));
        assert_eq!(healthz(first).await, 200);

        let second = SocketAddr::from(([127, 0, 0, 1], free_port()));
        s.write_with_admin(&["127.0.0.1:0"], false, "public", Some(&second.to_string()));
        s.reload().await.unwrap();
        assert_eq!(s.started().admin_listening(), Some(second));
        assert_eq!(healthz(second).await, 200);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(tokio::net::TcpStream::connect(first).await.is_err());

        s.write(&["127.0.0.1:0"], false, "public");
        s.reload().await.unwrap();
        assert_eq!(s.started().admin_listening(), None);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(tokio::net::TcpStream::connect(second).await.is_err());
        s.stop().await;
    }

    #[tokio::test]
    async fn an_address_that_cannot_be_bound_fails_the_reload_and_applies_nothing() {
        let s = Live::start("bindfail", &["127.0.0.1:0"], false, "public").await;
        let first = s.started().listening()[0];
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let taken_addr = taken.local_addr().unwrap();
        let other = free_port();

        // A new address that binds, one that does not, and a route change: none of it applies.
        s.write(
            &[
                "127.0.0.1:0",
                &format!("127.0.0.1:{other}"),
                &taken_addr.to_string(),
            ],
            false,
            "deny",
        );
        let err = s.reload().await.unwrap_err();
        assert!(err.to_string().contains(&taken_addr.to_string()), "{err}");
        assert_eq!(s.started().gateway().current().version(), 1);
        assert_eq!(s.started().listening(), [first]);
        assert_eq!(status(&format!("http://{first}/x")).await, 200);
        assert!(
            tokio::net::TcpStream::connect(("127.0.0.1", other))
                .await
                .is_err(),
            "a socket bound by the failed reload is still open"
        );
        drop(taken);
        s.stop().await;
    }

    #[tokio::test]
    async fn a_certificate_rotated_at_the_same_path_is_served_to_new_connections() {
        let certs = tempfile::tempdir().unwrap();
        let (a_cert, a_key) = make_cert(certs.path(), "gateway-a");
        let (b_cert, b_key) = make_cert(certs.path(), "gateway-b");
        let s = Live::start_with_cert("rotate", &a_cert, &a_key).await;
        let addr = s.started().listening()[0];
        let roots = [a_cert.as_path(), b_cert.as_path()];

        let mut before = tls_connect(addr, &roots).await;
        assert_eq!(served_subject(&before), "CN=gateway-a");
        assert_eq!(get_on(&mut before, "/x").await, "HTTP/1.1 200 OK");

        s.install_cert(&b_cert, &b_key);
        s.reload().await.unwrap();
        let mut after = tls_connect(addr, &roots).await;
        assert_eq!(
            served_subject(&after),
            "CN=gateway-b",
            "new connection, old certificate"
        );
        assert_eq!(get_on(&mut after, "/x").await, "HTTP/1.1 200 OK");
        // The connection opened before the rotation goes on.
        assert_eq!(get_on(&mut before, "/x").await, "HTTP/1.1 200 OK");
        assert_eq!(s_client_subject(addr).await, "CN=gateway-b");

        // Through reqwest too, trusting only the new certificate.
        let c = reqwest::Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(&std::fs::read(&b_cert).unwrap()).unwrap(),
            )
            .build()
            .unwrap();
        let r = c
            .get(format!("https://localhost:{}/x", addr.port()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        s.stop().await;
    }

    #[tokio::test]
    async fn a_certificate_renewed_in_place_is_picked_up_by_the_watcher() {
        let certs = tempfile::tempdir().unwrap();
        let (a_cert, a_key) = make_cert(certs.path(), "gateway-a");
        let (b_cert, b_key) = make_cert(certs.path(), "gateway-b");
        let s = Live::start_with_cert("watchcert", &a_cert, &a_key).await;
        let addr = s.started().listening()[0];
        let roots = [a_cert.as_path(), b_cert.as_path()];
        assert_eq!(
            served_subject(&tls_connect(addr, &roots).await),
            "CN=gateway-a"
        );
        s.install_cert(&b_cert, &b_key);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut seen = String::new();
        while std::time::Instant::now() < deadline {
            seen = served_subject(&tls_connect(addr, &roots).await);
            if seen == "CN=gateway-b" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(
            seen, "CN=gateway-b",
            "the renewed certificate was not picked up"
        );
        s.stop().await;
    }

    #[tokio::test]
    async fn a_bad_certificate_or_key_keeps_the_old_one_and_fails_the_reload() {
        let certs = tempfile::tempdir().unwrap();
        let (a_cert, a_key) = make_cert(certs.path(), "gateway-a");
        let (b_cert, _) = make_cert(certs.path(), "gateway-b");
        let s = Live::start_with_cert("badcert", &a_cert, &a_key).await;
        let addr = s.started().listening()[0];
        let roots = [a_cert.as_path(), b_cert.as_path()];

        // Half a certificate (a rotation caught mid-copy).
        let pem = std::fs::read_to_string(&b_cert).unwrap();
        let tls = s.dir.path().join("tls");
        std::fs::write(tls.join("cert.pem"), &pem[..pem.len() / 2]).unwrap();
        let err = s.reload().await.unwrap_err();
        assert!(err.to_string().contains("cert.pem"), "{err}");
        assert_eq!(
            served_subject(&tls_connect(addr, &roots).await),
            "CN=gateway-a"
        );

        // A new certificate with the old key: they do not match.
        std::fs::write(tls.join("cert.pem"), &pem).unwrap();
        let err = s.reload().await.unwrap_err();
        assert!(err.to_string().contains("key.pem"), "{err}");
        assert_eq!(
            served_subject(&tls_connect(addr, &roots).await),
            "CN=gateway-a"
        );
        assert_eq!(s.started().gateway().current().version(), 1);
        s.stop().await;
    }

    #[tokio::test]
    async fn tls_is_turned_on_for_a_listener_that_stays() {
        let certs = tempfile::tempdir().unwrap();
        let (a_cert, a_key) = make_cert(certs.path(), "gateway-a");
        let s = Live::start("tlson", &["127.0.0.1:0"], false, "public").await;
        let addr = s.started().listening()[0];
        let plain = reqwest::Client::new();
        let keep_alive = plain.get(format!("http://{addr}/x")).send().await.unwrap();
        assert_eq!(keep_alive.status(), 200);
        keep_alive.bytes().await.unwrap();

        s.install_cert(&a_cert, &a_key);
        s.write(&["127.0.0.1:0"], true, "public");
        s.reload().await.unwrap();
        assert_eq!(s.started().listening(), [addr], "the listener was replaced");
        let mut tls = tls_connect(addr, &[a_cert.as_path()]).await;
        assert_eq!(get_on(&mut tls, "/x").await, "HTTP/1.1 200 OK");
        // The plain connection opened before stays plain.
        let again = plain.get(format!("http://{addr}/x")).send().await.unwrap();
        assert_eq!(again.status(), 200);
        s.stop().await;
    }

    impl Live {
        async fn start_with_cert(name: &str, cert: &Path, key: &Path) -> Live {
            let dir = tempfile::tempdir().unwrap();
            let upstream = RecordingUpstream::start().await;
            let table = format!("live-{name}-{}", std::process::id());
            registered::share(&table, &default_backend());
            let path = dir.path().join("gateway.yaml");
            let mut live = Live {
                dir,
                path,
                upstream,
                table,
                started: None,
            };
            live.install_cert(cert, key);
            live.write(&["127.0.0.1:0"], true, "public");
            live.started = Some(
                gateway::launch::start(&live.path, gateway::launch::default_chain_builder())
                    .await
                    .expect("starts"),
            );
            live
        }
    }

    /// The `authgate` binary: a file change adds a listener and a key that needs a restart is
    /// named in the log (and by `check --against`); a real SIGHUP reloads; a certificate
    /// renewed at the same path is served without a signal.
    #[tokio::test]
    async fn the_binary_adds_a_listener_names_restart_keys_and_rotates_its_certificate_on_sighup() {
        let dir = tempfile::tempdir().unwrap();
        let (a_cert, a_key) = make_cert(dir.path(), "gateway-a");
        let (b_cert, b_key) = make_cert(dir.path(), "gateway-b");
        let install = |cert: &Path, key: &Path| {
            write_atomically(
                &dir.path().join("cert.pem"),
                &std::fs::read_to_string(cert).unwrap(),
            );
            write_atomically(
                &dir.path().join("key.pem"),
                &std::fs::read_to_string(key).unwrap(),
            );
        };
        install(&a_cert, &a_key);
        let upstream = RecordingUpstream::start().await;
        let path = dir.path().join("gateway.yaml");
        let first = free_port();
        let second = free_port();
        let config = |listen: &str, level: &str| {
            format!(
                r#"
server:
  listen: [{listen}]
  public_url: "https://localhost:{first}"
  tls: {{ cert: cert.pem, key: key.pem }}
upstream:
  url: "http://{upstream}"
session:
  secret: "0123456789abcdef0123456789abcdef-test"
data_dir: data
log:
  level: {level}
chain:
  - name: demo
    type: static
    options:
      users:
        alice:
          password: "$argon2id$v=19$m=19456,t=2,p=1$AXELcSFsTMmbCjJNCVqK3A$OIT3vKGCOqkmQk2bA6S25fW4y1uFyd5L0iSkI9b/EzA"
routes:
  - match: {{ path: / }}
    access: public
"#,
                upstream = upstream.addr
            )
        };
        let write = |text: &str| {
            use std::os::unix::fs::PermissionsExt;
            write_atomically(&path, text);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        };
        let one = format!("\"127.0.0.1:{first}\"");
        let two = format!("\"127.0.0.1:{first}\", \"127.0.0.1:{second}\"");
        write(&config(&one, "info"));
        let running_copy = dir.path().join("running.yaml");
        std::fs::copy(&path, &running_copy).unwrap();
        let log = dir.path().join("gateway.log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_authgate"))
            .args(["run", "--config"])
            .arg(&path)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("authgate runs");
        let pid = child.id().to_string();
        let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
        let count = |what: &str| log_text().matches(what).count();
        let wait_for = |what: &str, n: usize| {
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            while count(what) < n && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            count(what) >= n
        };
        let https = reqwest::Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(&std::fs::read(&a_cert).unwrap()).unwrap(),
            )
            .add_root_certificate(
                reqwest::Certificate::from_pem(&std::fs::read(&b_cert).unwrap()).unwrap(),
            )
            .build()
            .unwrap();
        let get = |port: u16| {
            let https = https.clone();
            async move {
                https
                    .get(format!("https://localhost:{port}/x"))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .map_err(|e| e.to_string())
            }
        };
        assert!(wait_for("listening", 1), "{}", log_text());
        assert_eq!(get(first).await, Ok(200));

        write(&config(&two, "debug"));
        // `check --against` the running file says what a reload will do with the new one.
        let checked = Command::new(env!("CARGO_BIN_EXE_authgate"))
            .args(["check", "--config"])
            .arg(&path)
            .arg("--against")
            .arg(&running_copy)
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&checked.stdout);
        assert_eq!(checked.status.code(), Some(0), "{out}");
        assert!(
            out.contains(
                "on reload (SIGHUP or a change to the file): every key is applied but upstream.demo, log.format, log.level (restart needed)"
            ),
            "{out}"
        );
        assert!(out.contains("  log.level: needs a restart\n"), "{out}");
        assert!(
            out.contains("  server.listen: applied on reload\n"),
            "{out}"
        );

        // The file watcher reloads.
        assert!(wait_for("config reloaded", 1), "{}", log_text());
        let text = log_text();
        assert!(text.contains("log.level requires a restart"), "{text}");
        let line = text
            .lines()
            .find(|l| l.contains("config reloaded"))
            .unwrap();
        assert!(line.contains("restart_needed=log.level"), "{line}");
        assert!(line.contains("applied=server.listen"), "{line}");
        assert!(line.contains(&format!("+127.0.0.1:{second}")), "{line}");
        assert!(line.contains("tls=unchanged"), "{line}");
        assert!(
            !text.contains("DEBUG"),
            "the log level changed without a restart"
        );
        assert_eq!(get(second).await, Ok(200));
        assert_eq!(get(first).await, Ok(200));

        // SIGHUP reloads (the file is unchanged).
        let hup = Command::new("kill").args(["-HUP", &pid]).status().unwrap();
        assert!(hup.success());
        assert!(wait_for("config reloaded", 2), "{}", log_text());

        // A certificate renewed at the same path is picked up (its files are watched).
        install(&b_cert, &b_key);
        assert!(wait_for("tls=new certificate", 1), "{}", log_text());
        assert_eq!(
            s_client_subject(format!("127.0.0.1:{second}").parse().unwrap()).await,
            "CN=gateway-b"
        );
        assert_eq!(
            s_client_subject(format!("127.0.0.1:{first}").parse().unwrap()).await,
            "CN=gateway-b"
        );
        assert!(count("log.level requires a restart") >= 3, "{}", log_text());

        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let status = tokio::task::spawn_blocking(move || child.wait())
            .await
            .unwrap()
            .unwrap();
        assert!(status.success(), "{}", log_text());
    }
}

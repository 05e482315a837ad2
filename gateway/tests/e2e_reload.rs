//! End-to-end: hot reload from a file, the admin listener, graceful shutdown.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use gateway::metrics::Metrics;
use gateway::reload::{Reloader, build_runtime, default_chain_builder};
use gateway::server::{Gateway, Running};
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

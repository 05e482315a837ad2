//! End-to-end: `launch::run_with` from a config file, driven by real signals sent to this
//! process: SIGHUP reloads, SIGTERM shuts down gracefully (in-flight requests finish). Alone in
//! its binary because signals are process-wide.

mod support;

use std::time::Duration;

use support::{RecordingUpstream, client, default_backend, registered};

fn kill(signal: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(std::process::id().to_string())
        .status()
        .expect("kill runs");
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_and_sigterm_drains() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = RecordingUpstream::start().await;
    registered::share("signals", &default_backend());
    let path = dir.path().join("gateway.yaml");
    std::fs::write(
        &path,
        format!(
            r#"
server:
  listen: "127.0.0.1:0"
  public_url: "http://127.0.0.1:8080"
upstream:
  url: "http://{}"
session:
  secure: false
  secret: "0123456789abcdef0123456789abcdef-test"
chain:
  - name: test
    type: e2e_table
    options: {{ table: signals }}
routes:
  - match: {{ path: / }}
    access: public
"#,
            upstream.addr
        ),
    )
    .unwrap();

    let started = gateway::launch::start(&path, gateway::launch::default_chain_builder())
        .await
        .expect("starts");
    let base = format!("http://{}", started.addrs[0]);
    assert_eq!(
        client()
            .get(format!("{base}/x"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let gw = started.gateway().clone();
    assert_eq!(gw.current().version(), 1);

    // The SIGHUP handler is installed by `start`: reload without touching the file.
    kill("HUP");
    let mut version = 1;
    for _ in 0..50 {
        version = gw.current().version();
        if version == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(version, 2, "SIGHUP did not reload");
    let metrics = gw.metrics().encode();
    assert!(
        metrics.contains("gateway_reloads_total{result=\"ok\"} 1"),
        "{metrics}"
    );

    // SIGTERM while a request is in flight: it completes, then the listener is gone.
    let sigterm = gateway::__test::shutdown_signal();
    let run = tokio::spawn(async move {
        sigterm.await;
        started.stop().await;
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let url = format!("{base}/delay");
    let c = client();
    let in_flight = tokio::spawn(async move { c.get(url).send().await.map(|r| r.status()) });
    tokio::time::sleep(Duration::from_millis(200)).await;
    kill("TERM");
    let status = in_flight
        .await
        .unwrap()
        .expect("in-flight request completed");
    assert_eq!(status, 200);
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("shut down in time")
        .unwrap();
    assert!(
        tokio::net::TcpStream::connect(started_addr(&base))
            .await
            .is_err()
    );
}

fn started_addr(base: &str) -> std::net::SocketAddr {
    base.trim_start_matches("http://").parse().unwrap()
}

//! Upstream faults: down -> 502 quickly, slow -> 504 after `upstream.timeout`, no descriptor
//! leak over a burst of failed requests, and recovery when the upstream comes back.

mod fault_support;
mod support;

use std::time::{Duration, Instant};

use fault_support::{CutProxy, Gw, eventually, open_fds};
use support::{RecordingUpstream, basic, client};

/// Accepts connections, reads the requests and never answers.
async fn silent_upstream() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                use tokio::io::AsyncReadExt;
                let mut buf = [0u8; 4096];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
            });
        }
    });
    (addr, task)
}

/// The descriptor counts are per process: the two tests must not overlap.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn config(upstream: std::net::SocketAddr) -> String {
    fault_support::head(upstream).replace("  timeout: 2s\n", "  timeout: 700ms\n")
        + r#"
chain:
  - name: ops
    type: static
    options:
      allow_plaintext: true
      users:
        bob: { password: bob-pw }
"#
}

async fn get(c: &reqwest::Client, gw: &Gw) -> u16 {
    c.get(gw.url("/app"))
        .header("authorization", basic("bob", "bob-pw"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// `n` concurrent requests (in waves of 50); every status must be `want`.
async fn burst(c: &reqwest::Client, gw: &Gw, n: usize, want: u16) {
    for _ in 0..n / 50 {
        let wave: Vec<_> = (0..50).map(|_| get(c, gw)).collect();
        for status in futures_util::future::join_all(wave).await {
            assert_eq!(status, want);
        }
    }
}

#[tokio::test]
async fn upstream_down_is_502_fast_without_leaks_and_recovers() {
    let _serial = SERIAL.lock().await;
    let upstream = RecordingUpstream::start().await;
    let mut proxy = CutProxy::start(upstream.addr).await;
    let gw = Gw::start(&config(proxy.addr)).await;
    let c = client();
    assert_eq!(get(&c, &gw).await, 200);

    proxy.cut().await;
    let started = Instant::now();
    assert_eq!(get(&c, &gw).await, 502);
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "a refused connection is reported at once, took {:?}",
        started.elapsed()
    );
    // Warm-up done: count descriptors, fail 200 requests, count again.
    burst(&c, &gw, 50, 502).await;
    let before = open_fds();
    burst(&c, &gw, 200, 502).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = open_fds();
    eprintln!("open fds around 200 requests answered 502: {before} -> {after}");
    assert!(
        after <= before + 10,
        "descriptors grew from {before} to {after} over 200 failed requests"
    );
    assert!(gw.gateway.current().version() == 1, "still serving");
    let metrics = gw.gateway.metrics().encode();
    assert!(
        metrics.contains("gateway_upstream_errors_total{status=\"502\"} 251\n"),
        "every 502 counted as an upstream error:\n{metrics}"
    );

    proxy.restore().await;
    assert!(
        eventually(Duration::from_secs(5), || async {
            get(&c, &gw).await == 200
        })
        .await,
        "recovers when the upstream is back"
    );
    let last = upstream.seen().pop().unwrap();
    assert_eq!(last.get("x-remote-user").as_deref(), Some("bob"));
}

#[tokio::test]
async fn upstream_slow_is_504_after_its_timeout_without_leaks_and_recovers() {
    let _serial = SERIAL.lock().await;
    let (silent, silent_task) = silent_upstream().await;
    let mut proxy = CutProxy::start(silent).await;
    let gw = Gw::start(&config(proxy.addr)).await;
    let c = client();

    let started = Instant::now();
    assert_eq!(get(&c, &gw).await, 504);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(650) && took < Duration::from_millis(2500),
        "504 after upstream.timeout (700ms), took {took:?}"
    );
    burst(&c, &gw, 50, 504).await;
    let before = open_fds();
    burst(&c, &gw, 200, 504).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = open_fds();
    eprintln!("open fds around 200 requests answered 504: {before} -> {after}");
    let metrics = gw.gateway.metrics().encode();
    assert!(
        metrics.contains("gateway_upstream_errors_total{status=\"504\"} 251\n"),
        "every 504 counted as an upstream error:\n{metrics}"
    );
    assert!(
        after <= before + 10,
        "descriptors grew from {before} to {after} over 200 timed-out requests"
    );

    // The upstream comes back healthy behind the same address.
    proxy.cut().await;
    silent_task.abort();
    let upstream = RecordingUpstream::start().await;
    let mut proxy2 = CutProxy::start(upstream.addr).await;
    // Reuse the configured address: move the new forwarder onto the old port.
    proxy2.cut().await;
    proxy2.addr = proxy.addr;
    drop(proxy);
    proxy2.restore().await;
    assert!(
        eventually(Duration::from_secs(5), || async {
            get(&c, &gw).await == 200
        })
        .await,
        "recovers when the upstream answers again"
    );
    assert!(!upstream.seen().is_empty());
}

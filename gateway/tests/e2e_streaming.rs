//! End-to-end: 1 GiB each way through the gateway in bounded memory, and TLS.
//! Alone in its binary so the memory measure sees only this test.

mod support;

use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, StreamBody};
use support::{Harness, basic};

const GIB: u64 = 1 << 30;

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

/// Samples RSS every 50 ms until `done`; returns the peak.
fn sample_peak(
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut peak = 0;
        while !done.load(std::sync::atomic::Ordering::SeqCst) {
            peak = peak.max(rss_bytes());
            std::thread::sleep(Duration::from_millis(50));
        }
        peak
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_gib_each_way_in_bounded_memory() {
    let h = Harness::start().await;
    let client = support::hyper_client::<UnsyncBoxBody<Bytes, std::io::Error>>(false);
    // Warm up connections and allocator before the baseline.
    let warm = http::Request::post(h.url("/upload"))
        .header("authorization", basic("alice", "alice-pw"))
        .body(
            StreamBody::new(futures_util::stream::iter(vec![Ok::<_, std::io::Error>(
                hyper::body::Frame::data(Bytes::from_static(b"x")),
            )]))
            .boxed_unsync(),
        )
        .unwrap();
    let _ = client
        .request(warm)
        .await
        .unwrap()
        .into_body()
        .collect()
        .await;
    let baseline = rss_bytes();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = sample_peak(done.clone());

    // Upload.
    let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
    let chunks = (GIB / chunk.len() as u64) as usize;
    let body =
        StreamBody::new(futures_util::stream::iter((0..chunks).map(move |_| {
            Ok::<_, std::io::Error>(hyper::body::Frame::data(chunk.clone()))
        })))
        .boxed_unsync();
    let req = http::Request::post(h.url("/upload"))
        .header("authorization", basic("alice", "alice-pw"))
        .body(body)
        .unwrap();
    let started = std::time::Instant::now();
    let resp = client.request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let got = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(got, GIB.to_string());
    let upload_secs = started.elapsed().as_secs_f64();

    // Download.
    let started = std::time::Instant::now();
    let resp = reqwest::Client::new()
        .get(h.url(&format!("/download/{GIB}")))
        .header("authorization", basic("alice", "alice-pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut resp = resp;
    let mut n: u64 = 0;
    while let Some(chunk) = resp.chunk().await.unwrap() {
        n += chunk.len() as u64;
    }
    assert_eq!(n, GIB);
    let download_secs = started.elapsed().as_secs_f64();

    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let peak = sampler.join().unwrap();
    let growth = peak.saturating_sub(baseline);
    eprintln!(
        "1 GiB up in {upload_secs:.1}s, down in {download_secs:.1}s; RSS baseline {} MiB, peak {} MiB, growth {} MiB",
        baseline >> 20,
        peak >> 20,
        growth >> 20
    );
    assert!(growth < 64 << 20, "memory grew by {} MiB", growth >> 20);
}

#[tokio::test]
async fn tls_listener_serves_and_says_https_upstream() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    let status = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-addext", "extendedKeyUsage=serverAuth"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(status.success());
    let acceptor = gateway::__test::tls_acceptor(&cert, &key).unwrap();
    let h = Harness::start_full(support::BASE_CONFIG, Some(acceptor)).await;
    let client = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(&cert).unwrap()).unwrap(),
        )
        .build()
        .unwrap();
    let resp = client
        .get(format!("https://localhost:{}/app", h.addr.port()))
        .header("authorization", basic("alice", "alice-pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let seen = h.upstream.last().unwrap();
    assert_eq!(seen.get("x-forwarded-proto").as_deref(), Some("https"));
    assert_eq!(seen.get("x-remote-user").as_deref(), Some("alice"));
    // HTTP/2 negotiated by ALPN.
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut std::fs::read(&cert).unwrap().as_slice()) {
        roots.add(c.unwrap()).unwrap();
    }
    let mut tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(h.addr).await.unwrap();
    let stream = tokio_rustls::TlsConnector::from(std::sync::Arc::new(tls))
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get(format!("https://localhost:{}/app/h2", h.addr.port()))
        .header("authorization", basic("alice", "alice-pw"))
        .header("x-remote-user", "admin")
        .body(http_body_util::Empty::<Bytes>::new())
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.version(), http::Version::HTTP_2);
    let seen = h.upstream.last().unwrap();
    assert_eq!(seen.path, "/app/h2");
    assert_eq!(seen.all("x-remote-user"), vec!["alice".to_string()]);
    assert_eq!(seen.get("x-forwarded-proto").as_deref(), Some("https"));

    // Plain HTTP on the TLS port gets nowhere.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/static/x", h.addr.port()))
        .send()
        .await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
}

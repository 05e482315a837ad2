//! Attack class 7: HTTP parsing and request smuggling over raw TCP. The upstream must see
//! exactly one well-formed request per client request: we count the recorded requests and
//! make sure no smuggled request (path containing `smuggled`) ever reaches it.

use crate::support;

use std::time::Duration;

use support::raw::{self, RawHarness};
use support::{Harness, basic};

const CONFIG: &str = r#"
server:
  public_url: "http://127.0.0.1:8080"
  header_read_timeout: 1s
  max_header_bytes: 8192
upstream:
  url: "http://{upstream}"
  connect_timeout: 1s
  timeout: 2s
session:
  secure: false
  secret: "0123456789abcdef0123456789abcdef-test"
routes:
  - match: { path: /static/ }
    access: public
  - match: { path: /upload }
    access: public
  - match: { path: / }
    access: authenticated
"#;

const SMUGGLED: &str = "GET /static/smuggled HTTP/1.1\r\nHost: gw.test\r\n\r\n";

fn no_smuggling(h: &Harness, what: &str) {
    let seen = h.upstream.seen();
    assert!(
        seen.iter()
            .all(|r| !r.path.contains("smuggled") && (r.method == "POST" || r.method == "GET")),
        "{what}: upstream saw {:?}",
        seen.iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect::<Vec<_>>()
    );
    assert!(seen.len() <= 1, "{what}: {} requests upstream", seen.len());
}

/// Conflicting or obfuscated framing: refused (400), or read as exactly one request.
#[tokio::test]
async fn framing_conflicts_never_smuggle() {
    let h = Harness::start_with(CONFIG).await;
    let te_variants = [
        "Transfer-Encoding: chunked ,\r\n",
        "Transfer-Encoding: xchunked\r\n",
        "Transfer-Encoding: chunkedx\r\n",
        "Transfer-Encoding:\tchunked\r\n",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n",
        "Transfer-Encoding: identity\r\n",
        "Transfer-Encoding: gzip, chunked\r\n",
        "Transfer-Encoding: chunked, gzip\r\n",
        "Transfer-Encoding: CHUNKED\r\n",
        "Transfer-Encoding: \"chunked\"\r\n",
        "Transfer-Encoding: chunked;q=1\r\n",
        "Transfer_Encoding: chunked\r\n",
        "Transfer-Encoding : chunked\r\n",
        " Transfer-Encoding: chunked\r\n",
        "X: y\r\n Transfer-Encoding: chunked\r\n",
        "Transfer-Encoding: \x0bchunked\r\n",
    ];
    let mut cases = 0;
    for te in te_variants {
        // CL.TE: the body per Content-Length hides a smuggled request behind the chunked end
        let body = format!("0\r\n\r\n{SMUGGLED}");
        for with_cl in [true, false] {
            h.upstream.clear();
            // Without Content-Length a valid chunked spelling legitimately ends the body at
            // `0\r\n\r\n`; `Connection: close` makes anything after it not a request at all.
            let cl = if with_cl {
                format!("Content-Length: {}\r\n", body.len())
            } else {
                "Connection: close\r\n".to_string()
            };
            let req = format!("POST /upload HTTP/1.1\r\nHost: gw.test\r\n{cl}{te}\r\n{body}");
            let ex = raw::exchange_for(h.addr, req.as_bytes(), Duration::from_millis(1500)).await;
            let st = ex.status();
            assert!(
                st == 400 || st == 200 || st == 501 || st == 0,
                "{te:?} cl={with_cl}: {st}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
            no_smuggling(&h, &format!("{te:?} cl={with_cl}"));
            cases += 1;
        }
    }
    // TE.CL: chunked body whose Content-Length covers only the chunk size line
    let chunk = SMUGGLED;
    let body = format!("{:x}\r\n{chunk}\r\n0\r\n\r\n", chunk.len());
    h.upstream.clear();
    let req = format!(
        "POST /upload HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n{body}"
    );
    let ex = raw::exchange_for(h.addr, req.as_bytes(), Duration::from_millis(1500)).await;
    assert!(matches!(ex.status(), 400 | 200), "TE.CL: {}", ex.status());
    no_smuggling(&h, "TE.CL");
    assert!(cases >= 30);
}

#[tokio::test]
async fn content_length_variants() {
    let h = Harness::start_with(CONFIG).await;
    for (cl, body) in [
        ("Content-Length: 5\r\nContent-Length: 6\r\n", "hello!"),
        ("Content-Length: 5, 6\r\n", "hello!"),
        ("Content-Length: -1\r\n", "hello"),
        ("Content-Length: +5\r\n", "hello"),
        ("Content-Length: 0x5\r\n", "hello"),
        ("Content-Length: 5 5\r\n", "hello"),
        ("Content-Length: 99999999999999999999999\r\n", "hello"),
        ("Content-Length: 5a\r\n", "hello"),
        ("Content-Length: \r\n", "hello"),
    ] {
        h.upstream.clear();
        let req = format!("POST /upload HTTP/1.1\r\nHost: gw.test\r\n{cl}\r\n{body}{SMUGGLED}");
        let ex = raw::exchange_for(h.addr, req.as_bytes(), Duration::from_millis(1500)).await;
        assert_eq!(ex.status(), 400, "{cl:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(h.upstream.seen().is_empty(), "{cl:?} forwarded");
    }
    // identical duplicates are one length (RFC 9110 §8.6); exactly one request upstream
    for cl in [
        "Content-Length: 5\r\nContent-Length: 5\r\n",
        "Content-Length: 5, 5\r\n",
    ] {
        h.upstream.clear();
        let req = format!(
            "POST /upload HTTP/1.1\r\nHost: gw.test\r\n{cl}Connection: close\r\n\r\nhello{SMUGGLED}"
        );
        let ex = raw::exchange_for(h.addr, req.as_bytes(), Duration::from_millis(1500)).await;
        assert!(matches!(ex.status(), 200 | 400), "{cl:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
        no_smuggling(&h, cl);
        if ex.status() == 200 {
            assert_eq!(ex.first().text(), "5");
        }
    }
}

#[tokio::test]
async fn bad_chunk_framing_is_never_forwarded_as_a_request() {
    let h = Harness::start_with(CONFIG).await;
    for chunks in [
        "zz\r\nhello\r\n0\r\n\r\n",
        "5\r\nhelloEXTRA\r\n0\r\n\r\n",
        "ffffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
        "-5\r\nhello\r\n0\r\n\r\n",
        "5 5\r\nhello\r\n0\r\n\r\n",
        "0x5\r\nhello\r\n0\r\n\r\n",
        "5\rhello\r\n0\r\n\r\n",
        "\r\nhello\r\n0\r\n\r\n",
    ] {
        h.upstream.clear();
        let req = format!(
            "POST /upload HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n\r\n{chunks}{SMUGGLED}"
        );
        let ex = raw::exchange_for(h.addr, req.as_bytes(), Duration::from_millis(1500)).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        // the upstream may have started receiving the streamed body: it must never answer 200
        // with a complete body, and nothing smuggled follows
        let st = ex.status();
        assert!(
            st != 200 || ex.first().text() != "5",
            "{chunks:?}: accepted as complete"
        );
        no_smuggling(&h, chunks);
    }
}

#[tokio::test]
async fn oversized_headers_are_431() {
    let h = Harness::start_with(CONFIG).await;
    for extra in [
        format!("X-Big: {}\r\n", "a".repeat(20_000)),
        (0..600)
            .map(|i| format!("X-H{i}: v\r\n"))
            .collect::<String>(),
        format!("Cookie: {}\r\n", "c=1; ".repeat(4000)),
    ] {
        h.upstream.clear();
        let ex = raw::send(h.addr, &raw::get("/static/x", &extra)).await;
        assert!(matches!(ex.status(), 431 | 400), "{}", ex.status());
        assert!(h.upstream.seen().is_empty());
    }
    // a long request line
    let ex = raw::send(
        h.addr,
        &raw::get(&format!("/static/{}", "a".repeat(20_000)), ""),
    )
    .await;
    assert!(matches!(ex.status(), 414 | 431 | 400), "{}", ex.status());
    assert!(h.upstream.seen().is_empty());
}

/// Starts a request head on `s` and sends one more header line every 200 ms, never finishing
/// it; returns how long after the head started the gateway closed the connection (`None`: it
/// stayed open for 40 lines, 8 s).
async fn trickle_head(s: &mut tokio::net::TcpStream) -> Option<Duration> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let start = std::time::Instant::now();
    s.write_all(b"GET /static/x HTTP/1.1\r\nHost: gw.test\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    for i in 0..40 {
        if s.write_all(format!("X-Slow-{i}: a\r\n").as_bytes())
            .await
            .is_err()
        {
            return Some(start.elapsed());
        }
        match tokio::time::timeout(Duration::from_millis(200), s.read(&mut buf)).await {
            Ok(Ok(_)) | Ok(Err(_)) => return Some(start.elapsed()),
            Err(_) => {}
        }
    }
    None
}

#[tokio::test]
async fn slow_headers_are_cut_after_header_read_timeout() {
    let h = Harness::start_with(CONFIG).await;
    let mut s = tokio::net::TcpStream::connect(h.addr).await.unwrap();
    let t = trickle_head(&mut s)
        .await
        .expect("the connection stayed open for 8 s of slow headers");
    assert!(t < Duration::from_secs(4), "closed after {t:?}");
    assert!(h.upstream.seen().is_empty());
}

/// The same for the head of a later request on a keep-alive connection.
#[tokio::test]
async fn slow_headers_of_a_later_request_are_cut_too() {
    let h = Harness::start_with(CONFIG).await;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(h.addr).await.unwrap();
    s.write_all(b"GET /static/first HTTP/1.1\r\nHost: gw.test\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("no answer to the first request")
        .unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    let t = trickle_head(&mut s)
        .await
        .expect("the connection stayed open for 8 s of slow headers");
    assert!(t < Duration::from_secs(4), "closed after {t:?}");
    assert_eq!(
        h.upstream.seen().len(),
        1,
        "only the first request reaches the upstream"
    );
}

/// A 401 sent before the body was read: the unread body is never parsed as a next request.
#[tokio::test]
async fn pipelining_after_401_with_unread_body() {
    let h = Harness::start_with(CONFIG).await;
    let body = SMUGGLED.repeat(3);
    let req = format!(
        "POST /app HTTP/1.1\r\nHost: gw.test\r\nContent-Length: {}\r\n\r\n{body}GET /static/next HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let (responses, _) =
        raw::send_expecting(h.addr, req.as_bytes(), 2, Duration::from_secs(3)).await;
    assert_eq!(responses.first().map(|r| r.status), Some(401));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let seen = h.upstream.seen();
    assert!(
        seen.iter().all(|r| !r.path.contains("smuggled")),
        "{seen:?}"
    );
    assert!(seen.len() <= 1);
    if let Some(r) = seen.first() {
        assert_eq!(r.path, "/static/next");
        assert_eq!(responses.len(), 2);
    }
    // chunked variant, and a 400 (malformed Basic) variant
    let auth = "Authorization: Basic !!!\r\n";
    for (head, status) in [("Transfer-Encoding: chunked\r\n", 401), (auth, 400)] {
        h.upstream.clear();
        let chunked = head.starts_with("Transfer");
        let payload = if chunked {
            format!("{:x}\r\n{SMUGGLED}\r\n0\r\n\r\n", SMUGGLED.len())
        } else {
            SMUGGLED.to_string()
        };
        let cl = if chunked {
            String::new()
        } else {
            format!("Content-Length: {}\r\n", payload.len())
        };
        let req = format!(
            "POST /app HTTP/1.1\r\nHost: gw.test\r\n{head}{cl}\r\n{payload}GET /static/next HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n"
        );
        let (responses, _) =
            raw::send_expecting(h.addr, req.as_bytes(), 2, Duration::from_secs(3)).await;
        assert_eq!(responses.first().map(|r| r.status), Some(status));
        tokio::time::sleep(Duration::from_millis(100)).await;
        let seen = h.upstream.seen();
        assert!(
            seen.iter().all(|r| !r.path.contains("smuggled")),
            "{seen:?}"
        );
    }
}

/// Well-formed pipelined requests: one upstream request each, answered in order.
#[tokio::test]
async fn pipelined_requests_are_one_each() {
    let h = Harness::start_with(CONFIG).await;
    let auth = format!("Authorization: {}\r\n", basic("alice", "alice-pw"));
    let req = format!(
        "GET /static/1 HTTP/1.1\r\nHost: gw.test\r\n\r\nPOST /app/2 HTTP/1.1\r\nHost: gw.test\r\n{auth}Content-Length: 3\r\n\r\nabcGET /app/3 HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n"
    );
    let (responses, _) =
        raw::send_expecting(h.addr, req.as_bytes(), 3, Duration::from_secs(3)).await;
    assert_eq!(
        responses.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![200, 200, 401]
    );
    let seen = h.upstream.seen();
    assert_eq!(
        seen.iter().map(|r| r.path.as_str()).collect::<Vec<_>>(),
        vec!["/static/1", "/app/2"]
    );
}

#[tokio::test]
async fn h2c_upgrade_and_odd_versions_are_refused() {
    let h = Harness::start_with(CONFIG).await;
    let auth = format!("Authorization: {}\r\n", basic("alice", "alice-pw"));
    for req in [
        format!(
            "GET /app HTTP/1.1\r\nHost: gw.test\r\n{auth}Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
        ),
        "GET /static/x HTTP/1.1\r\nHost: gw.test\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
            .to_string(),
        "GET /static/x HTTP/1.1\r\nHost: gw.test\r\nConnection: upgrade\r\nUpgrade: H2C\r\n\r\n"
            .to_string(),
        "GET /static/x HTTP/2.0\r\nHost: gw.test\r\n\r\n".to_string(),
        "GET /static/x HTTP/1.2\r\nHost: gw.test\r\n\r\n".to_string(),
        "GET /static/x HTTP/9.9\r\nHost: gw.test\r\n\r\n".to_string(),
        "GET /static/x\r\n\r\n".to_string(),
        "GET  /static/x HTTP/1.1\r\nHost: gw.test\r\n\r\n".to_string(),
        "GET /static/x HTTP/1.1 extra\r\nHost: gw.test\r\n\r\n".to_string(),
    ] {
        h.upstream.clear();
        let ex = raw::exchange_for(h.addr, req.as_bytes(), Duration::from_millis(1500)).await;
        let st = ex.status();
        assert!(st == 0 || (400..=505).contains(&st), "{req:?}: {st}");
        assert!(
            !String::from_utf8_lossy(&ex.bytes).contains(" 101 "),
            "{req:?}"
        );
        assert!(h.upstream.seen().is_empty(), "{req:?} forwarded");
    }
}

/// A login form body dribbled byte by byte is cut after `header_read_timeout` (408).
#[tokio::test]
async fn slow_login_body_is_cut() {
    let h = Harness::start_with(CONFIG).await;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(h.addr).await.unwrap();
    let start = std::time::Instant::now();
    s.write_all(b"POST /_auth/login HTTP/1.1\r\nHost: gw.test\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nusername=")
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    for _ in 0..40 {
        let _ = s.write_all(b"a").await;
        match tokio::time::timeout(Duration::from_millis(200), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                got.extend_from_slice(&buf[..n]);
                break;
            }
            Err(_) => {}
        }
    }
    let t = start.elapsed();
    assert!(
        t < Duration::from_secs(4),
        "still reading the body after {t:?}"
    );
    let resp = raw::parse_responses(&got, false);
    assert_eq!(
        resp.first().map(|r| r.status),
        Some(408),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
}

/// Look-alikes of framing and hop-by-hop headers (`_` or `.` for `-`, any case) never reach the
/// upstream: one that folds `_` to `-` (CGI, WSGI) would read another body framing beside the
/// `Content-Length` the gateway framed by — a smuggled request. Checked on the upstream's raw
/// bytes, on a public route and with a session-less protected one.
#[tokio::test]
async fn framing_look_alikes_never_reach_the_upstream() {
    let h = RawHarness::start(CONFIG).await;
    let auth = format!("Authorization: {}\r\n", basic("alice", "alice-pw"));
    let look_alikes = [
        ("Transfer_Encoding", "chunked"),
        ("transfer_encoding", "chunked"),
        ("TRANSFER_ENCODING", "chunked"),
        ("Transfer.Encoding", "chunked"),
        ("Content_Length", "0"),
        ("content.length", "0"),
        ("CONTENT_LENGTH", "100"),
        ("Keep_Alive", "timeout=5"),
        ("Proxy_Connection", "keep-alive"),
        ("Proxy_Authorization", "Basic YWxpY2U6YWxpY2UtcHc="),
        ("Proxy.Authenticate", "Basic"),
    ];
    let mut checked = 0;
    for (name, value) in look_alikes {
        for (path, who) in [("/upload", ""), ("/app", auth.as_str())] {
            let before = h.upstream.seen().len();
            let req = format!(
                "POST {path} HTTP/1.1\r\nHost: gw.test\r\n{who}{name}: {value}\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"
            );
            let ex = raw::exchange_for(h.addr, req.as_bytes(), Duration::from_secs(2)).await;
            assert_eq!(ex.status(), 200, "{name} {path}");
            let seen = h.upstream.seen();
            assert_eq!(
                seen.len(),
                before + 1,
                "{name} {path}: one request upstream"
            );
            let sent = seen[before].to_ascii_lowercase();
            assert!(sent.starts_with(&format!("post {path} ")), "{sent}");
            assert!(sent.ends_with("\r\n\r\nhello"), "{name} {path}: {sent:?}");
            for folded in [
                "transfer_encoding",
                "transfer.encoding",
                "content_length",
                "content.length",
                "keep_alive",
                "proxy_connection",
                "proxy_authorization",
                "proxy.authenticate",
                "transfer-encoding",
                "keep-alive",
                "proxy-",
            ] {
                assert!(
                    !sent.contains(folded),
                    "{name} {path}: upstream got {sent:?}"
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 22);
}

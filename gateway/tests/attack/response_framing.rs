//! Attack class 13: response framing from the upstream (response splitting and desync). The
//! common exchange (`GET`/`HEAD` without a body) reads the upstream's response with the
//! gateway's own HTTP/1.1 client: a well-framed response passes whole and its connection is
//! reused; an ambiguous one is a 502 and its connection is never reused; bytes after the end
//! of a response never become the answer to another request.

use crate::support;

use std::time::Duration;

use support::raw::{self, ScriptedUpstream};

const CONFIG: &str = r#"
server:
  public_url: "http://127.0.0.1:8080"
upstream:
  url: "http://{upstream}"
  connect_timeout: 1s
  timeout: 2s
session:
  secure: false
  secret: "0123456789abcdef0123456789abcdef-test"
routes:
  - match: { path: / }
    access: public
"#;

async fn get(addr: std::net::SocketAddr, method: &str, path: &str) -> raw::RawResponse {
    let req = format!("{method} {path} HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n");
    let ex = raw::exchange_for(addr, req.as_bytes(), Duration::from_secs(3)).await;
    raw::parse_responses(&ex.bytes, method == "HEAD")
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no response to {method} {path}: {:?}", ex.bytes))
}

fn script(parts: &[(&str, bool)]) -> Vec<(Vec<u8>, bool)> {
    parts
        .iter()
        .map(|(r, close)| (r.as_bytes().to_vec(), *close))
        .collect()
}

#[tokio::test]
async fn well_framed_responses_pass_whole_and_keep_their_connection() {
    let upstream = ScriptedUpstream::start(script(&[
        ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false),
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nhel\r\n8\r\nlo world\r\n0\r\nX-Trailer: t\r\n\r\n",
            false,
        ),
        ("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", false),
        ("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", false),
        ("HTTP/1.1 200 OK\r\n\r\nto the end", true),
        ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nafter", false),
    ]))
    .await;
    let (running, _dir) = raw::gateway_for(CONFIG, upstream.addr).await;
    let addr = running.addr;

    let r = get(addr, "GET", "/a").await;
    assert_eq!((r.status, r.text()), (200, "hello".to_string()));
    let r = get(addr, "GET", "/b").await;
    assert_eq!((r.status, r.text()), (200, "hello world".to_string()));
    let r = get(addr, "HEAD", "/c").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-length"),
        Some("100"),
        "HEAD keeps the length"
    );
    assert!(r.body.is_empty());
    let r = get(addr, "GET", "/d").await;
    assert_eq!(r.status, 204, "the interim 100 is skipped");
    assert_eq!(
        upstream.connections(),
        1,
        "one connection for four exchanges"
    );
    let r = get(addr, "GET", "/e").await;
    assert_eq!((r.status, r.text()), (200, "to the end".to_string()));
    let r = get(addr, "GET", "/f").await;
    assert_eq!((r.status, r.text()), (200, "after".to_string()));
    assert_eq!(
        upstream.connections(),
        2,
        "a body delimited by the close needs a new connection after it"
    );
}

#[tokio::test]
async fn ambiguous_response_framing_is_502_and_the_connection_is_dropped() {
    for bad in [
        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\nabc",
        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        "HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\nabc",
        "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-Bad : space\r\nContent-Length: 3\r\n\r\nabc",
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
    ] {
        let upstream = ScriptedUpstream::start(script(&[
            (bad, false),
            ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nclean", false),
        ]))
        .await;
        let (running, _dir) = raw::gateway_for(CONFIG, upstream.addr).await;
        let r = get(running.addr, "GET", "/").await;
        assert_eq!(r.status, 502, "{bad:?}");
        assert!(
            !r.text().contains("abc"),
            "{bad:?}: body passed: {}",
            r.text()
        );
        let r = get(running.addr, "GET", "/").await;
        assert_eq!((r.status, r.text()), (200, "clean".to_string()), "{bad:?}");
        assert_eq!(
            upstream.connections(),
            2,
            "{bad:?}: the connection was reused"
        );
    }
}

#[tokio::test]
async fn bytes_after_a_response_never_answer_another_request() {
    // One write from the upstream holds a response and a second, unasked-for one.
    let upstream = ScriptedUpstream::start(script(&[
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil",
            false,
        ),
        ("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond", false),
    ]))
    .await;
    let (running, _dir) = raw::gateway_for(CONFIG, upstream.addr).await;
    let r = get(running.addr, "GET", "/one").await;
    assert_eq!((r.status, r.text()), (200, "a".to_string()));
    let r = get(running.addr, "GET", "/two").await;
    assert_eq!((r.status, r.text()), (200, "second".to_string()));
    assert_eq!(
        upstream.connections(),
        2,
        "the desynced connection was reused"
    );
}

#[tokio::test]
async fn a_truncated_body_ends_the_client_response_too() {
    let upstream = ScriptedUpstream::start(script(&[(
        "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
        true,
    )]))
    .await;
    let (running, _dir) = raw::gateway_for(CONFIG, upstream.addr).await;
    let req = "GET / HTTP/1.1\r\nHost: gw.test\r\n\r\n";
    let ex = raw::exchange_for(running.addr, req.as_bytes(), Duration::from_secs(3)).await;
    let text = String::from_utf8_lossy(&ex.bytes);
    // hyper's server may have sent the head and the five bytes, or nothing: either way the
    // client must not be able to read a complete response, and the connection ends.
    assert!(
        raw::parse_responses(&ex.bytes, false).is_empty(),
        "a complete response: {text}"
    );
    assert!(
        ex.closed,
        "the client connection is closed: it cannot be told otherwise"
    );
}

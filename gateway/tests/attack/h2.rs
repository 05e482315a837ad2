//! Attack class 11: HTTP/2 with prior knowledge (h2c) over raw TCP. The gateway answers the
//! HTTP/2 preface on its cleartext listener (hyper-util's `auto` builder detects it), so every
//! HTTP/2 framing trick is an attack surface. Frames and header blocks are encoded by hand
//! (support/h2raw.rs) so malformed requests really leave the client.
//!
//! For every case: what the client gets (status, stream reset or connection error) and what the
//! recording upstream saw — exactly one well-formed HTTP/1.1 request per accepted client request,
//! on the path the route decision used, and never a client-sent identity header.

use crate::support;

use std::time::{Duration, Instant};

use support::h2raw::{self, Conn, Outcome, block, frame, get};
use support::{Harness, basic};

const CONFIG: &str = r#"
server:
  public_url: "http://127.0.0.1:8080"
  header_read_timeout: 2s
  max_header_bytes: 8192
upstream:
  url: "http://{upstream}"
  connect_timeout: 1s
  timeout: 2s
  preserve_host: true
session:
  secure: false
  secret: "0123456789abcdef0123456789abcdef-test"
routes:
  - match: { host: admin.test, path: / }
    access: { groups: [admins] }
  - match: { path: /static/ }
    access: public
  - match: { path: /upload }
    access: public
  - match: { path: /admin }
    access: { groups: [admins] }
  - match: { path: /internal/ }
    access: deny
  - match: { path: / }
    access: authenticated
"#;

const HOST: &str = "gw.test";

/// What the upstream saw, as `METHOD path`.
fn seen(h: &Harness) -> Vec<String> {
    h.upstream
        .seen()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

/// No client-sent identity header value (`spoofed...`) reached the upstream, in any header.
fn no_spoof_upstream(h: &Harness, what: &str) {
    for r in h.upstream.seen() {
        for (name, value) in &r.headers {
            assert!(
                !value.as_bytes().windows(7).any(|w| w == b"spoofed"),
                "{what}: upstream got {name}: {value:?}"
            );
        }
    }
}

/// The gateway still serves a fresh HTTP/2 connection.
async fn still_serves(h: &Harness) {
    let mut c = Conn::open(h.addr).await;
    let o = c.request(1, &get(HOST, "/static/alive", &[])).await;
    assert_eq!(o.status(), 200, "gateway no longer serves: {o:?}");
}

#[tokio::test]
async fn h2c_prior_knowledge_is_served_and_forwarded_as_http11() {
    let h = Harness::start_with(CONFIG).await;
    let mut c = Conn::open(h.addr).await;
    let o = c.request(1, &get(HOST, "/static/x?q=1", &[])).await;
    assert_eq!(o.status(), 200, "{o:?}");
    assert_eq!(o.text(), "upstream saw /static/x?q=1");
    // The limits the gateway announces: concurrent streams, header list (max_header_bytes), and
    // extended CONNECT for WebSockets (RFC 8441).
    for (id, want) in [(0x3u16, 200u32), (0x6, 8192), (0x8, 1)] {
        assert_eq!(
            c.settings.iter().find(|(i, _)| *i == id).map(|(_, v)| *v),
            Some(want),
            "setting {id:#x} in {:?}",
            c.settings
        );
    }
    let up = h.upstream.seen();
    assert_eq!(seen(&h), ["GET /static/x?q=1"]);
    assert_eq!(
        up[0].get("host").as_deref(),
        Some(HOST),
        "Host from :authority"
    );
    assert_eq!(up[0].get("x-forwarded-proto").as_deref(), Some("http"));
    // A protected route over h2: challenged like HTTP/1.1, nothing forwarded.
    h.upstream.clear();
    let o = c.request(3, &get(HOST, "/app", &[])).await;
    assert_eq!(o.status(), 401, "{o:?}");
    assert!(o.header("www-authenticate").is_some());
    assert!(seen(&h).is_empty());
}

/// Pseudo-header misuse is a malformed request (RFC 9113 §8.3): refused before the gateway's
/// phases run, nothing forwarded.
#[tokio::test]
async fn malformed_pseudo_headers_are_refused() {
    let h = Harness::start_with(CONFIG).await;
    let cases: &[(&str, Vec<(&str, &str)>)] = &[
        (
            "duplicate :path",
            vec![
                (":method", "GET"),
                (":scheme", "http"),
                (":authority", HOST),
                (":path", "/static/ok"),
                (":path", "/admin"),
            ],
        ),
        (
            "duplicate :method",
            vec![
                (":method", "GET"),
                (":method", "DELETE"),
                (":scheme", "http"),
                (":authority", HOST),
                (":path", "/static/ok"),
            ],
        ),
        (
            "missing :path",
            vec![
                (":method", "GET"),
                (":scheme", "http"),
                (":authority", HOST),
            ],
        ),
        (
            "missing :method",
            vec![
                (":scheme", "http"),
                (":authority", HOST),
                (":path", "/static/ok"),
            ],
        ),
        (
            "missing :scheme",
            vec![
                (":method", "GET"),
                (":authority", HOST),
                (":path", "/static/ok"),
            ],
        ),
        (
            "pseudo-header after a regular header",
            vec![
                (":method", "GET"),
                (":scheme", "http"),
                (":authority", HOST),
                ("accept", "*/*"),
                (":path", "/static/ok"),
            ],
        ),
        (
            "unknown pseudo-header",
            get(HOST, "/static/ok", &[(":x-remote-user", "spoofed")]),
        ),
        (
            "response pseudo-header in a request",
            vec![
                (":method", "GET"),
                (":scheme", "http"),
                (":authority", HOST),
                (":path", "/static/ok"),
                (":status", "200"),
            ],
        ),
        ("empty :path", get(HOST, "", &[])),
    ];
    let mut id = 1;
    for (what, fields) in cases {
        h.upstream.clear();
        let mut c = Conn::open(h.addr).await;
        let o = c.request(id, fields).await;
        assert!(o.rejected(), "{what}: {o:?}");
        assert!(seen(&h).is_empty(), "{what}: upstream saw {:?}", seen(&h));
        id += 2;
    }
    still_serves(&h).await;
}

/// Ambiguous `:path` values are 400 as over HTTP/1.1; a path that merely collapses is forwarded
/// as the normalized path the route decision used.
#[tokio::test]
async fn ambiguous_paths_are_refused_and_routing_uses_the_forwarded_path() {
    let h = Harness::start_with(CONFIG).await;
    let refused = [
        "/static/../admin",
        "/static/%2e%2e/admin",
        "/static/%2E%2E/admin",
        "/static/.%2e/admin",
        "/static/%2fadmin",
        "/static/..%2fadmin",
        "/static/%5c..%5cadmin",
        "/static/;/admin",
        "*",
        "http://evil.test/static/x",
        "static/x",
        "/static/%00",
        "/static/%252e%252e/admin",
    ];
    let mut c = Conn::open(h.addr).await;
    let mut id = 1;
    for path in refused {
        h.upstream.clear();
        let o = c.request(id, &get(HOST, path, &[])).await;
        id += 2;
        assert!(o.rejected(), "{path}: {o:?}");
        assert!(seen(&h).is_empty(), "{path}: upstream saw {:?}", seen(&h));
        if o.refused() {
            // A connection-level refusal: carry on with a fresh connection.
            c = Conn::open(h.addr).await;
            id = 1;
        }
    }
    // `//` collapses: matched and forwarded as `/static/x`; `/static//../admin` stays refused.
    h.upstream.clear();
    let o = c.request(id, &get(HOST, "//static//x", &[])).await;
    assert_eq!(o.status(), 200, "{o:?}");
    assert_eq!(seen(&h), ["GET /static/x"]);
    // The normalized path decides: `/static` without the slash is not under `/static/`.
    h.upstream.clear();
    let o = c.request(id + 2, &get(HOST, "/%73tatic/x", &[])).await;
    assert_eq!(
        o.status(),
        200,
        "an unreserved escape is decoded before matching: {o:?}"
    );
    assert_eq!(seen(&h), ["GET /static/x"]);
    h.upstream.clear();
    let o = c.request(id + 4, &get(HOST, "/admin/%2e", &[])).await;
    assert!(o.rejected(), "{o:?}");
    assert!(seen(&h).is_empty());
}

/// Header names HTTP/2 forbids (upper case, spaces, colons, NUL, high bytes) are malformed:
/// refused, even when they spell an identity header, and even on a public route.
#[tokio::test]
async fn invalid_header_names_are_refused() {
    let h = Harness::start_with(CONFIG).await;
    let names: &[&[u8]] = &[
        b"X-Remote-User",
        b"x-Remote-user",
        b"x remote user",
        b"x-remote-user ",
        b"x-remote-user:",
        b"x:remote-user",
        b"x-remote-user\0",
        b"x-remote-\xc3\xbcser",
        b"",
    ];
    for name in names {
        h.upstream.clear();
        let mut c = Conn::open(h.addr).await;
        let mut fields: Vec<(&[u8], &[u8])> = get(HOST, "/static/ok", &[])
            .into_iter()
            .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
            .collect();
        fields.push((name, b"spoofed"));
        c.send(&frame(
            h2raw::HEADERS,
            h2raw::END_STREAM | h2raw::END_HEADERS,
            1,
            &h2raw::block_bytes(&fields),
        ))
        .await;
        let o = c.outcome(1, Duration::from_secs(5)).await;
        assert!(o.refused(), "{:?}: {o:?}", String::from_utf8_lossy(name));
        assert!(seen(&h).is_empty(), "{name:?}: upstream saw {:?}", seen(&h));
    }
    // A value with a NUL or CR/LF is refused too.
    for value in ["spoofed\0admin", "spoofed\r\nx-remote-user: admin"] {
        h.upstream.clear();
        let mut c = Conn::open(h.addr).await;
        let o = c
            .request(1, &get(HOST, "/static/ok", &[("x-note", value)]))
            .await;
        assert!(o.refused(), "{value:?}: {o:?}");
        assert!(seen(&h).is_empty());
    }
    still_serves(&h).await;
}

/// Connection-specific headers are malformed in HTTP/2 (RFC 9113 §8.2.2); `te` only allows
/// `trailers` (and is then not forwarded: it is hop-by-hop).
#[tokio::test]
async fn connection_specific_headers_are_refused() {
    let h = Harness::start_with(CONFIG).await;
    let cases = [
        ("connection", "close"),
        ("connection", "x-remote-user"),
        ("keep-alive", "timeout=5"),
        ("proxy-connection", "keep-alive"),
        ("transfer-encoding", "chunked"),
        ("upgrade", "websocket"),
        ("upgrade", "h2c"),
        ("te", "gzip"),
        ("te", "trailers, gzip"),
    ];
    for (name, value) in cases {
        h.upstream.clear();
        let mut c = Conn::open(h.addr).await;
        let o = c
            .request(1, &get(HOST, "/static/ok", &[(name, value)]))
            .await;
        assert!(o.refused(), "{name}: {value}: {o:?}");
        assert!(seen(&h).is_empty(), "{name}: upstream saw {:?}", seen(&h));
    }
    h.upstream.clear();
    let mut c = Conn::open(h.addr).await;
    let o = c
        .request(1, &get(HOST, "/static/ok", &[("te", "trailers")]))
        .await;
    assert_eq!(o.status(), 200, "{o:?}");
    let up = h.upstream.seen();
    assert_eq!(up.len(), 1);
    assert!(up[0].get("te").is_none(), "te is hop-by-hop");
}

/// `:authority` and `Host` name the same target or the request is 400: otherwise the route
/// decision could use one and the upstream's virtual hosting the other.
#[tokio::test]
async fn authority_and_host_must_agree() {
    let h = Harness::start_with(CONFIG).await;
    let mut c = Conn::open(h.addr).await;
    // admin.test is admins-only; the path-only rule for `/app` is merely `authenticated`.
    for (authority, host) in [
        (HOST, "admin.test"),
        ("admin.test", HOST),
        (HOST, "gw.test:8080"),
        (HOST, "gw.test:443"),
        (HOST, "gw.test.evil"),
    ] {
        h.upstream.clear();
        let alice = basic("alice", "alice-pw");
        let o = c
            .request(
                1,
                &get(
                    authority,
                    "/app",
                    &[("host", host), ("authorization", alice.as_str())],
                ),
            )
            .await;
        assert_eq!(o.status(), 400, "{authority} vs {host}: {o:?}");
        assert!(seen(&h).is_empty(), "{authority} vs {host}: {:?}", seen(&h));
        c = Conn::open(h.addr).await;
    }
    let bob = basic("bob", "bob-pw");
    // Agreeing (case and the scheme's default port aside, RFC 3986 §6.2.3 as RFC 9113 §8.3.1
    // asks): routed and forwarded on that host.
    h.upstream.clear();
    let o = c
        .request(
            1,
            &get(
                HOST,
                "/app",
                &[("host", "gw.test:80"), ("authorization", bob.as_str())],
            ),
        )
        .await;
    assert_eq!(o.status(), 200, "{o:?}");
    c = Conn::open(h.addr).await;
    let alice = basic("alice", "alice-pw");
    let o = c
        .request(
            1,
            &get(
                "admin.test",
                "/app",
                &[("host", "ADMIN.test"), ("authorization", alice.as_str())],
            ),
        )
        .await;
    assert_eq!(o.status(), 403, "alice is no admin on admin.test: {o:?}");
    h.upstream.clear();
    let o = c
        .request(
            3,
            &get("admin.test", "/app", &[("authorization", bob.as_str())]),
        )
        .await;
    assert_eq!(o.status(), 200, "{o:?}");
    let up = h.upstream.seen();
    assert_eq!(up.len(), 1);
    assert_eq!(up[0].get("host").as_deref(), Some("admin.test"));
    assert_eq!(up[0].get("x-forwarded-host").as_deref(), Some("admin.test"));
    // Userinfo and other non-plain hosts: an upstream reading `Host` as a URL authority would
    // see `admin.test` where the route table did not. 400, over HTTP/2 and HTTP/1.1.
    for (i, bad) in [
        "x@admin.test",
        "admin.test@gw.test",
        "admin.test:80@gw.test",
        "admin.test/x",
        "admin.test:x",
    ]
    .into_iter()
    .enumerate()
    {
        h.upstream.clear();
        let id = 101 + 2 * i as u32;
        let o = c
            .request(id, &get(bad, "/app", &[("authorization", alice.as_str())]))
            .await;
        assert!(o.rejected(), ":authority {bad}: {o:?}");
        if o.refused() {
            c = Conn::open(h.addr).await;
        }
        let ex = support::raw::send(
            h.addr,
            &format!(
                "GET /app HTTP/1.1\r\nHost: {bad}\r\nAuthorization: {alice}\r\nConnection: close\r\n\r\n"
            ),
        )
        .await;
        assert_eq!(ex.status(), 400, "HTTP/1.1 Host: {bad}");
        assert!(seen(&h).is_empty(), "{bad}: {:?}", seen(&h));
    }
    let mut c = Conn::open(h.addr).await;
    // Only `host` (no `:authority`): that host is routed.
    h.upstream.clear();
    let o = c
        .request(
            5,
            &[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/app"),
                ("host", "admin.test"),
                ("authorization", alice.as_str()),
            ],
        )
        .await;
    assert_eq!(o.status(), 403, "{o:?}");
    assert!(seen(&h).is_empty());
    // Neither: 400.
    let o = c
        .request(
            7,
            &[(":method", "GET"), (":scheme", "http"), (":path", "/app")],
        )
        .await;
    assert!(o.rejected(), "{o:?}");
    // Two `host` headers: 400.
    let o = c
        .request(
            9,
            &get(HOST, "/static/x", &[("host", HOST), ("host", "admin.test")]),
        )
        .await;
    assert!(o.rejected(), "{o:?}");
    assert!(seen(&h).is_empty());
}

/// Identity and forwarding headers sent over HTTP/2, in every spelling HTTP/2 allows, never
/// reach the upstream: public or protected route.
#[tokio::test]
async fn identity_headers_over_h2_never_reach_the_upstream() {
    let h = Harness::start_with(CONFIG).await;
    let spoofs: Vec<(&str, &str)> = vec![
        ("x-remote-user", "spoofed-admin"),
        ("x_remote_user", "spoofed-admin"),
        ("x.remote.user", "spoofed-admin"),
        ("x-remote_user", "spoofed-admin"),
        ("x-remote-groups", "spoofed,admins"),
        ("x-remote-email", "spoofed@evil.test"),
        ("x-forwarded-for", "6.6.6.6-spoofed"),
        ("x-forwarded-host", "spoofed.test"),
        ("forwarded", "for=spoofed"),
        ("x-real-ip", "spoofed"),
        ("x-original-url", "/spoofed"),
        ("x-http-method-override", "spoofed"),
    ];
    let mut c = Conn::open(h.addr).await;
    // Public: forwarded anonymous, spoofs dropped.
    let o = c.request(1, &get(HOST, "/static/x", &spoofs)).await;
    assert_eq!(o.status(), 200, "{o:?}");
    let up = h.upstream.seen();
    assert_eq!(up.len(), 1);
    assert!(up[0].get("x-remote-user").is_none());
    no_spoof_upstream(&h, "public");
    // Protected as alice: her identity only.
    h.upstream.clear();
    let alice = basic("alice", "alice-pw");
    let mut fields = spoofs.clone();
    fields.push(("authorization", alice.as_str()));
    let o = c.request(3, &get(HOST, "/app", &fields)).await;
    assert_eq!(o.status(), 200, "{o:?}");
    let up = h.upstream.seen();
    assert_eq!(up.len(), 1);
    assert_eq!(up[0].all("x-remote-user"), ["alice"]);
    assert_eq!(up[0].all("x-remote-groups"), ["staff"]);
    assert!(
        up[0].get("authorization").is_none(),
        "consumed Basic is not forwarded"
    );
    no_spoof_upstream(&h, "protected");
    // Protected without credentials: the spoof does not authenticate anyone.
    h.upstream.clear();
    let o = c.request(5, &get(HOST, "/admin", &spoofs)).await;
    assert_eq!(o.status(), 401, "{o:?}");
    assert!(seen(&h).is_empty());
}

/// A header block split over CONTINUATION frames (even in the middle of a field) is one header
/// block: the identity header inside is dropped like any other.
#[tokio::test]
async fn continuation_frames_cannot_hide_identity_headers() {
    let h = Harness::start_with(CONFIG).await;
    let alice = basic("alice", "alice-pw");
    let fields = get(
        HOST,
        "/app",
        &[
            ("authorization", alice.as_str()),
            ("x-remote-user", "spoofed-admin"),
            ("x_remote_groups", "spoofed-admins"),
        ],
    );
    let whole = block(&fields);
    for split in [1, whole.len() / 2, whole.len() - 9, whole.len() - 1] {
        h.upstream.clear();
        let mut c = Conn::open(h.addr).await;
        let mut bytes = frame(h2raw::HEADERS, h2raw::END_STREAM, 1, &whole[..split]);
        let rest = &whole[split..];
        let (a, b) = rest.split_at(rest.len() / 2);
        bytes.extend(frame(h2raw::CONTINUATION, 0, 1, a));
        bytes.extend(frame(h2raw::CONTINUATION, h2raw::END_HEADERS, 1, b));
        c.send(&bytes).await;
        let o = c.outcome(1, Duration::from_secs(5)).await;
        assert_eq!(o.status(), 200, "split at {split}: {o:?}");
        let up = h.upstream.seen();
        assert_eq!(up.len(), 1, "split at {split}");
        assert_eq!(up[0].all("x-remote-user"), ["alice"]);
        assert_eq!(up[0].all("x-remote-groups"), ["staff"]);
        no_spoof_upstream(&h, "continuation");
    }
    // A frame of another stream in the middle of a header block is a connection error.
    h.upstream.clear();
    let mut c = Conn::open(h.addr).await;
    let mut bytes = frame(h2raw::HEADERS, h2raw::END_STREAM, 1, &whole[..10]);
    bytes.extend(frame(
        h2raw::HEADERS,
        h2raw::END_STREAM | h2raw::END_HEADERS,
        3,
        &block(&get(HOST, "/static/interleaved", &[])),
    ));
    bytes.extend(frame(
        h2raw::CONTINUATION,
        h2raw::END_HEADERS,
        1,
        &whole[10..],
    ));
    c.send(&bytes).await;
    let o = c.outcome(1, Duration::from_secs(5)).await;
    assert!(
        matches!(o, Outcome::GoAway(h2raw::PROTOCOL_ERROR) | Outcome::Closed),
        "{o:?}"
    );
    assert!(seen(&h).is_empty(), "{:?}", seen(&h));
    // CONTINUATION without a preceding HEADERS: connection error too.
    let mut c = Conn::open(h.addr).await;
    c.send(&frame(h2raw::CONTINUATION, h2raw::END_HEADERS, 1, &whole))
        .await;
    assert!(c.closes_within(Duration::from_secs(5)).await);
    assert!(seen(&h).is_empty());
    still_serves(&h).await;
}

/// A header list over `server.max_header_bytes` is refused (stream error or 431); the flood of
/// CONTINUATION frames that never ends the block is cut off (CVE-2024-27316 class).
#[tokio::test]
async fn oversized_header_lists_and_continuation_floods_are_cut_off() {
    let h = Harness::start_with(CONFIG).await;
    let big = "a".repeat(12 * 1024);
    let mut c = Conn::open(h.addr).await;
    let o = c
        .request(1, &get(HOST, "/static/big", &[("x-big", big.as_str())]))
        .await;
    assert!(o.refused() || o.status() == 431, "{o:?}");
    assert!(seen(&h).is_empty());
    // Many small headers adding up past the limit.
    let many: Vec<(String, String)> = (0..400)
        .map(|i| (format!("x-h{i}"), "v".repeat(20)))
        .collect();
    let many_ref: Vec<(&str, &str)> = many.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let mut c = Conn::open(h.addr).await;
    let o = c.request(1, &get(HOST, "/static/many", &many_ref)).await;
    assert!(o.refused() || o.status() == 431, "{o:?}");
    assert!(seen(&h).is_empty());

    // CONTINUATION flood: 4 MiB of header block that never ends.
    let mut c = Conn::open(h.addr).await;
    c.send(&frame(
        h2raw::HEADERS,
        h2raw::END_STREAM,
        1,
        &block(&get(HOST, "/static/flood", &[])),
    ))
    .await;
    let chunk = block(&[("x-flood", &"f".repeat(16000))]);
    let started = Instant::now();
    let mut sent = 0usize;
    while sent < 4 << 20 && started.elapsed() < Duration::from_secs(10) {
        let w = tokio::time::timeout(
            Duration::from_secs(2),
            tokio::io::AsyncWriteExt::write_all(
                &mut c.stream,
                &frame(h2raw::CONTINUATION, 0, 1, &chunk),
            ),
        )
        .await;
        match w {
            Ok(Ok(())) => sent += chunk.len(),
            _ => break,
        }
    }
    assert!(
        sent < 4 << 20,
        "the gateway read a 4 MiB header block without closing the connection"
    );
    assert!(seen(&h).is_empty());
    still_serves(&h).await;
}

/// Rapid reset (CVE-2023-44487): streams opened and reset at once. The gateway stays up, keeps
/// serving other clients, cuts the abusive connection off, and the cancelled requests do not pile
/// up upstream.
#[tokio::test]
async fn rapid_reset_flood_leaves_the_gateway_serving() {
    let h = Harness::start_with(CONFIG).await;
    let mut attacker = Conn::open(h.addr).await;
    let streams = 5_000u32;
    let mut bytes = Vec::new();
    for i in 0..streams {
        let id = 1 + 2 * i;
        bytes.extend(frame(
            h2raw::HEADERS,
            h2raw::END_STREAM | h2raw::END_HEADERS,
            id,
            &block(&get(HOST, "/static/reset", &[])),
        ));
        bytes.extend(frame(
            h2raw::RST_STREAM,
            0,
            id,
            &h2raw::CANCEL.to_be_bytes(),
        ));
    }
    let flood = tokio::spawn(async move {
        let _ = tokio::time::timeout(
            Duration::from_secs(10),
            tokio::io::AsyncWriteExt::write_all(&mut attacker.stream, &bytes),
        )
        .await;
        let closed = attacker.closes_within(Duration::from_secs(10)).await;
        (closed, attacker.goaways.clone())
    });
    // Meanwhile another client is served.
    let bystander = support::hyper_client::<http_body_util::Empty<bytes::Bytes>>(true);
    let started = Instant::now();
    let resp = bystander
        .get(
            format!("http://{}/static/bystander", h.addr)
                .parse()
                .unwrap(),
        )
        .await
        .expect("bystander served during the flood");
    assert_eq!(resp.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(5));
    let (closed, goaways) = flood.await.unwrap();
    assert!(closed, "the flooding connection was not cut off");
    assert!(
        goaways
            .iter()
            .any(|(_, code)| *code == h2raw::ENHANCE_YOUR_CALM),
        "GOAWAY ENHANCE_YOUR_CALM expected, got {goaways:?}"
    );
    let reached = h
        .upstream
        .seen()
        .iter()
        .filter(|r| r.path == "/static/reset")
        .count();
    eprintln!(
        "rapid reset: {reached} of {streams} reset requests reached the upstream; GOAWAY {goaways:?}"
    );
    assert!(
        reached < 200,
        "{reached} reset requests reached the upstream"
    );
    still_serves(&h).await;
}

/// A flood of malformed requests, each costing the gateway a stream reset (CVE-2019-9514
/// class): the connection is cut off with `ENHANCE_YOUR_CALM`, nothing is forwarded, others are
/// served.
#[tokio::test]
async fn malformed_request_flood_is_cut_off() {
    let h = Harness::start_with(CONFIG).await;
    let mut attacker = Conn::open(h.addr).await;
    let mut bytes = Vec::new();
    for i in 0..2_000u32 {
        bytes.extend(frame(
            h2raw::HEADERS,
            h2raw::END_STREAM | h2raw::END_HEADERS,
            1 + 2 * i,
            &block(&get(HOST, "/static/malformed", &[("connection", "close")])),
        ));
    }
    let _ = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::io::AsyncWriteExt::write_all(&mut attacker.stream, &bytes),
    )
    .await;
    assert!(attacker.closes_within(Duration::from_secs(10)).await);
    assert!(
        attacker
            .goaways
            .iter()
            .any(|(_, code)| *code == h2raw::ENHANCE_YOUR_CALM),
        "{:?}",
        attacker.goaways
    );
    assert!(seen(&h).is_empty(), "{:?}", seen(&h).len());
    still_serves(&h).await;
}

/// SETTINGS and PING floods: the gateway acknowledges at its own pace (it stops reading while
/// acks are unsent), other clients are served.
#[tokio::test]
async fn settings_and_ping_floods_leave_the_gateway_serving() {
    let h = Harness::start_with(CONFIG).await;
    for (kind, payload) in [
        (h2raw::SETTINGS, vec![0u8, 3, 0, 0, 0, 100]),
        (h2raw::PING, vec![7u8; 8]),
    ] {
        let mut attacker = Conn::open(h.addr).await;
        let one = frame(kind, 0, 0, &payload);
        let bytes: Vec<u8> = one
            .iter()
            .copied()
            .cycle()
            .take(one.len() * 100_000)
            .collect();
        let flood = tokio::spawn(async move {
            // The attacker never reads: the gateway's acks back up and it must stop reading.
            let _ = tokio::time::timeout(
                Duration::from_secs(5),
                tokio::io::AsyncWriteExt::write_all(&mut attacker.stream, &bytes),
            )
            .await;
            attacker
        });
        let started = Instant::now();
        still_serves(&h).await;
        assert!(started.elapsed() < Duration::from_secs(3));
        drop(flood.await.unwrap());
    }
    assert_eq!(seen(&h), ["GET /static/alive", "GET /static/alive"]);
}

/// Stream-id misuse is a connection error, nothing forwarded.
#[tokio::test]
async fn stream_id_misuse_is_a_connection_error() {
    let h = Harness::start_with(CONFIG).await;
    // Even (server-initiated) stream id.
    let mut c = Conn::open(h.addr).await;
    let o = c.request(2, &get(HOST, "/static/even", &[])).await;
    assert!(matches!(o, Outcome::GoAway(_) | Outcome::Closed), "{o:?}");
    // A stream id going backwards.
    let mut c = Conn::open(h.addr).await;
    let o = c.request(5, &get(HOST, "/static/five", &[])).await;
    assert_eq!(o.status(), 200);
    let o = c.request(3, &get(HOST, "/static/three", &[])).await;
    assert!(matches!(o, Outcome::GoAway(_) | Outcome::Closed), "{o:?}");
    assert_eq!(seen(&h), ["GET /static/five"]);
}

/// HEADERS (without END_STREAM) of a `POST /upload` on stream 1 announcing `content_length`.
fn upload_headers(content_length: &str) -> Vec<u8> {
    frame(
        h2raw::HEADERS,
        h2raw::END_HEADERS,
        1,
        &block(&[
            (":method", "POST"),
            (":scheme", "http"),
            (":authority", HOST),
            (":path", "/upload"),
            ("content-length", content_length),
        ]),
    )
}

/// A body longer than its `content-length` is a malformed request: the stream is reset and
/// no second request can be carved out of the surplus upstream.
#[tokio::test]
async fn content_length_mismatch_cannot_smuggle() {
    let h = Harness::start_with(CONFIG).await;
    let mut c = Conn::open(h.addr).await;
    let smuggled = "GET /static/smuggled HTTP/1.1\r\nHost: gw.test\r\n\r\n";
    let mut bytes = upload_headers("4");
    bytes.extend(frame(
        h2raw::DATA,
        h2raw::END_STREAM,
        1,
        format!("body{smuggled}").as_bytes(),
    ));
    c.send(&bytes).await;
    let o = c.outcome(1, Duration::from_secs(5)).await;
    assert!(o.refused() || o.status() >= 400, "{o:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let s = seen(&h);
    assert!(s.iter().all(|r| !r.contains("smuggled")), "{s:?}");
    assert!(s.len() <= 1, "{s:?}");
    // A body shorter than announced: the upstream never gets a complete request out of it.
    h.upstream.clear();
    let mut c = Conn::open(h.addr).await;
    let mut bytes = upload_headers("100");
    bytes.extend(frame(h2raw::DATA, h2raw::END_STREAM, 1, b"short"));
    c.send(&bytes).await;
    let o = c.outcome(1, Duration::from_secs(5)).await;
    assert!(o.refused() || o.status() >= 400, "{o:?}");
    assert_ne!(o.text(), "5", "a short body was accepted as complete");
}

/// `CONNECT` without `:protocol` (a plain tunnel request) is refused: the gateway is no
/// forward proxy. Nothing is forwarded.
#[tokio::test]
async fn plain_connect_is_refused() {
    let h = Harness::start_with(CONFIG).await;
    let alice = basic("alice", "alice-pw");
    for authority in [HOST, "127.0.0.1:22", "admin.test:443"] {
        h.upstream.clear();
        let mut c = Conn::open(h.addr).await;
        let o = c
            .request(
                1,
                &[
                    (":method", "CONNECT"),
                    (":authority", authority),
                    ("authorization", alice.as_str()),
                ],
            )
            .await;
        assert!(o.rejected(), "CONNECT {authority}: {o:?}");
        assert!(seen(&h).is_empty(), "CONNECT {authority}: {:?}", seen(&h));
    }
    // CONNECT with a path but no :protocol is malformed.
    let mut c = Conn::open(h.addr).await;
    let o = c
        .request(
            1,
            &[
                (":method", "CONNECT"),
                (":scheme", "http"),
                (":authority", HOST),
                (":path", "/static/x"),
            ],
        )
        .await;
    assert!(o.rejected(), "{o:?}");
    assert!(seen(&h).is_empty());
}

/// Trailers (a second HEADERS frame ending the stream) named like identity headers never reach
/// the upstream: not as headers, not as HTTP/1.1 trailers. Checked on the upstream's raw bytes.
#[tokio::test]
async fn trailers_cannot_carry_identity_headers() {
    let h = support::raw::RawHarness::start(CONFIG).await;
    let alice = basic("alice", "alice-pw");
    for (path, auth) in [("/static/up", None), ("/app/up", Some(alice.as_str()))] {
        let before = h.upstream.seen().len();
        let mut c = Conn::open(h.addr).await;
        let mut head = vec![
            (":method", "POST"),
            (":scheme", "http"),
            (":authority", HOST),
            (":path", path),
            ("te", "trailers"),
            ("trailer", "x-remote-user, x_remote_groups"),
        ];
        if let Some(a) = auth {
            head.push(("authorization", a));
        }
        let mut bytes = frame(h2raw::HEADERS, h2raw::END_HEADERS, 1, &block(&head));
        bytes.extend(frame(h2raw::DATA, 0, 1, b"hello"));
        bytes.extend(frame(
            h2raw::HEADERS,
            h2raw::END_STREAM | h2raw::END_HEADERS,
            1,
            &block(&[
                ("x-remote-user", "spoofed-admin"),
                ("x_remote_groups", "spoofed-admins"),
            ]),
        ));
        c.send(&bytes).await;
        let o = c.outcome(1, Duration::from_secs(5)).await;
        assert_eq!(o.status(), 200, "{path}: {o:?}");
        let seen = h.upstream.seen();
        assert_eq!(seen.len(), before + 1, "{path}");
        let got = seen.last().unwrap().to_ascii_lowercase();
        assert!(got.contains("hello"), "body forwarded: {got:?}");
        assert!(
            !got.contains("spoofed"),
            "{path}: trailer reached upstream: {got:?}"
        );
        assert!(!got.contains("\r\ntrailer:"), "{path}: {got:?}");
        if auth.is_some() {
            assert!(got.contains("\r\nx-remote-user: alice\r\n"), "{got:?}");
        }
    }
}

/// `:scheme https` on the cleartext listener does not make the upstream believe the client
/// used TLS.
#[tokio::test]
async fn scheme_pseudo_header_does_not_set_the_forwarded_proto() {
    let h = Harness::start_with(CONFIG).await;
    let mut c = Conn::open(h.addr).await;
    let o = c
        .request(
            1,
            &[
                (":method", "GET"),
                (":scheme", "https"),
                (":authority", HOST),
                (":path", "/static/s"),
            ],
        )
        .await;
    assert_eq!(o.status(), 200, "{o:?}");
    let up = h.upstream.seen();
    assert_eq!(up.len(), 1);
    assert_eq!(up[0].get("x-forwarded-proto").as_deref(), Some("http"));
}

/// Connections that hold resources without asking anything are closed after
/// `server.header_read_timeout` (1 s here), as hyper already does for an idle HTTP/1.1
/// keep-alive connection: one that never sends a byte, one that stops inside the HTTP/2
/// preface, and an HTTP/2 connection without open streams. A slow request in flight keeps its
/// connection.
#[tokio::test]
async fn idle_and_silent_connections_are_closed() {
    let h =
        Harness::start_with(&CONFIG.replace("header_read_timeout: 2s", "header_read_timeout: 1s"))
            .await;
    let closes = |mut s: tokio::net::TcpStream| async move {
        let started = Instant::now();
        let mut buf = [0u8; 1024];
        loop {
            match tokio::time::timeout(
                Duration::from_secs(4),
                tokio::io::AsyncReadExt::read(&mut s, &mut buf),
            )
            .await
            {
                Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
                Ok(Ok(_)) => {}
                Err(_) => return None,
            }
        }
    };
    let silent = tokio::net::TcpStream::connect(h.addr).await.unwrap();
    let t = closes(silent)
        .await
        .expect("a silent connection is kept open");
    assert!(t >= Duration::from_millis(900), "closed after {t:?}");
    let mut partial = tokio::net::TcpStream::connect(h.addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut partial, b"PRI * HTTP/2.0\r\n")
        .await
        .unwrap();
    closes(partial)
        .await
        .expect("a connection stuck in the preface is kept open");

    // An HTTP/2 connection that served a request and then stays idle: GOAWAY, then closed.
    let mut c = Conn::open(h.addr).await;
    assert_eq!(
        c.request(1, &get(HOST, "/static/x", &[])).await.status(),
        200
    );
    let started = Instant::now();
    assert!(
        c.closes_within(Duration::from_secs(4)).await,
        "an idle HTTP/2 connection is kept open"
    );
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(
        c.goaways.first().map(|g| g.1),
        Some(0),
        "a graceful GOAWAY (NO_ERROR)"
    );

    // A request slower than the idle period: answered (504 after upstream.timeout, 2 s).
    let mut c = Conn::open(h.addr).await;
    let alice = basic("alice", "alice-pw");
    let o = c
        .request(1, &get(HOST, "/slow", &[("authorization", alice.as_str())]))
        .await;
    assert_eq!(o.status(), 504, "{o:?}");
    // PINGs are no activity: the connection is still closed as idle.
    let mut c = Conn::open(h.addr).await;
    let started = Instant::now();
    let mut closed = false;
    while started.elapsed() < Duration::from_secs(4) {
        c.send(&frame(h2raw::PING, 0, 0, &[1u8; 8])).await;
        if c.closes_within(Duration::from_millis(300)).await {
            closed = true;
            break;
        }
    }
    assert!(closed, "PINGs kept an idle HTTP/2 connection open");
    still_serves(&h).await;
}

/// HTTP/2 may split `cookie` into several fields (RFC 9113 §8.2.3): the session is found in any
/// of them, and the gateway's cookie is removed from all before the upstream gets one joined
/// `Cookie` header.
#[tokio::test]
async fn split_cookie_fields_identify_and_are_stripped() {
    let h = Harness::start_with(CONFIG).await;
    let jar = support::login(&h, "alice", "alice-pw").await;
    let session = jar
        .cookies
        .get("gw_session")
        .expect("session cookie")
        .clone();
    let session_field = format!("gw_session={session}");
    h.upstream.clear();
    let mut c = Conn::open(h.addr).await;
    let o = c
        .request(
            1,
            &get(
                HOST,
                "/app",
                &[
                    ("cookie", "a=1"),
                    ("cookie", session_field.as_str()),
                    ("cookie", "b=2"),
                ],
            ),
        )
        .await;
    assert_eq!(o.status(), 200, "{o:?}");
    let up = h.upstream.seen();
    assert_eq!(up.len(), 1);
    assert_eq!(up[0].all("x-remote-user"), ["alice"]);
    assert_eq!(up[0].all("cookie"), ["a=1; b=2"]);
}

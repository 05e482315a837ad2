//! Attack class 8: methods and upgrades over raw TCP. HEAD, OPTIONS, unknown and lower-case
//! methods get the decision GET gets (or the one their rule says), method-override headers are
//! stripped, and a WebSocket opens only when authenticated and from an allowed `Origin`.

use crate::support;

use std::time::Duration;

use support::raw;
use support::{Harness, basic};

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
login:
  allowed_redirect_hosts: ["app.example.org"]
routes:
  - match: { path: /static/ }
    access: public
  - match: { path: /admin }
    access: { groups: [admins] }
  - match: { path: /reports, methods: [POST] }
    access: { users: [alice] }
  - match: { path: /internal/ }
    access: deny
  - match: { path: / }
    access: authenticated
"#;

fn auth(user: &str) -> String {
    match user {
        "" => String::new(),
        u => format!("Authorization: {}\r\n", basic(u, &format!("{u}-pw"))),
    }
}

#[tokio::test]
async fn every_method_gets_the_get_decision() {
    let h = Harness::start_with(CONFIG).await;
    let methods = [
        "GET", "HEAD", "OPTIONS", "DELETE", "PUT", "PATCH", "TRACE", "PROPFIND", "FOO", "get",
        "Get", "gEt",
    ];
    // (path, user, status for every method)
    let table: &[(&str, &str, u16)] = &[
        ("/admin/x", "", 401),
        ("/admin/x", "alice", 403),
        ("/admin/x", "bob", 200),
        ("/internal/x", "", 403),
        ("/internal/x", "bob", 403),
        ("/app", "", 401),
        ("/app", "eve", 200),
        ("/static/x", "", 200),
    ];
    let mut n = 0;
    for (path, user, want) in table {
        for m in methods {
            h.upstream.clear();
            let req = format!(
                "{m} {path} HTTP/1.1\r\nHost: gw.test\r\n{}Content-Length: 0\r\nConnection: close\r\n\r\n",
                auth(user)
            );
            let ex = raw::exchange_for(h.addr, req.as_bytes(), Duration::from_secs(3)).await;
            let st = raw::parse_responses(&ex.bytes, m.eq_ignore_ascii_case("HEAD"))
                .first()
                .map_or(0, |r| r.status);
            assert_eq!(st, *want, "{m} {path} as {user:?}");
            let seen = h.upstream.seen();
            if *want == 200 {
                assert_eq!(seen.len(), 1, "{m} {path}");
                assert_eq!(seen[0].method, m, "the method is forwarded as sent");
                assert_eq!(seen[0].path, *path);
            } else {
                assert!(seen.is_empty(), "{m} {path} as {user:?} forwarded");
            }
            n += 1;
        }
    }
    assert_eq!(n, table.len() * methods.len());
}

/// A rule restricted to `POST` meets `post`, `Post`: some upstreams upper-case the method.
#[tokio::test]
async fn method_case_cannot_dodge_a_method_rule() {
    let h = Harness::start_with(CONFIG).await;
    for m in ["POST", "post", "Post", "pOST"] {
        for (user, want) in [("alice", 200), ("bob", 403), ("", 401)] {
            h.upstream.clear();
            let req = format!(
                "{m} /reports HTTP/1.1\r\nHost: gw.test\r\n{}Content-Length: 0\r\nConnection: close\r\n\r\n",
                auth(user)
            );
            let ex = raw::send(h.addr, &req).await;
            assert_eq!(ex.status(), want, "{m} /reports as {user:?}");
            assert_eq!(h.upstream.seen().len(), usize::from(want == 200));
        }
    }
}

#[tokio::test]
async fn method_override_headers_are_stripped() {
    let h = Harness::start_with(CONFIG).await;
    for hdr in [
        "X-HTTP-Method-Override: DELETE",
        "X-HTTP-Method: DELETE",
        "X-Method-Override: DELETE",
        "x_http_method_override: DELETE",
        "X-Original-Method: DELETE",
        "X-Forwarded-Method: DELETE",
    ] {
        for (path, user) in [("/static/x", ""), ("/app", "eve")] {
            h.upstream.clear();
            let req = format!(
                "POST {path} HTTP/1.1\r\nHost: gw.test\r\n{hdr}\r\n{}Content-Length: 0\r\nConnection: close\r\n\r\n",
                auth(user)
            );
            let ex = raw::send(h.addr, &req).await;
            assert_eq!(ex.status(), 200, "{hdr}");
            let r = h.upstream.last().unwrap();
            assert_eq!(r.method, "POST");
            for (name, v) in r.headers.iter() {
                assert!(
                    v.to_str().unwrap_or("") != "DELETE",
                    "{hdr}: {name} reached upstream"
                );
            }
        }
    }
}

fn ws(origin: Option<&str>, extra: &str) -> String {
    let origin = origin
        .map(|o| format!("Origin: {o}\r\n"))
        .unwrap_or_default();
    format!(
        "GET /ws HTTP/1.1\r\nHost: gw.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{origin}{extra}\r\n"
    )
}

async fn ws_status(h: &Harness, req: &str) -> (u16, usize) {
    h.upstream.clear();
    let ex = raw::exchange_for(h.addr, req.as_bytes(), Duration::from_millis(800)).await;
    (ex.status(), h.upstream.seen().len())
}

#[tokio::test]
async fn websocket_needs_authentication_and_an_allowed_origin() {
    let h = Harness::start_with(CONFIG).await;
    let session = raw::set_cookie(
        &raw::login_raw(h.addr, "alice", "alice-pw", "/", "").await,
        "gw_session",
    )
    .unwrap();
    let cookie = format!("Cookie: gw_session={session}\r\n");
    let basic_alice = auth("alice");
    let allowed = [
        "http://127.0.0.1:8080",
        "http://app.example.org",
        "https://app.example.org",
    ];
    let refused = [
        "http://evil.example",
        "null",
        "http://127.0.0.1:8081",
        "https://127.0.0.1:8080",
        "http://127.0.0.1:8080.evil.example",
        "http://app.example.org.evil.example",
        "http://evil.example/http://127.0.0.1:8080",
        "http://127.0.0.1:8080@evil.example",
        "file://",
        "",
    ];
    for o in allowed {
        assert_eq!(
            ws_status(&h, &ws(Some(o), &cookie)).await,
            (101, 1),
            "session, Origin {o}"
        );
        assert_eq!(
            ws_status(&h, &ws(Some(o), &basic_alice)).await,
            (101, 1),
            "basic, Origin {o}"
        );
        assert_eq!(
            ws_status(&h, &ws(Some(o), "")).await,
            (401, 0),
            "anonymous, Origin {o}"
        );
    }
    for o in refused {
        assert_eq!(
            ws_status(&h, &ws(Some(o), &cookie)).await,
            (403, 0),
            "session, Origin {o:?}"
        );
        assert_eq!(
            ws_status(&h, &ws(Some(o), &basic_alice)).await,
            (403, 0),
            "basic, Origin {o:?}"
        );
    }
    // two Origin headers
    let two = format!("Origin: http://evil.example\r\n{cookie}");
    assert_eq!(
        ws_status(&h, &ws(Some("http://127.0.0.1:8080"), &two)).await,
        (403, 0)
    );
    // no Origin: not a browser; allowed with explicit credentials, never on the cookie alone
    assert_eq!(ws_status(&h, &ws(None, &cookie)).await, (403, 0));
    assert_eq!(ws_status(&h, &ws(None, &basic_alice)).await, (101, 1));
    assert_eq!(ws_status(&h, &ws(None, "")).await, (401, 0));
}

/// The gateway's own endpoints answer a method they do not take with 405 and the `Allow`
/// header (RFC 9110 15.5.6), in the format the client asked for, like every other error.
#[tokio::test]
async fn endpoints_refuse_other_methods_with_405_and_allow() {
    let h = Harness::start_with(CONFIG).await;
    let cases: &[(&str, &str, &str)] = &[
        ("PUT", "/_auth/login", "GET, HEAD, POST"),
        ("DELETE", "/_auth/logout", "GET, HEAD, POST"),
        ("POST", "/_auth/whoami", "GET, HEAD"),
    ];
    for (method, path, allow) in cases {
        for (accept, content_type, body_has) in [
            (
                "application/json",
                "application/json",
                "\"method_not_allowed\"",
            ),
            ("text/html", "text/html", "<html"),
            ("*/*", "text/plain", "Method Not Allowed"),
        ] {
            let req = format!(
                "{method} {path} HTTP/1.1\r\nHost: gw.test\r\nAccept: {accept}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let ex = raw::exchange_for(h.addr, req.as_bytes(), Duration::from_secs(3)).await;
            let resp = ex.first();
            assert_eq!(resp.status, 405, "{method} {path} ({accept})");
            assert_eq!(resp.header("allow"), Some(*allow), "{method} {path}");
            let ct = resp.header("content-type").unwrap_or_default();
            assert!(ct.starts_with(content_type), "{method} {path}: {ct}");
            assert!(
                resp.text().contains(body_has),
                "{method} {path} ({accept}): {}",
                resp.text()
            );
        }
    }
    assert!(h.upstream.seen().is_empty(), "nothing reaches the upstream");
}

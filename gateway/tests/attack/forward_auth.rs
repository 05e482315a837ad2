//! Attack class 9: forward-auth (`/_auth/check`) with malformed original-URI headers, over raw
//! TCP: nothing ambiguous, relative, absolute or control-laden ever yields a 2xx.

use crate::support;

use support::raw;
use support::{Harness, basic};

const CONFIG: &str = r#"
server:
  public_url: "http://127.0.0.1:8080"
  trusted_proxies: ["127.0.0.1/32"]
upstream:
  url: "http://{upstream}"
session:
  secure: false
  secret: "0123456789abcdef0123456789abcdef-test"
routes:
  - match: { path: /static/ }
    access: public
  - match: { path: /admin }
    access: { groups: [admins] }
  - match: { path: / }
    access: authenticated
"#;

async fn check(h: &Harness, lines: &str, user: &str) -> (u16, Option<String>) {
    let auth = match user {
        "" => String::new(),
        u => format!("Authorization: {}\r\n", basic(u, &format!("{u}-pw"))),
    };
    let ex = raw::send(h.addr, &raw::get("/_auth/check", &format!("{lines}{auth}"))).await;
    let r = ex.responses().into_iter().next();
    (
        r.as_ref().map_or(0, |r| r.status),
        r.and_then(|r| r.header("x-remote-user").map(str::to_string)),
    )
}

#[tokio::test]
async fn malformed_original_uris_never_yield_2xx() {
    let h = Harness::start_with(CONFIG).await;
    let bad = [
        "", // missing
        "X-Original-URI: \r\n",
        "X-Original-URI: static/x\r\n",
        "X-Original-URI: admin\r\n",
        "X-Original-URI: *\r\n",
        "X-Original-URI: /static/../admin\r\n",
        "X-Original-URI: /static/%2e%2e/admin\r\n",
        "X-Original-URI: /static/%252e%252e/admin\r\n",
        "X-Original-URI: /static%2fadmin\r\n",
        "X-Original-URI: /static/..%5cadmin\r\n",
        "X-Original-URI: /static/..\\admin\r\n",
        "X-Original-URI: /static/x;/../admin\r\n",
        "X-Original-URI: http://evil.example/static/x\r\n",
        "X-Original-URI: https://127.0.0.1:8080/static/x\r\n",
        "X-Original-URI: //evil.example/static/x\r\n",
        "X-Original-URI: /static/x%0d%0aX-Remote-User:%20bob\r\n",
        "X-Original-URI: /static/x%00\r\n",
        "X-Original-URI: /static/x\r\n X-Remote-User: bob\r\n",
        "X-Original-URI: /static/x\r\nX-Forwarded-Uri: /admin\r\n",
        "X-Original-URI: /static/x\r\nX-Original-URI: /admin\r\n",
        "X-Original-URL: /static/x\r\nX-Forwarded-Uri: /app\r\n",
        "X-Forwarded-Uri: /static/../admin\r\n",
        "X-Original-URL: /static/%2e%2e/admin\r\n",
        "X-Original-URI: /static/x\r\nX-Forwarded-Method: G ET\r\n",
    ];
    let mut n = 0;
    for lines in bad {
        for user in ["", "alice", "bob"] {
            let (st, who) = check(&h, lines, user).await;
            assert!(!(200..300).contains(&st), "{lines:?} as {user:?}: {st}");
            assert!(st != 0, "{lines:?}: no answer");
            assert_eq!(who, None, "{lines:?}");
            n += 1;
        }
    }
    assert!(n >= 70);
    assert!(h.upstream.seen().is_empty(), "check never forwards");
}

#[tokio::test]
async fn well_formed_checks_decide_like_the_proxy() {
    let h = Harness::start_with(CONFIG).await;
    for (uri, user, want, who) in [
        ("/static/x", "", 200, None),
        ("/static/x?next=//evil", "", 200, None),
        ("/admin/x", "", 401, None),
        ("/admin/x", "alice", 403, None),
        ("/admin/x", "bob", 200, Some("bob")),
        ("//admin/x", "alice", 400, None),
        ("/admin//x", "alice", 403, None),
        ("/%61dmin/x", "alice", 403, None),
        ("/app", "alice", 200, Some("alice")),
    ] {
        let (st, got) = check(&h, &format!("X-Original-URI: {uri}\r\n"), user).await;
        assert_eq!((st, got.as_deref()), (want, who), "{uri} as {user:?}");
    }
    // a spoofed identity header on the check request is not echoed
    let (st, got) = check(
        &h,
        "X-Original-URI: /app\r\nX-Remote-User: bob\r\n",
        "alice",
    )
    .await;
    assert_eq!((st, got.as_deref()), (200, Some("alice")));
}

#[tokio::test]
async fn untrusted_peers_cannot_use_check() {
    let h = Harness::start_with(
        &CONFIG.replace("trusted_proxies: [\"127.0.0.1/32\"]", "trusted_proxies: []"),
    )
    .await;
    for uri in ["/static/x", "/app", "/admin"] {
        for user in ["", "bob"] {
            let (st, who) = check(&h, &format!("X-Original-URI: {uri}\r\n"), user).await;
            assert_eq!((st, who), (403, None), "{uri} as {user:?}");
        }
    }
}

/// The original request's scheme is the proxy's to say: one that is neither `http` nor
/// `https`, or several, is 400 — never a 2xx vouching for a request the check cannot name.
#[tokio::test]
async fn odd_forwarded_proto_never_yields_2xx() {
    let h = Harness::start_with(CONFIG).await;
    for proto in [
        "X-Forwarded-Proto: ftp\r\n",
        "X-Forwarded-Proto: javascript\r\n",
        "X-Forwarded-Proto: https, http\r\n",
        "X-Forwarded-Proto: https\r\nX-Forwarded-Proto: http\r\n",
        "X-Forwarded-Proto: http2\r\n",
        "X-Forwarded-Proto: \r\n",
        "X-Forwarded-Proto: ws\r\n",
    ] {
        for (uri, user) in [("/app", "alice"), ("/admin/x", "bob"), ("/static/x", "")] {
            let (st, who) = check(&h, &format!("X-Original-URI: {uri}\r\n{proto}"), user).await;
            assert_eq!((st, who), (400, None), "{proto:?} {uri} as {user:?}");
        }
    }
    for proto in ["http", "https", "HTTPS", " https "] {
        let lines = format!("X-Original-URI: /app\r\nX-Forwarded-Proto: {proto}\r\n");
        let (st, who) = check(&h, &lines, "alice").await;
        assert_eq!((st, who.as_deref()), (200, Some("alice")), "{proto:?}");
    }
}

//! Attack class 1: identity and forwarding header spoofing, over raw TCP.
//! Every case asserts what the client got and what reached the recording upstream.

use crate::support;

use support::raw::{self, RawHarness};
use support::{Harness, basic};

/// Names an upstream could read as an identity header (folded: lower-case, `_`/`.` as `-`).
const IDENTITY: &[&str] = &[
    "x-remote-user",
    "x-remote-email",
    "x-remote-name",
    "x-remote-groups",
    "x-remote-backend",
];

fn fold(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            '_' | '.' => '-',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// Header lines (each a spelling of an identity header) that must never reach the upstream.
const SPELLINGS: &[&str] = &[
    "X-Remote-User: evil\r\n",
    "x-remote-user: evil\r\n",
    "X-REMOTE-USER: evil\r\n",
    "x-ReMoTe-uSeR: evil\r\n",
    "X_Remote_User: evil\r\n",
    "x_remote_user: evil\r\n",
    "X.Remote.User: evil\r\n",
    "X-Remote_User: evil\r\n",
    "X_Remote-User: evil\r\n",
    "X-Remote-User: evil\r\nX-Remote-User: evil2\r\n",
    "X-Remote-User: evil\r\nx_remote_user: evil2\r\n",
    "X-Remote-User:evil\r\n",
    "X-Remote-User:\tevil\r\n",
    "X-Remote-Groups: admins\r\n",
    "X_Remote_Groups: admins\r\n",
    "X-Remote-Email: evil@example.org\r\n",
    "X-Remote-Name: Evil\r\n",
    "X-Remote-Backend: test\r\n",
    "x.remote.backend: test\r\n",
];

/// On a public route nothing identity-like reaches the upstream; on a protected route exactly
/// the gateway's own values do.
#[tokio::test]
async fn identity_spellings_never_reach_upstream_public_or_protected() {
    let h = Harness::start().await;
    let mut cases = 0;
    for line in SPELLINGS {
        // public
        h.upstream.clear();
        let ex = raw::send(h.addr, &raw::get("/static/app.css", line)).await;
        assert_eq!(ex.status(), 200, "public {line:?}");
        let seen = h.upstream.seen();
        assert_eq!(seen.len(), 1, "public {line:?}");
        for (name, _) in seen[0].headers.iter() {
            assert!(
                !IDENTITY.contains(&fold(name.as_str()).as_str()),
                "public {line:?}: upstream got {name}"
            );
        }
        // protected, as alice
        h.upstream.clear();
        let auth = format!("Authorization: {}\r\n", basic("alice", "alice-pw"));
        let ex = raw::send(h.addr, &raw::get("/app", &format!("{line}{auth}"))).await;
        assert_eq!(ex.status(), 200, "protected {line:?}");
        let seen = h.upstream.seen();
        assert_eq!(seen.len(), 1);
        let r = &seen[0];
        assert_eq!(r.all("x-remote-user"), vec!["alice"], "{line:?}");
        assert_eq!(r.all("x-remote-groups"), vec!["staff"], "{line:?}");
        assert_eq!(
            r.all("x-remote-email"),
            vec!["alice@example.org"],
            "{line:?}"
        );
        assert_eq!(r.all("x-remote-backend"), vec!["test"], "{line:?}");
        for (name, _) in r.headers.iter() {
            let folded = fold(name.as_str());
            if IDENTITY.contains(&folded.as_str()) {
                assert_eq!(name.as_str(), folded, "{line:?}: a variant spelling passed");
            }
        }
        // protected, anonymous: challenged, nothing forwarded
        h.upstream.clear();
        let ex = raw::send(h.addr, &raw::get("/app", line)).await;
        assert_eq!(ex.status(), 401, "anonymous {line:?}");
        assert!(
            h.upstream.seen().is_empty(),
            "anonymous {line:?} reached upstream"
        );
        cases += 3;
    }
    assert_eq!(cases, SPELLINGS.len() * 3);
}

/// Header lines the HTTP parser must refuse outright (400), with nothing forwarded.
#[tokio::test]
async fn malformed_header_lines_are_400() {
    let h = Harness::start().await;
    let lines = [
        // whitespace between name and colon (RFC 9112 §5.1: must be rejected)
        "X-Remote-User : evil\r\n",
        "X-Remote-User\t: evil\r\n",
        // obs-fold continuation (RFC 9112 §5.2: reject in requests)
        "X-Other: a\r\n X-Remote-User: evil\r\n",
        "X-Other: a\r\n\tX-Remote-User: evil\r\n",
        "X-Remote-User: a\r\n evil\r\n",
        // no colon, empty name, bad name characters
        "X-Remote-User evil\r\n",
        ": evil\r\n",
        "X-Remote(User): evil\r\n",
        // bare LF inside a value / bare CR
        "X-Remote-User: ev\ril\r\n",
    ];
    for line in lines {
        for path in ["/static/x", "/app"] {
            h.upstream.clear();
            let ex = raw::send(h.addr, &raw::get(path, line)).await;
            assert_eq!(
                ex.status(),
                400,
                "{path} {line:?}: {:?}",
                String::from_utf8_lossy(&ex.bytes)
            );
            assert!(
                h.upstream.seen().is_empty(),
                "{path} {line:?} reached upstream"
            );
        }
    }
}

/// `Connection: <identity header>` can only remove the client's copy, never the gateway's.
#[tokio::test]
async fn connection_cannot_name_away_gateway_headers() {
    let h = Harness::start().await;
    let auth = format!("Authorization: {}\r\n", basic("bob", "bob-pw"));
    for conn in [
        "X-Remote-User",
        "x-remote-user, X-Remote-Groups",
        "X-Remote-Groups",
        "X-Remote-Email",
        "X-Forwarded-For",
        "X-Forwarded-Proto, X-Forwarded-Host",
        "X_Remote_User",
    ] {
        h.upstream.clear();
        let req = format!(
            "GET /admin/x HTTP/1.1\r\nHost: gw.test\r\n{auth}Connection: close, {conn}\r\nX-Remote-User: evil\r\n\r\n"
        );
        let ex = raw::send(h.addr, &req).await;
        assert_eq!(ex.status(), 200, "{conn}");
        let r = h.upstream.last().expect("forwarded");
        assert_eq!(r.all("x-remote-user"), vec!["bob"], "{conn}");
        assert_eq!(r.all("x-remote-groups"), vec!["admins,staff"], "{conn}");
        assert_eq!(r.all("x-remote-email"), vec!["bob@example.org"], "{conn}");
        assert_eq!(r.all("x-forwarded-for"), vec!["127.0.0.1"], "{conn}");
        assert_eq!(r.all("x-forwarded-proto"), vec!["http"], "{conn}");
        assert_eq!(r.all("x-forwarded-host"), vec!["gw.test"], "{conn}");
        assert!(
            r.get("connection")
                .is_none_or(|c| !c.to_ascii_lowercase().contains("remote"))
        );
    }
}

/// Forwarding headers from an untrusted peer are replaced or dropped, on public and protected
/// routes.
#[tokio::test]
async fn forwarding_headers_from_untrusted_peers_never_pass_as_sent() {
    let h = Harness::start().await;
    let auth = format!("Authorization: {}\r\n", basic("alice", "alice-pw"));
    let cases: &[(&str, &str, &str)] = &[
        ("X-Forwarded-For", "6.6.6.6", "x-forwarded-for"),
        ("X-Forwarded-For", "127.0.0.1, 6.6.6.6", "x-forwarded-for"),
        ("x_forwarded_for", "6.6.6.6", "x-forwarded-for"),
        ("X-Forwarded-Proto", "https", "x-forwarded-proto"),
        ("X-Forwarded-Host", "evil.example", "x-forwarded-host"),
        ("X-Forwarded-Port", "443", "x-forwarded-port"),
        ("X-Forwarded-Prefix", "/admin", "x-forwarded-prefix"),
        ("X-Forwarded-Uri", "/admin", "x-forwarded-uri"),
        ("X-Forwarded-Server", "evil", "x-forwarded-server"),
        (
            "Forwarded",
            "for=6.6.6.6;host=evil.example;proto=https",
            "forwarded",
        ),
        ("X-Real-IP", "6.6.6.6", "x-real-ip"),
        ("X-Real-Ip", "6.6.6.6", "x-real-ip"),
        ("X-Client-IP", "6.6.6.6", "x-client-ip"),
        ("X-Original-URL", "/admin", "x-original-url"),
        ("X-Original-URI", "/admin", "x-original-uri"),
        ("X-Rewrite-URL", "/admin", "x-rewrite-url"),
        ("X.Rewrite.URL", "/admin", "x-rewrite-url"),
    ];
    for (name, value, folded) in cases {
        for (path, extra) in [("/static/x", ""), ("/app", auth.as_str())] {
            h.upstream.clear();
            let line = format!("{name}: {value}\r\n{extra}");
            let ex = raw::send(h.addr, &raw::get(path, &line)).await;
            assert_eq!(ex.status(), 200, "{name} on {path}");
            let r = h.upstream.last().expect("forwarded");
            for (n, v) in r.headers.iter() {
                if fold(n.as_str()) == *folded {
                    assert_ne!(
                        v.to_str().unwrap_or(""),
                        *value,
                        "{name}: {value} reached upstream on {path}"
                    );
                    assert!(!v.to_str().unwrap_or("").contains("6.6.6.6"));
                    assert!(!v.to_str().unwrap_or("").contains("evil"));
                }
            }
            assert_eq!(r.all("x-forwarded-for"), vec!["127.0.0.1"]);
            assert_eq!(r.all("x-forwarded-proto"), vec!["http"]);
            assert_eq!(r.all("x-forwarded-host"), vec!["gw.test"]);
            assert!(r.get("forwarded").is_none());
            assert!(r.get("x-real-ip").is_none());
            assert!(r.get("x-original-url").is_none());
            assert!(r.get("x-rewrite-url").is_none());
        }
    }
}

/// A trailer field named like an identity header (chunked body + `Trailer:`) never reaches the
/// upstream, as a header or as a trailer.
#[tokio::test]
async fn trailers_cannot_carry_identity_headers() {
    let yaml = support::BASE_CONFIG;
    let h = RawHarness::start(yaml).await;
    let auth = basic("alice", "alice-pw");
    for (path, extra) in [
        ("/static/up", String::new()),
        ("/app/up", format!("Authorization: {auth}\r\n")),
    ] {
        for trailer in [
            "X-Remote-User: evil",
            "x_remote_user: evil",
            "X-Remote-Groups: admins",
        ] {
            let before = h.upstream.seen().len();
            let req = format!(
                "POST {path} HTTP/1.1\r\nHost: gw.test\r\n{extra}Transfer-Encoding: chunked\r\nTrailer: X-Remote-User, X-Remote-Groups, x_remote_user\r\nTE: trailers\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n{trailer}\r\n\r\n"
            );
            let ex = raw::send(h.addr, &req).await;
            assert_eq!(ex.status(), 200, "{path} {trailer}");
            let seen = h.upstream.seen();
            assert_eq!(seen.len(), before + 1);
            let got = seen.last().unwrap();
            assert!(got.contains("hello"), "body forwarded: {got:?}");
            let lower = got.to_ascii_lowercase();
            assert!(
                !lower.contains("evil"),
                "{trailer} reached upstream: {got:?}"
            );
            assert!(
                !lower.contains("admins"),
                "{trailer} reached upstream: {got:?}"
            );
            assert!(!lower.contains("x_remote_user"));
            assert!(
                !lower.contains("\r\ntrailer:"),
                "Trailer header forwarded: {got:?}"
            );
        }
    }
}

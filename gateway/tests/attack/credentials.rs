//! Attack class 5: credentials. Malformed Basic headers, empty and NUL-laden parts, Unicode
//! look-alikes and case variants of usernames against the `static` backend, over raw TCP:
//! nothing malformed is ever anonymous-then-2xx, and no variant becomes a second identity. And
//! no credential sent to the gateway reaches the upstream (`Authorization` unless
//! `upstream.pass_authorization`, an API-key header never).

use crate::support;

use base64::Engine;
use support::raw::{self, FileHarness};
use support::{BASE_CONFIG, Harness, basic};

const CONFIG: &str = r#"
server:
  public_url: "http://127.0.0.1:8080"
upstream:
  url: "http://{upstream}"
session:
  secure: false
  secret: "0123456789abcdef0123456789abcdef-test"
cache:
  credentials_ttl: 0s
protection:
  max_failures: 1000000
chain:
  - name: demo
    type: static
    options:
      allow_plaintext: true
      users:
        alice: { password: "alice-pw", groups: [staff] }
        bob: { password: "bob-pw", groups: [admins] }
routes:
  - match: { path: /static/ }
    access: public
  - match: { path: / }
    access: authenticated
"#;

fn b64(s: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Sends `/app` with these raw `Authorization` lines and returns (status, forwarded user).
async fn attempt(h: &FileHarness, lines: &str) -> (u16, Option<String>, usize) {
    h.upstream.clear();
    let ex = raw::send(h.addr, &raw::get("/app", lines)).await;
    let seen = h.upstream.seen();
    (
        ex.status(),
        seen.last().and_then(|r| r.get("x-remote-user")),
        seen.len(),
    )
}

#[tokio::test]
async fn malformed_basic_is_400_never_forwarded() {
    let h = FileHarness::start(CONFIG).await;
    let good = b64(b"alice:alice-pw");
    let cases: Vec<String> = vec![
        format!("Authorization: Basic {}\r\n", b64(b"alice")), // no colon
        format!("Authorization: Basic {}\r\n", b64(b"alicealice-pw")), // no colon
        "Authorization: Basic !!!\r\n".into(),                 // not base64
        "Authorization: Basic YWxpY2U6YWxpY2UtcHc=====\r\n".into(), // bad padding
        "Authorization: Basic YWxp Y2U6YWxpY2UtcHc=\r\n".into(), // inner space
        format!("Authorization: Basic {}\r\n", b64(&[0xff, b':', 0xfe])), // not UTF-8
        format!("Authorization: Basic {}\r\n", b64(b"alice:\xe9t\xe9")), // Latin-1 password
        format!("Authorization: Basic {good}\r\nAuthorization: Basic {good}\r\n"), // duplicate
        format!(
            "Authorization: Basic {good}\r\nAuthorization: Basic {}\r\n",
            b64(b"bob:bob-pw")
        ),
        format!("Authorization: Basic {good}\r\nAuthorization: Bearer x\r\n"),
        format!("Authorization: Basic {}\r\n", "A".repeat(5000)), // huge
        format!("Authorization: Basic {}\r\n", b64(&vec![b'a'; 4000])),
        "Authorization: Bearer a b\r\n".into(),
    ];
    for c in &cases {
        let (st, user, n) = attempt(&h, c).await;
        assert_eq!((st, user, n), (400, None, 0), "{c:?}");
    }
    // the same malformed header on a public route passes (nobody is identified), without the
    // header
    h.upstream.clear();
    let ex = raw::send(h.addr, &raw::get("/static/x", &cases[0])).await;
    assert_eq!(ex.status(), 200);
    assert_eq!(h.upstream.last().unwrap().get("x-remote-user"), None);
    assert_eq!(h.upstream.last().unwrap().get("authorization"), None);
}

#[tokio::test]
async fn empty_nul_and_odd_parts_are_refused() {
    let h = FileHarness::start(CONFIG).await;
    let cases: &[&[u8]] = &[
        b":",
        b":alice-pw",
        b"alice:",
        b"alice: ",
        b" :alice-pw",
        b"alice\0:alice-pw",
        b"alice:alice-pw\0",
        b"\0alice:alice-pw",
        b"alice:\0",
        b"alice:alice-pw:",
        b"alice:alice-pw\r\n",
        b"alice :alice-pw",
        b" alice:alice-pw",
        b"alice:alice-p",
        b"alice:Alice-pw",
        b"alice:bob-pw",
    ];
    for c in cases {
        let line = format!("Authorization: Basic {}\r\n", b64(c));
        let (st, user, n) = attempt(&h, &line).await;
        assert_eq!(
            (st, user, n),
            (401, None, 0),
            "{:?}",
            String::from_utf8_lossy(c)
        );
    }
    // a bare scheme, or an unknown scheme, is simply anonymous
    for line in [
        "Authorization: Basic\r\n",
        "Authorization: Bearer \r\n",
        "Authorization: Digest x\r\n",
        "Authorization: \r\n",
    ] {
        let (st, user, n) = attempt(&h, line).await;
        assert_eq!((st, user, n), (401, None, 0), "{line:?}");
    }
    // scheme case and extra spaces are tolerated, for the real identity only
    for line in [
        format!("Authorization: basic {}\r\n", b64(b"alice:alice-pw")),
        format!("Authorization: BASIC {}\r\n", b64(b"alice:alice-pw")),
        format!("Authorization: Basic   {}  \r\n", b64(b"alice:alice-pw")),
    ] {
        let (st, user, _) = attempt(&h, &line).await;
        assert_eq!((st, user.as_deref()), (200, Some("alice")), "{line:?}");
    }
}

/// Case variants and Unicode look-alikes of `alice` with alice's password: refused, or at most
/// alice herself — never a second identity upstream.
#[tokio::test]
async fn lookalike_usernames_never_become_a_second_identity() {
    let h = FileHarness::start(CONFIG).await;
    let variants = [
        "Alice",
        "ALICE",
        "aLiCe",
        "alicE",
        "\u{0430}lice",                             // Cyrillic a
        "al\u{0456}ce",                             // Cyrillic i
        "\u{FF41}\u{FF4C}\u{FF49}\u{FF43}\u{FF45}", // fullwidth
        "alice\u{200B}",                            // zero-width space
        "\u{200B}alice",
        "alic\u{0065}\u{0301}", // e + combining acute
        "alice\u{00A0}",        // no-break space
        "ALİCE",                // dotted capital I
        "alice\u{FEFF}",
        "\u{1D44E}lice", // mathematical italic a
    ];
    for v in variants {
        let line = format!(
            "Authorization: Basic {}\r\n",
            b64(format!("{v}:alice-pw").as_bytes())
        );
        let (st, user, n) = attempt(&h, &line).await;
        match st {
            401 => assert_eq!((user, n), (None, 0), "{v:?}"),
            200 => assert_eq!(user.as_deref(), Some("alice"), "{v:?} became {user:?}"),
            other => panic!("{v:?}: {other}"),
        }
        // through the form too
        let resp = raw::login_raw(h.addr, v, "alice-pw", "/", "").await;
        if resp.status == 303 {
            let s = raw::set_cookie(&resp, "gw_session").unwrap();
            h.upstream.clear();
            let _ = raw::send(
                h.addr,
                &raw::get("/app", &format!("Cookie: gw_session={s}\r\n")),
            )
            .await;
            assert_eq!(
                h.upstream.last().unwrap().get("x-remote-user").as_deref(),
                Some("alice"),
                "{v:?}"
            );
        } else {
            assert_eq!(resp.status, 401, "{v:?}");
            assert!(raw::set_cookie(&resp, "gw_session").is_none_or(|c| c.is_empty()));
        }
    }
    // the real one works through both
    let line = format!("Authorization: Basic {}\r\n", b64(b"alice:alice-pw"));
    assert_eq!(attempt(&h, &line).await.1.as_deref(), Some("alice"));
}

/// Form logins with NUL, empty and oversized fields are refused without a session.
#[tokio::test]
async fn form_credentials_edge_cases() {
    let h = FileHarness::start(CONFIG).await;
    let long = "a".repeat(20_000);
    for (user, pw) in [
        ("", ""),
        ("alice", ""),
        ("", "alice-pw"),
        ("alice\0", "alice-pw"),
        ("alice", "alice-pw\0"),
        ("alice", long.as_str()),
        (long.as_str(), "x"),
    ] {
        let resp = raw::login_raw(h.addr, user, pw, "/", "").await;
        assert!(
            matches!(resp.status, 400 | 401 | 413),
            "{:?}: {}",
            &user[..user.len().min(10)],
            resp.status
        );
        assert!(raw::set_cookie(&resp, "gw_session").is_none_or(|c| c.is_empty()));
    }
}

/// The session cookie of `user` (logged in through the form) as a `Cookie` header line.
async fn session_line(h: &Harness, user: &str) -> String {
    let resp = raw::login_raw(h.addr, user, &format!("{user}-pw"), "/", "").await;
    assert_eq!(resp.status, 303, "{user} logs in");
    let session = raw::set_cookie(&resp, "gw_session").expect("a session cookie");
    format!("Cookie: gw_session={session}\r\n")
}

/// Whatever identified the request — a session, Basic, Bearer, nobody on a public route — and
/// whatever the scheme, the upstream and its logs never receive the `Authorization` header: not
/// someone else's password sent beside a session, not the credentials that identified the user.
#[tokio::test]
async fn credentials_sent_to_the_gateway_never_reach_the_upstream() {
    let h = Harness::start().await;
    let alice_session = session_line(&h, "alice").await;
    let bob = format!("Authorization: {}\r\n", basic("bob", "bob-pw"));
    let cases: Vec<(&str, String, Option<&str>)> = vec![
        // a session, and someone else's password (right or wrong)
        ("/app", format!("{alice_session}{bob}"), Some("alice")),
        (
            "/app",
            format!(
                "{alice_session}Authorization: {}\r\n",
                basic("bob", "guess")
            ),
            Some("alice"),
        ),
        // the credentials that identified the user
        ("/app", bob.clone(), Some("bob")),
        (
            "/app",
            "Authorization: Bearer tok-eve\r\n".into(),
            Some("eve"),
        ),
        // other schemes go too, beside a session or on a public route
        (
            "/app",
            format!("{alice_session}Authorization: Negotiate YIIBhgYGKwYBBQUC\r\n"),
            Some("alice"),
        ),
        ("/static/x", bob.clone(), None),
        (
            "/static/x",
            "Authorization: Bearer tok-bob\r\n".into(),
            None,
        ),
        (
            "/static/x",
            "Authorization: Digest username=\"bob\", response=\"0\"\r\n".into(),
            None,
        ),
        ("/static/x", format!("{alice_session}{bob}"), None),
    ];
    for (path, lines, user) in &cases {
        h.upstream.clear();
        let ex = raw::send(h.addr, &raw::get(path, lines)).await;
        assert_eq!(ex.status(), 200, "{path} {lines:?}");
        let seen = h.upstream.last().expect("forwarded");
        assert_eq!(seen.get("x-remote-user").as_deref(), *user, "{lines:?}");
        assert_eq!(
            seen.all("authorization"),
            Vec::<String>::new(),
            "{path} {lines:?}"
        );
    }
}

/// With `upstream.pass_authorization: true` the header reaches an app that needs it, as sent;
/// the identity headers are still the gateway's.
#[tokio::test]
async fn pass_authorization_forwards_the_header_as_sent() {
    let h = Harness::start_with(&BASE_CONFIG.replace(
        "  timeout: 2s\n",
        "  timeout: 2s\n  pass_authorization: true\n",
    ))
    .await;
    let alice_session = session_line(&h, "alice").await;
    let bob = basic("bob", "bob-pw");
    for (path, lines, user) in [
        (
            "/app",
            format!("{alice_session}Authorization: {bob}\r\n"),
            Some("alice"),
        ),
        ("/app", format!("Authorization: {bob}\r\n"), Some("bob")),
        ("/static/x", format!("Authorization: {bob}\r\n"), None),
    ] {
        h.upstream.clear();
        let ex = raw::send(h.addr, &raw::get(path, &lines)).await;
        assert_eq!(ex.status(), 200, "{lines:?}");
        let seen = h.upstream.last().expect("forwarded");
        assert_eq!(seen.get("x-remote-user").as_deref(), user, "{lines:?}");
        assert_eq!(seen.all("authorization"), vec![bob.clone()], "{lines:?}");
    }
}

/// The configured API-key headers are credentials like `Authorization`, but never passed on:
/// beside a session, beside Basic, on a public route, in any spelling, and even with
/// `upstream.pass_authorization: true`, the upstream never receives a key.
#[tokio::test]
async fn api_key_headers_never_reach_the_upstream_in_any_spelling() {
    let h = Harness::start_with(
        &BASE_CONFIG
            .replace(
                "  timeout: 2s\n",
                "  timeout: 2s\n  pass_authorization: true\n",
            )
            .replace(
                "login:\n",
                "login:\n  api_key_headers: [X-Api-Key, X-Service-Token]\n",
            ),
    )
    .await;
    let alice_session = session_line(&h, "alice").await;
    let bob = format!("Authorization: {}\r\n", basic("bob", "bob-pw"));
    let spellings = [
        "X-Api-Key",
        "x-api-key",
        "X-API-KEY",
        "X_Api_Key",
        "x.api.key",
        "X-Api_Key",
        "x-service-token",
        "X_SERVICE.TOKEN",
    ];
    for name in spellings {
        let key = format!("{name}: ag_0123456789abcdef_secret\r\n");
        for (path, lines, user) in [
            ("/app", format!("{alice_session}{key}"), Some("alice")),
            ("/app", format!("{bob}{key}"), Some("bob")),
            ("/static/x", key.clone(), None),
            ("/static/x", format!("{alice_session}{key}"), None),
        ] {
            h.upstream.clear();
            let ex = raw::send(h.addr, &raw::get(path, &lines)).await;
            assert_eq!(ex.status(), 200, "{path} {lines:?}");
            let seen = h.upstream.last().expect("forwarded");
            assert_eq!(seen.get("x-remote-user").as_deref(), user, "{lines:?}");
            let leaked: Vec<String> = seen
                .headers
                .keys()
                .map(|k| k.as_str().to_string())
                .filter(|k| {
                    let folded = k.replace(['_', '.'], "-");
                    folded == "x-api-key" || folded == "x-service-token"
                })
                .collect();
            assert_eq!(leaked, Vec::<String>::new(), "{path} {lines:?}");
        }
    }
    // No key backend in this chain: a key alone is no identity.
    let ex = raw::send(
        h.addr,
        &raw::get("/app", "X-Api-Key: ag_0123456789abcdef_secret\r\n"),
    )
    .await;
    assert_eq!(ex.status(), 401);
    // Two keys: which one was meant is not guessed.
    let ex = raw::send(
        h.addr,
        &raw::get("/app", "X-Api-Key: a\r\nX-Service-Token: b\r\n"),
    )
    .await;
    assert_eq!(ex.status(), 400);
}

/// htpasswd users whose stored hashes are traps, all made by the real `htpasswd`.
const HTPASSWD_CONFIG: &str = r#"
server:
  public_url: "http://127.0.0.1:8080"
  trusted_proxies: ["127.0.0.1/32"]
upstream:
  url: "http://{upstream}"
session:
  secure: false
  secret: "0123456789abcdef0123456789abcdef-test"
cache:
  credentials_ttl: 0s
protection:
  max_failures: 1000000
chain:
  - name: ops
    type: htpasswd
    options:
      path: users.htpasswd
routes:
  - match: { path: / }
    access: authenticated
"#;

/// Empty passwords (a real hash of ""), passwords sharing only bcrypt's first 72 bytes, and a
/// plaintext row: none logs in over Basic, at the app, `whoami` or `check`, and the odd row is
/// its user's 401, never a 503 for anyone.
#[tokio::test]
async fn empty_and_truncated_passwords_and_refused_rows_never_log_in() {
    let pw72 = format!("carl-bcrypt-{}", "x".repeat(60));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("users.htpasswd"),
        concat!(
            // htpasswd -nbB -C 4 nopw ""
            "nopw:$2y$04$aYu0/dOZtfmKQMaK.8AM1esTlD524tvxW.V44JQDK6CZleKMqqXb6\n",
            // htpasswd -nbB -C 4 carl "carl-bcrypt-xxx...x" (72 bytes)
            "carl:$2y$04$SBvQWCkhpQSpBI.k8YEKPehrfmxqGb4uU0nOsTLmxFT1qW0IvSzzC\n",
            // htpasswd -nbp paula paula-plain-pw
            "paula:paula-plain-pw\n",
        ),
    )
    .unwrap();
    let h = FileHarness::start_in(dir, HTPASSWD_CONFIG).await;
    let refused: Vec<Vec<u8>> = vec![
        b"nopw:".to_vec(),
        format!("carl:{pw72}x").into_bytes(),
        format!("carl:{pw72} and more").into_bytes(),
        b"paula:paula-plain-pw".to_vec(),
    ];
    for c in &refused {
        let line = format!("Authorization: Basic {}\r\n", b64(c));
        let (st, user, n) = attempt(&h, &line).await;
        let what = String::from_utf8_lossy(c);
        assert_eq!((st, user, n), (401, None, 0), "{what}");
        for (path, extra) in [
            ("/_auth/whoami", ""),
            ("/_auth/check", "X-Original-URI: /app\r\n"),
        ] {
            let ex = raw::send(h.addr, &raw::get(path, &format!("{extra}{line}"))).await;
            assert_eq!(ex.status(), 401, "{path} {what}");
        }
        // the login form takes the same path through the chain
        let (user, password) = what.split_once(':').expect("user:password");
        let form = raw::login_raw(h.addr, user, password, "/app", "").await;
        assert_ne!(form.status, 303, "form {what}");
        assert!(
            raw::set_cookie(&form, "gw_session").is_none_or(|v| v.is_empty()),
            "form {what}"
        );
    }
    let line = format!(
        "Authorization: Basic {}\r\n",
        b64(format!("carl:{pw72}").as_bytes())
    );
    let (st, user, _) = attempt(&h, &line).await;
    assert_eq!((st, user.as_deref()), (200, Some("carl")));
    let ex = raw::send(
        h.addr,
        &raw::get("/_auth/check", &format!("X-Original-URI: /app\r\n{line}")),
    )
    .await;
    assert_eq!(ex.status(), 200, "check for the real password");
    let form = raw::login_raw(h.addr, "carl", &pw72, "/app", "").await;
    assert_eq!(form.status, 303, "the form for the real password");
}

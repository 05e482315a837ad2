//! Attack class 3: open redirects through `next`, on the real login and logout endpoints over
//! raw TCP, and `Host` / `X-Forwarded-Host` never shaping a redirect.

use crate::support;

use support::Harness;
use support::raw::{self, RawResponse};

const CONFIG: &str = r#"
server:
  public_url: "http://127.0.0.1:8080"
upstream:
  url: "http://{upstream}"
session:
  secure: false
  secret: "0123456789abcdef0123456789abcdef-test"
login:
  allowed_redirect_hosts: ["sso.example.org"]
routes:
  - match: { path: / }
    access: authenticated
"#;

/// `next` values that must never send a browser anywhere but our own origin.
const HOSTILE: &[&str] = &[
    "//evil.example",
    "//evil.example/",
    "///evil.example",
    "////evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "\\/evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r\n/evil.example",
    "\t//evil.example",
    " //evil.example",
    "/%09/evil.example",
    "/%0a/evil.example",
    "/%2f/evil.example",
    "/%2F%2Fevil.example",
    "%2f%2fevil.example",
    "/%5cevil.example",
    "/%5Cevil.example",
    "/%255cevil.example",
    "/%252f%252fevil.example",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "java\tscript:alert(1)",
    " javascript:alert(1)",
    "javascript://%0aalert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "http://evil.example",
    "https://evil.example/",
    "HTTP://EVIL.EXAMPLE/",
    "http:evil.example",
    "http:/evil.example",
    "http:\\\\evil.example",
    "https:/\\evil.example",
    "http://127.0.0.1:8080@evil.example/",
    "http://evil.example@127.0.0.1:8080/",
    "http://evil.example\\@127.0.0.1:8080/",
    "http://127.0.0.1:8080.evil.example/",
    "http://127.0.0.1.evil.example:8080/",
    "http://127.0.0.1:8081/",
    "https://127.0.0.1:8080/",
    "http://sso.example.org.evil.example/",
    "http://evil-sso.example.org/",
    "http://sso.example.org@evil.example/",
    "http://ѕѕо.example.org/",
    "http://xn--n1aaa.example.org/",
    "http://sso。example。org/",
    "ftp://sso.example.org/",
    "//sso.example.org/",
    "/app\r\nSet-Cookie: x=1",
    "/app%0d%0aSet-Cookie:%20x=1",
];

/// Where a browser at our login page would go with this `Location`.
fn resolve(location: &str) -> url::Url {
    url::Url::parse("http://127.0.0.1:8080/_auth/login")
        .unwrap()
        .join(location)
        .unwrap_or_else(|e| panic!("unresolvable Location {location:?}: {e}"))
}

fn assert_local(resp: &RawResponse, what: &str) {
    let loc = resp
        .header("location")
        .unwrap_or_else(|| panic!("{what}: no Location ({})", resp.status));
    assert!(
        !loc.contains('\\') && !loc.bytes().any(|b| b.is_ascii_control()),
        "{what}: Location {loc:?}"
    );
    assert!(!loc.starts_with("//"), "{what}: Location {loc:?}");
    let u = resolve(loc);
    assert_eq!(u.scheme(), "http", "{what}: {loc:?}");
    assert_eq!(u.host_str(), Some("127.0.0.1"), "{what}: {loc:?}");
    assert_eq!(u.port_or_known_default(), Some(8080), "{what}: {loc:?}");
    assert!(
        !loc.to_ascii_lowercase().contains("evil"),
        "{what}: {loc:?}"
    );
    assert!(
        resp.all("set-cookie").iter().all(|c| !c.starts_with("x=")),
        "{what}: header injection"
    );
}

#[tokio::test]
async fn hostile_next_on_login_lands_on_our_origin() {
    let h = Harness::start_with(CONFIG).await;
    for next in HOSTILE {
        // via the form field
        let resp = raw::login_raw(h.addr, "alice", "alice-pw", next, "").await;
        assert_eq!(resp.status, 303, "{next:?}");
        assert_local(&resp, &format!("login POST next={next:?}"));
        assert_eq!(resp.header("location"), Some("/"), "{next:?}");
        // via the query of the form page: the hidden field never carries it
        let q = format!(
            "?next={}",
            url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
        );
        let form = raw::fetch_login_form(h.addr, &q, "").await;
        assert_eq!(form.next.as_deref(), Some("/"), "form next for {next:?}");
    }
}

#[tokio::test]
async fn hostile_next_on_logout_lands_on_our_origin() {
    let h = Harness::start_with(CONFIG).await;
    for next in HOSTILE {
        let login = raw::login_raw(h.addr, "alice", "alice-pw", "/", "").await;
        let session = raw::set_cookie(&login, "gw_session").expect("session");
        let cookie = format!("gw_session={session}");
        let q = url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>();
        // the confirmation page never carries the hostile next in its action
        let ex = raw::send(
            h.addr,
            &raw::get(
                &format!("/_auth/logout?next={q}"),
                &format!("Cookie: {cookie}\r\n"),
            ),
        )
        .await;
        let page = ex.first();
        assert_eq!(page.status, 200);
        let html = page.text();
        assert!(
            !html.to_ascii_lowercase().contains("evil"),
            "logout page for {next:?}"
        );
        let csrf = support::hidden_field(&html, "csrf").expect("logout csrf");
        let resp = raw::post_form(
            h.addr,
            &format!("/_auth/logout?next={q}"),
            &cookie,
            "",
            &raw::form_body(&[("csrf", &csrf)]),
        )
        .await;
        assert_eq!(resp.status, 303, "{next:?}");
        assert_local(&resp, &format!("logout next={next:?}"));
    }
}

#[tokio::test]
async fn allowed_targets_pass_unchanged() {
    let h = Harness::start_with(CONFIG).await;
    for (next, want) in [
        ("/app?x=1", "/app?x=1"),
        ("/app/page#frag", "/app/page#frag"),
        ("http://127.0.0.1:8080/app", "http://127.0.0.1:8080/app"),
        ("https://sso.example.org/x", "https://sso.example.org/x"),
        ("http://SSO.example.org/y", "http://sso.example.org/y"),
    ] {
        let resp = raw::login_raw(h.addr, "alice", "alice-pw", next, "").await;
        assert_eq!(resp.status, 303);
        assert_eq!(resp.header("location"), Some(want), "{next}");
    }
}

/// `Host` and `X-Forwarded-Host` (from an untrusted peer) never reach a `Location`.
#[tokio::test]
async fn host_headers_never_shape_redirects() {
    let h = Harness::start_with(CONFIG).await;
    let evil = "Host: evil.example\r\nX-Forwarded-Host: evil.example\r\nX-Forwarded-Proto: https\r\nForwarded: host=evil.example\r\n";
    // the challenge redirect of a browser
    let req =
        format!("GET /app?x=1 HTTP/1.1\r\n{evil}Accept: text/html\r\nConnection: close\r\n\r\n");
    let resp = raw::send(h.addr, &req).await.first();
    assert_eq!(resp.status, 302);
    assert_local(&resp, "challenge");
    // absolute-form with an evil authority
    let req = "GET http://evil.example/app HTTP/1.1\r\nHost: evil.example\r\nAccept: text/html\r\nConnection: close\r\n\r\n";
    let resp = raw::send(h.addr, req).await.first();
    assert_eq!(resp.status, 302);
    assert_local(&resp, "absolute-form challenge");
    // login without next, and with a next naming the Host we were reached by
    for next in ["", "http://evil.example/", "//evil.example"] {
        let form = raw::fetch_login_form(h.addr, "", "X-Forwarded-Host: evil.example\r\n").await;
        let body = raw::form_body(&[
            ("username", "alice"),
            ("password", "alice-pw"),
            ("csrf", &form.csrf),
            ("next", next),
        ]);
        let req = format!(
            "POST /_auth/login HTTP/1.1\r\n{evil}Cookie: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            form.csrf_cookie,
            body.len()
        );
        let resp = raw::send(h.addr, &req).await.first();
        assert_eq!(resp.status, 303, "next={next:?}");
        assert_local(&resp, &format!("login with evil Host, next={next:?}"));
        // logout without a session redirects to the login page on our origin
        let req = format!(
            "POST /_auth/logout HTTP/1.1\r\n{evil}Content-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let resp = raw::send(h.addr, &req).await.first();
        assert_eq!(resp.status, 303);
        assert_local(&resp, "logout without session");
        let req = format!("GET /_auth/logout HTTP/1.1\r\n{evil}Connection: close\r\n\r\n");
        let resp = raw::send(h.addr, &req).await.first();
        assert_local(&resp, "logout page without session");
    }
}

/// `next` is reflected into the login form: it can never break out of its attribute.
#[tokio::test]
async fn next_cannot_inject_markup() {
    let h = Harness::start_with(CONFIG).await;
    for next in [
        "/app\"><script>alert(1)</script>",
        "/app'><img src=x onerror=alert(1)>",
        "/app?x=\"onmouseover=\"alert(1)",
        "/app#\"><svg onload=alert(1)>",
    ] {
        let q = url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>();
        let ex = raw::send(h.addr, &raw::get(&format!("/_auth/login?next={q}"), "")).await;
        let html = ex.first().text();
        for bad in [
            "<script>alert",
            "<img src=x",
            "\"onmouseover",
            "<svg onload",
        ] {
            assert!(!html.contains(bad), "{next:?} injected {bad:?}");
        }
        let resp = raw::login_raw(h.addr, "alice", "alice-pw", next, "").await;
        assert_eq!(resp.status, 303);
        assert_local(&resp, next);
        let loc = resp.header("location").unwrap();
        assert!(!loc.contains('<') && !loc.contains('"'), "{loc}");
    }
}

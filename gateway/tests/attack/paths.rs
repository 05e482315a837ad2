//! Attack class 2: path confusion, over raw TCP. For every request target the route decision
//! and the path the upstream receives must agree: either the request is refused (nothing
//! forwarded) or the upstream gets exactly the path the matching rule allowed.

use crate::support;

use support::Harness;
use support::path_cases::{PathCase, Who, path_case_failures};
use support::raw;

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
  - match: { host: api.example.org, path: / }
    access: { users: [bob] }
  - match: { path: /static/ }
    access: public
  - match: { path: /admin }
    access: { groups: [admins] }
  - match: { path: /internal/ }
    access: deny
  - match: { path: / }
    access: authenticated
"#;

/// (request target, who, expected status, path the upstream must see when forwarded).
const CASES: &[PathCase] = &[
    // dot segments, raw and encoded, in every position
    ("/static/../admin", Who::Anonymous, 400, None),
    ("/static/../admin", Who::Alice, 400, None),
    ("/static/%2e%2e/admin", Who::Anonymous, 400, None),
    ("/static/%2E%2E/admin", Who::Anonymous, 400, None),
    ("/static/.%2e/admin", Who::Anonymous, 400, None),
    ("/static/%2e./admin", Who::Anonymous, 400, None),
    ("/static/./../admin", Who::Anonymous, 400, None),
    ("/static/x/..", Who::Anonymous, 400, None),
    ("/%2e%2e/admin", Who::Alice, 400, None),
    ("/static/%2e/x", Who::Anonymous, 400, None),
    // encoded separators
    ("/static%2f..%2fadmin", Who::Anonymous, 400, None),
    ("/static/..%2fadmin", Who::Anonymous, 400, None),
    ("/static/..%2Fadmin", Who::Anonymous, 400, None),
    ("/static/..%5cadmin", Who::Anonymous, 400, None),
    ("/static/..%5Cadmin", Who::Anonymous, 400, None),
    ("/admin%2fx", Who::Alice, 400, None),
    // path parameters (servlet containers strip them before routing)
    ("/admin;x=1", Who::Alice, 400, None),
    ("/admin;/x", Who::Alice, 400, None),
    ("/static/..;/admin", Who::Anonymous, 400, None),
    ("/static/x;jsessionid=1", Who::Anonymous, 400, None),
    ("/admin%3b/x", Who::Alice, 400, None),
    // double (and triple) encoding: an upstream that decodes again must not find a separator,
    // a dot segment or a parameter the gateway did not see
    ("/static/%252e%252e/admin", Who::Anonymous, 400, None),
    ("/static/%252E%252E/admin", Who::Alice, 400, None),
    ("/static/..%252fadmin", Who::Anonymous, 400, None),
    ("/static/%25252e%25252e/admin", Who::Anonymous, 400, None),
    ("/static/%255cadmin", Who::Anonymous, 400, None),
    ("/admin%253bx", Who::Alice, 400, None),
    // ... also when the second encoding only appears once unreserved escapes are decoded
    // (`%25%32%65` normalizes to `%252e`; found by the normalize_path fuzz target)
    (
        "/static/%25%32%65%25%32%65/admin",
        Who::Anonymous,
        400,
        None,
    ),
    ("/static/..%25%32%66admin", Who::Anonymous, 400, None),
    ("/admin%25%33%62x", Who::Alice, 400, None),
    // overlong UTF-8 for `.` and `/` (old IIS decoded them)
    ("/static/%c0%ae%c0%ae/admin", Who::Anonymous, 400, None),
    ("/static/%c0%af/admin", Who::Anonymous, 400, None),
    ("/static/%e0%80%ae/admin", Who::Anonymous, 400, None),
    // IIS %u escapes
    ("/static/%u002e%u002e/admin", Who::Anonymous, 400, None),
    // controls
    ("/admin%00", Who::Alice, 400, None),
    ("/admin%0d%0aX-Remote-User:%20bob", Who::Alice, 400, None),
    ("/admin%09", Who::Alice, 400, None),
    // empty segments collapse before matching, and the collapsed path is forwarded
    ("//admin", Who::Alice, 403, None),
    ("//admin", Who::Bob, 200, Some("/admin")),
    ("/admin//x", Who::Alice, 403, None),
    ("///static//x", Who::Anonymous, 200, Some("/static/x")),
    ("//internal/x", Who::Bob, 403, None),
    // unreserved escapes decode before matching, and the decoded path is forwarded
    ("/%61dmin", Who::Alice, 403, None),
    ("/%61dmin", Who::Bob, 200, Some("/admin")),
    ("/%61%64%6d%69%6e/x", Who::Alice, 403, None),
    ("/%69nternal/x", Who::Bob, 403, None),
    ("/%73tatic/x", Who::Anonymous, 200, Some("/static/x")),
    // case: matched case-sensitively AND forwarded unchanged (never a different resource)
    ("/ADMIN", Who::Anonymous, 401, None),
    ("/ADMIN", Who::Alice, 200, Some("/ADMIN")),
    ("/Admin/x", Who::Alice, 200, Some("/Admin/x")),
    ("/STATIC/x", Who::Anonymous, 401, None),
    // segment-aware prefixes
    ("/administrator", Who::Alice, 200, Some("/administrator")),
    ("/admin/", Who::Alice, 403, None),
    ("/admin", Who::Bob, 200, Some("/admin")),
    ("/staticx", Who::Anonymous, 401, None),
    // query and fragment tricks: the query passes unchanged and never changes the route
    (
        "/static/x?/../admin",
        Who::Anonymous,
        200,
        Some("/static/x?/../admin"),
    ),
    (
        "/static/x?x=/admin",
        Who::Anonymous,
        200,
        Some("/static/x?x=/admin"),
    ),
    ("/admin?/static/", Who::Anonymous, 401, None),
    ("/admin%3f/static/x", Who::Anonymous, 401, None),
    ("/admin%23/static/x", Who::Anonymous, 401, None),
    ("/static%23/../admin", Who::Anonymous, 400, None),
    ("/static%3f/../admin", Who::Anonymous, 400, None),
    // a raw `#` ends the target (hyper drops the fragment before any phase runs): nothing after
    // it is routed or forwarded
    (
        "/static/x#/../../admin",
        Who::Anonymous,
        200,
        Some("/static/x"),
    ),
    ("/admin#/static/x", Who::Anonymous, 401, None),
    ("/admin#/static/x", Who::Alice, 403, None),
    (
        "/static/x?a=1#/admin",
        Who::Anonymous,
        200,
        Some("/static/x?a=1"),
    ),
    // absolute-form targets naming the `Host` (case-insensitively, default port or not): the
    // path decides
    ("http://gw.test/admin", Who::Alice, 403, None),
    ("http://gw.test/admin", Who::Bob, 200, Some("/admin")),
    (
        "http://GW.test:80/static/x",
        Who::Anonymous,
        200,
        Some("/static/x"),
    ),
    (
        "https://gw.test:443/static/x",
        Who::Anonymous,
        200,
        Some("/static/x"),
    ),
    ("http://gw.test/static/../admin", Who::Anonymous, 400, None),
    ("http://gw.test//admin", Who::Alice, 403, None),
    // ... and naming another authority: refused, never routed on `Host` while another hop reads
    // the authority
    ("http://evil.example/admin", Who::Bob, 400, None),
    ("http://evil.example/static/x", Who::Anonymous, 400, None),
    ("http://gw.test:8080/static/x", Who::Anonymous, 400, None),
    ("https://gw.test:80/static/x", Who::Anonymous, 400, None),
    ("http://gw.test:443/static/x", Who::Anonymous, 400, None),
    ("http://alice@gw.test/static/x", Who::Anonymous, 400, None),
    ("http://gw.test./static/x", Who::Anonymous, 400, None),
    // not origin-form
    ("*", Who::Alice, 400, None),
    ("admin", Who::Alice, 400, None),
    ("static/x", Who::Anonymous, 400, None),
];

#[tokio::test]
async fn route_decision_and_forwarded_path_agree() {
    let h = Harness::start_with(CONFIG).await;
    let failures = path_case_failures(&h, CASES).await;
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

/// `OPTIONS *` and `CONNECT` are never forwarded.
#[tokio::test]
async fn asterisk_and_connect_are_refused() {
    let h = Harness::start_with(CONFIG).await;
    for req in [
        "OPTIONS * HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n",
        "CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\nConnection: close\r\n\r\n",
        "CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\nConnection: close\r\n\r\n",
    ] {
        let ex = raw::send(h.addr, req).await;
        let st = ex.status();
        assert!((400..500).contains(&st), "{req:?}: {st}");
        assert!(h.upstream.seen().is_empty(), "{req:?} was forwarded");
    }
}

/// Host-based rules: case, port, trailing dot and duplicates cannot move a request to a laxer
/// rule while the upstream still sees the protected host.
#[tokio::test]
async fn host_rules_cannot_be_dodged() {
    let h = Harness::start_with(CONFIG).await;
    let alice = Who::Alice.header();
    let bob = Who::Bob.header();
    let cases: &[(&str, &str, u16)] = &[
        ("Host: api.example.org\r\n", &alice, 403),
        ("Host: API.EXAMPLE.ORG\r\n", &alice, 403),
        ("Host: api.example.org:8080\r\n", &alice, 403),
        ("Host: api.example.org.\r\n", &alice, 403),
        ("Host: API.example.org.:443\r\n", &alice, 403),
        ("Host: api.example.org\r\n", &bob, 200),
        (
            "Host: other.example\r\nHost: api.example.org\r\n",
            &alice,
            400,
        ),
        (
            "Host: api.example.org\r\nHost: other.example\r\n",
            &alice,
            400,
        ),
    ];
    for (host, who, status) in cases {
        h.upstream.clear();
        let req = format!("GET /x HTTP/1.1\r\n{host}{who}Connection: close\r\n\r\n");
        let ex = raw::send(h.addr, &req).await;
        assert_eq!(ex.status(), *status, "{host:?}");
        let seen = h.upstream.seen();
        if *status == 200 {
            assert_eq!(seen.len(), 1);
            assert_eq!(seen[0].path, "/x");
        } else {
            assert!(seen.is_empty(), "{host:?} forwarded");
        }
    }
    // absolute-form: the authority and Host disagree: refused rather than guessed
    for (target, host) in [
        ("http://api.example.org/x", "other.example"),
        ("http://other.example/x", "api.example.org"),
        ("http://api.example.org:8080/x", "api.example.org"),
    ] {
        h.upstream.clear();
        let req =
            format!("GET {target} HTTP/1.1\r\nHost: {host}\r\n{bob}Connection: close\r\n\r\n");
        let ex = raw::send(h.addr, &req).await;
        assert_eq!(ex.status(), 400, "{target} with Host {host}");
        assert!(h.upstream.seen().is_empty(), "{target} forwarded");
    }
    // the same authority as Host is routed as usual
    let req = format!(
        "GET http://API.example.org:80/x HTTP/1.1\r\nHost: api.example.org\r\n{alice}Connection: close\r\n\r\n"
    );
    assert_eq!(raw::send(h.addr, &req).await.status(), 403);
}

/// Without any Host the host rules cannot match; the request must not fall through to a laxer
/// rule while the upstream picks its default virtual host (possibly the protected one).
#[tokio::test]
async fn missing_host_is_refused() {
    let h = Harness::start_with(CONFIG).await;
    let alice = Who::Alice.header();
    for req in [
        format!("GET /x HTTP/1.1\r\n{alice}Connection: close\r\n\r\n"),
        format!("GET /x HTTP/1.0\r\n{alice}\r\n"),
        format!("GET /x HTTP/1.1\r\nHost:\r\n{alice}Connection: close\r\n\r\n"),
        format!("GET /x HTTP/1.1\r\nHost: \r\n{alice}Connection: close\r\n\r\n"),
    ] {
        h.upstream.clear();
        let ex = raw::send(h.addr, &req).await;
        assert_eq!(ex.status(), 400, "{req:?}");
        assert!(h.upstream.seen().is_empty(), "{req:?} forwarded");
    }
}

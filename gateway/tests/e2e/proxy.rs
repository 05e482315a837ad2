//! End-to-end: the request path in front of a recording upstream (spoofing, routes, paths,
//! forwarding headers, upstream failures, streaming, WebSocket).

use crate::support;

use support::{Harness, basic, client, raw, raw_status};

const ALICE: (&str, &str) = ("alice", "alice-pw");

#[tokio::test]
async fn spoofed_identity_headers_never_arrive_in_any_spelling() {
    let h = Harness::start().await;
    for path in ["/static/app.js", "/app/page"] {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: gw.test\r\n\
             X-Remote-User: admin\r\nx-remote-user: admin2\r\nX_Remote_User: admin3\r\n\
             X.Remote.User: admin4\r\nx-REMOTE_user: admin5\r\nX-Remote-Groups: admins\r\n\
             X-Remote-Email: a@evil\r\nX-Remote-Name: Evil\r\nX-Remote-Backend: ldap\r\n\
             X-Forwarded-For: 6.6.6.6\r\nX-Real-IP: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\n\
             X-Forwarded-Host: evil.test\r\nX-Forwarded-Proto: https\r\n\
             X-Original-URL: /admin\r\nX-Rewrite-URL: /admin\r\nX-HTTP-Method-Override: DELETE\r\n\
             Authorization: {}\r\nConnection: close\r\n\r\n",
            basic(ALICE.0, ALICE.1)
        );
        h.upstream.clear();
        let resp = raw(h.addr, &request).await;
        assert_eq!(raw_status(&resp), 200, "{path}: {resp}");
        let seen = h.upstream.last().expect("upstream saw the request");
        let users = seen.all("x-remote-user");
        if path.starts_with("/static") {
            assert!(users.is_empty(), "public route got {users:?}");
        } else {
            assert_eq!(users, vec!["alice".to_string()]);
            assert_eq!(seen.all("x-remote-groups"), vec!["staff".to_string()]);
            assert_eq!(seen.all("x-remote-backend"), vec!["test".to_string()]);
        }
        let ours = ["alice", "staff", "test", "alice@example.org", "User alice"];
        for (name, value) in seen.headers.iter() {
            let folded = name.as_str().replace(['_', '.'], "-");
            if folded.starts_with("x-remote") {
                assert!(
                    ours.contains(&value.to_str().unwrap()),
                    "{path}: spoofed {name}: {value:?} arrived"
                );
            }
        }
        assert_eq!(seen.all("x-forwarded-for"), vec!["127.0.0.1".to_string()]);
        assert_eq!(seen.all("x-forwarded-host"), vec!["gw.test".to_string()]);
        assert_eq!(seen.all("x-forwarded-proto"), vec!["http".to_string()]);
        for gone in [
            "x-real-ip",
            "forwarded",
            "x-original-url",
            "x-rewrite-url",
            "x-http-method-override",
        ] {
            assert!(seen.get(gone).is_none(), "{path}: {gone} arrived");
        }
    }
}

#[tokio::test]
async fn connection_header_cannot_strip_what_the_gateway_sets() {
    let h = Harness::start().await;
    let request = format!(
        "GET /app HTTP/1.1\r\nHost: gw.test\r\nAuthorization: {}\r\n\
         Connection: close, X-Remote-User, X-Forwarded-For, X-Remote-Groups\r\n\r\n",
        basic(ALICE.0, ALICE.1)
    );
    let resp = raw(h.addr, &request).await;
    assert_eq!(raw_status(&resp), 200, "{resp}");
    let seen = h.upstream.last().unwrap();
    assert_eq!(seen.get("x-remote-user").as_deref(), Some("alice"));
    assert_eq!(seen.get("x-remote-groups").as_deref(), Some("staff"));
    assert_eq!(seen.get("x-forwarded-for").as_deref(), Some("127.0.0.1"));
    assert!(
        seen.get("connection")
            .is_none_or(|c| !c.contains("x-remote"))
    );
    assert!(
        seen.get("authorization").is_none(),
        "consumed Basic forwarded"
    );
}

#[tokio::test]
async fn routes_decide_as_configured() {
    let h = Harness::start().await;
    let c = client();
    let get = |path: &str, who: Option<(&str, &str)>| {
        let mut r = c.get(h.url(path));
        if let Some((u, p)) = who {
            r = r.header("authorization", basic(u, p));
        }
        r.send()
    };
    // public
    assert_eq!(get("/static/x.css", None).await.unwrap().status(), 200);
    // authenticated (default rule and no-match default)
    assert_eq!(get("/app", None).await.unwrap().status(), 401);
    assert_eq!(get("/app", Some(ALICE)).await.unwrap().status(), 200);
    // groups, segment-aware prefix
    assert_eq!(get("/admin", Some(ALICE)).await.unwrap().status(), 403);
    assert_eq!(
        get("/admin/users", Some(ALICE)).await.unwrap().status(),
        403
    );
    assert_eq!(
        get("/admin/users", Some(("bob", "bob-pw")))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        get("/administrator", Some(ALICE)).await.unwrap().status(),
        200
    );
    assert_eq!(get("/staticfile", None).await.unwrap().status(), 401);
    // users + methods: POST /reports only alice; GET falls to `authenticated`
    let post = |who: (&str, &str)| {
        c.post(h.url("/reports/q1"))
            .header("authorization", basic(who.0, who.1))
            .send()
    };
    assert_eq!(post(ALICE).await.unwrap().status(), 200);
    assert_eq!(post(("bob", "bob-pw")).await.unwrap().status(), 403);
    assert_eq!(
        get("/reports/q1", Some(("bob", "bob-pw")))
            .await
            .unwrap()
            .status(),
        200
    );
    // deny, even for admins
    assert_eq!(
        get("/internal/x", Some(("bob", "bob-pw")))
            .await
            .unwrap()
            .status(),
        403
    );
    // HEAD and OPTIONS decide like GET
    let head = c
        .head(h.url("/admin"))
        .header("authorization", basic(ALICE.0, ALICE.1));
    assert_eq!(head.send().await.unwrap().status(), 403);
    let opts = c
        .request(reqwest::Method::OPTIONS, h.url("/admin"))
        .header("authorization", basic(ALICE.0, ALICE.1));
    assert_eq!(opts.send().await.unwrap().status(), 403);
    let custom = c
        .request(
            reqwest::Method::from_bytes(b"PROPFIND").unwrap(),
            h.url("/admin"),
        )
        .header("authorization", basic(ALICE.0, ALICE.1));
    assert_eq!(custom.send().await.unwrap().status(), 403);
}

#[tokio::test]
async fn ambiguous_paths_are_refused_and_the_forwarded_path_is_the_matched_one() {
    let h = Harness::start().await;
    let auth = basic("alice", "alice-pw");
    for path in [
        "/static/..%2fadmin",
        "/static/%2e%2e/admin",
        "/static/../admin",
        "/static/./x",
        "/static%2fx",
        "/static\\..\\admin",
        "/static/%5cadmin",
        "/static/a%00",
        "/admin;jsessionid=1/",
        "/static/%zz",
    ] {
        h.upstream.clear();
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: gw\r\nAuthorization: {auth}\r\nConnection: close\r\n\r\n"
        );
        let resp = raw(h.addr, &req).await;
        assert_eq!(raw_status(&resp), 400, "{path}: {resp}");
        assert!(h.upstream.seen().is_empty(), "{path} reached the upstream");
    }
    // %61dmin is /admin: matched (and refused) as /admin
    let resp = raw(
        h.addr,
        &format!("GET /%61dmin HTTP/1.1\r\nHost: gw\r\nAuthorization: {auth}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert_eq!(raw_status(&resp), 403, "{resp}");
    // collapsed slashes and decoded unreserved chars are forwarded as matched
    h.upstream.clear();
    let resp = raw(
        h.addr,
        "GET //static///%7euser/a%20b?q=%2F..%2F HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(raw_status(&resp), 200, "{resp}");
    assert_eq!(
        h.upstream.last().unwrap().path,
        "/static/~user/a%20b?q=%2F..%2F"
    );
}

#[tokio::test]
async fn gateway_cookie_is_not_forwarded_but_others_are() {
    let h = Harness::start().await;
    let resp = client()
        .get(h.url("/static/x"))
        .header("cookie", "theme=dark; gw_session=stolen; lang=fr")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        h.upstream.last().unwrap().get("cookie").as_deref(),
        Some("theme=dark; lang=fr")
    );
}

#[tokio::test]
async fn upstream_down_is_502_and_slow_is_504() {
    let h = Harness::start().await;
    let resp = client()
        .get(h.url("/slow/x"))
        .header("authorization", basic("alice", "alice-pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 504);

    // A port nobody listens on.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    let yaml = support::BASE_CONFIG.replace("{upstream}", &dead_addr.to_string());
    let h2 = Harness::start_with(&yaml).await;
    let resp = client().get(h2.url("/static/x")).send().await.unwrap();
    assert_eq!(resp.status(), 502);
}

#[tokio::test]
async fn large_upload_streams_through() {
    use bytes::Bytes;
    use futures_util::stream;
    use http_body_util::{BodyExt, StreamBody};
    let h = Harness::start().await;
    // 256 MiB in 64 KiB chunks, generated lazily: the test itself never holds it.
    const CHUNK: usize = 64 * 1024;
    const CHUNKS: usize = 4096;
    let chunk = Bytes::from(vec![b'x'; CHUNK]);
    let body =
        StreamBody::new(stream::iter((0..CHUNKS).map(move |_| {
            Ok::<_, std::io::Error>(hyper::body::Frame::data(chunk.clone()))
        })));
    let req = http::Request::post(h.url("/upload"))
        .header("authorization", basic("alice", "alice-pw"))
        .body(body)
        .unwrap();
    let resp = support::hyper_client(false).request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let got = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(got, (CHUNK * CHUNKS).to_string());
}

#[tokio::test]
async fn h2c_upgrade_is_refused() {
    let h = Harness::start().await;
    let resp = raw(
        h.addr,
        "GET /static/x HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade, HTTP2-Settings\r\n\
         Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
    )
    .await;
    assert_eq!(raw_status(&resp), 400, "{resp}");
    assert!(h.upstream.seen().is_empty());
}

#[tokio::test]
async fn websocket_passes_through_when_authenticated_and_not_when_anonymous() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};
    let h = Harness::start().await;
    let url = format!("ws://{}/ws/echo", h.addr);

    let anon = tokio_tungstenite::connect_async(url.clone()).await;
    match anon {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), 401)
        }
        other => panic!("anonymous websocket was not refused: {other:?}"),
    }

    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", basic("alice", "alice-pw").parse().unwrap());
    req.headers_mut()
        .insert("x-remote-user", "admin".parse().unwrap());
    let (mut ws, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(resp.status(), 101);
    ws.send(Message::text("hello")).await.unwrap();
    let echoed = ws.next().await.unwrap().unwrap();
    assert_eq!(echoed, Message::text("hello"));
    ws.close(None).await.ok();
    let seen = h.upstream.last().unwrap();
    assert_eq!(seen.all("x-remote-user"), vec!["alice".to_string()]);
}

#[tokio::test]
async fn http2_prior_knowledge_works() {
    let h = Harness::start().await;
    let req = http::Request::get(h.url("/app/x"))
        .header("authorization", basic("alice", "alice-pw"))
        .header("x-remote-user", "admin")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let resp = support::hyper_client(true).request(req).await.unwrap();
    assert_eq!(resp.version(), http::Version::HTTP_2);
    assert_eq!(resp.status(), 200);
    let seen = h.upstream.last().unwrap();
    assert_eq!(seen.all("x-remote-user"), vec!["alice".to_string()]);
    assert_eq!(seen.path, "/app/x");
}

#[tokio::test]
async fn forwarding_headers_are_believed_only_from_trusted_proxies() {
    let yaml = support::BASE_CONFIG.replace(
        "  public_url:",
        "  trusted_proxies: [127.0.0.1/32]\n  public_url:",
    );
    let h = Harness::start_with(&yaml).await;
    let resp = client()
        .get(h.url("/static/x"))
        .header("x-forwarded-for", "203.0.113.7")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "www.example.org")
        .header("x-real-ip", "6.6.6.6")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let seen = h.upstream.last().unwrap();
    assert_eq!(
        seen.all("x-forwarded-for"),
        vec!["203.0.113.7, 127.0.0.1".to_string()]
    );
    assert_eq!(seen.get("x-forwarded-proto").as_deref(), Some("https"));
    assert_eq!(
        seen.get("x-forwarded-host").as_deref(),
        Some("www.example.org")
    );
    assert!(seen.get("x-real-ip").is_none());

    // The lockout keys on the believed client address: failures from one forwarded client do
    // not lock out another behind the same proxy.
    let yaml = yaml.replace(
        "login:\n",
        "protection:\n  max_failures: 2\ncache:\n  credentials_ttl: 0s\nlogin:\n",
    );
    let h = Harness::start_with(&yaml).await;
    let c = client();
    let attempt = |xff: &'static str, pw: &'static str| {
        c.get(h.url("/app"))
            .header("x-forwarded-for", xff)
            .header("authorization", basic("alice", pw))
            .send()
    };
    for _ in 0..2 {
        assert_eq!(attempt("198.51.100.1", "bad").await.unwrap().status(), 401);
    }
    assert_eq!(
        attempt("198.51.100.1", "alice-pw").await.unwrap().status(),
        401
    );
    assert_eq!(
        attempt("198.51.100.2", "alice-pw").await.unwrap().status(),
        200
    );
}

#[tokio::test]
async fn host_is_preserved_or_replaced_as_configured() {
    let h = Harness::start().await;
    client()
        .get(h.url("/static/x"))
        .header("host", "app.example.org")
        .send()
        .await
        .unwrap();
    assert_eq!(
        h.upstream.last().unwrap().get("host").as_deref(),
        Some("app.example.org")
    );
    let yaml =
        support::BASE_CONFIG.replace("  timeout: 2s\n", "  timeout: 2s\n  preserve_host: false\n");
    let h = Harness::start_with(&yaml).await;
    client()
        .get(h.url("/static/x"))
        .header("host", "app.example.org")
        .send()
        .await
        .unwrap();
    let seen = h.upstream.last().unwrap();
    assert_eq!(seen.get("host"), Some(h.upstream.addr.to_string()));
    assert_eq!(
        seen.get("x-forwarded-host").as_deref(),
        Some("app.example.org")
    );
}

#[tokio::test]
async fn slow_or_oversized_request_heads_are_cut() {
    let yaml = support::BASE_CONFIG.replace(
        "  public_url:",
        "  header_read_timeout: 500ms\n  max_header_bytes: 8192\n  public_url:",
    );
    let h = Harness::start_with(&yaml).await;
    // A head that never completes: the connection is closed after the timeout.
    let started = std::time::Instant::now();
    let resp = raw(h.addr, "GET /static/x HTTP/1.1\r\nHost: gw\r\nX-Slow: ").await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "slow head kept open for {:?}",
        started.elapsed()
    );
    assert!(resp.is_empty() || raw_status(&resp) == 408, "{resp}");
    // A head over the limit is refused.
    let big = "a".repeat(20_000);
    let resp = raw(
        h.addr,
        &format!("GET /static/x HTTP/1.1\r\nHost: gw\r\nX-Big: {big}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert_eq!(raw_status(&resp), 431, "{resp}");
    assert!(h.upstream.seen().is_empty());
}

#[tokio::test]
async fn a_fake_101_does_not_open_a_tunnel() {
    let h = Harness::start().await;
    let resp = raw(
        h.addr,
        "GET /static/fake101 HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade, close\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await;
    assert_eq!(raw_status(&resp), 502, "{resp}");
    assert!(!resp.contains("tunnel!"));
}

/// `GET path` with `accept` (or none): status, content type, CSP, body.
async fn get_error(h: &Harness, path: &str, accept: Option<&str>) -> (u16, String, String, String) {
    let mut req = client().get(h.url(path));
    if let Some(accept) = accept {
        req = req.header("accept", accept);
    }
    let resp = req.send().await.expect("response");
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let (status, ctype, csp) = (
        resp.status().as_u16(),
        header("content-type"),
        header("content-security-policy"),
    );
    (status, ctype, csp, resp.text().await.expect("body"))
}

/// Each error status in the three formats: the styled page (built-in CSP) for a browser, the
/// JSON object for an API client, the reason as plain text otherwise; never an internal detail.
async fn assert_error_formats(
    h: &Harness,
    path: &str,
    status: u16,
    code: &str,
    title: &str,
    hidden: &[&str],
) {
    let code_status = http::StatusCode::from_u16(status).unwrap();
    let page = gateway::__test::ErrorPage::for_status(&code_status);
    assert_eq!(page.title, title);
    let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    let (got, ctype, csp, body) = get_error(h, path, Some(browser)).await;
    assert_eq!(got, status, "{path}: {body}");
    assert_eq!(ctype, "text/html; charset=utf-8");
    assert_eq!(csp, gateway::__test::builtin_csp(), "the login page's CSP");
    assert!(body.contains(&format!("<title>{title}</title>")), "{body}");
    assert!(body.contains(&format!("<h1>{title}</h1>")), "{body}");
    assert!(body.contains(&format!("Error {status}")), "{body}");
    assert!(body.contains(page.message), "{body}");
    for secret in hidden
        .iter()
        .filter(|s| !s.bytes().all(|b| b.is_ascii_digit()))
    {
        assert!(!body.contains(secret), "html: `{secret}` leaked in {body}");
    }
    for (accept, want_json) in [
        ("application/json", true),
        ("application/problem+json; q=0.9", true),
        ("*/*", false),
    ] {
        let (got, ctype, _, body) = get_error(h, path, Some(accept)).await;
        assert_eq!(got, status, "{accept}");
        if want_json {
            assert_eq!(ctype, "application/json", "{accept}");
            let json: serde_json::Value = serde_json::from_str(&body).expect("JSON body");
            assert_eq!(
                json,
                serde_json::json!({"error": code, "status": status, "message": page.message}),
                "{accept}"
            );
        } else {
            assert_eq!(ctype, "text/plain; charset=utf-8", "{accept}");
            assert_eq!(
                body,
                format!("{}\n", code_status.canonical_reason().unwrap())
            );
        }
        for secret in hidden {
            assert!(
                !body.contains(secret),
                "{accept}: `{secret}` leaked in {body}"
            );
        }
    }
    let (_, ctype, _, body) = get_error(h, path, None).await;
    assert_eq!(ctype, "text/plain; charset=utf-8", "no Accept: plain text");
    for secret in hidden {
        assert!(!body.contains(secret), "`{secret}` leaked in {body}");
    }
}

#[tokio::test]
async fn upstream_down_is_a_502_page_json_or_text_without_internal_detail() {
    let dead = support::upstream::dead_upstream();
    let h = Harness::start_with(&support::upstream::public_config(&dead.to_string(), "")).await;
    let port = dead.port().to_string();
    assert_error_formats(
        &h,
        "/app",
        502,
        "bad_gateway",
        "Bad gateway",
        &[&port, "refused", "onnect"],
    )
    .await;
}

#[tokio::test]
async fn slow_upstream_is_a_504_page_json_or_text() {
    let h = Harness::start_with(&support::upstream::public_config("{upstream}", "")).await;
    let started = std::time::Instant::now();
    assert_error_formats(
        &h,
        "/slow/report",
        504,
        "gateway_timeout",
        "Gateway timeout",
        &["500ms", "timed out"],
    )
    .await;
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
}

#[tokio::test]
async fn unknown_path_under_the_login_prefix_is_a_404_page() {
    let h = Harness::start_with(&support::upstream::public_config("{upstream}", "")).await;
    assert_error_formats(
        &h,
        "/_auth/nothing-here",
        404,
        "not_found",
        "Page not found",
        &["nothing-here", "endpoint"],
    )
    .await;
    assert!(
        h.upstream.seen().is_empty(),
        "the prefix is never forwarded"
    );
}

#[tokio::test]
async fn error_template_replaces_the_page_with_escaped_values_and_no_builtin_csp() {
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("error.html");
    std::fs::write(
        &template,
        "<!doctype html><title>{{title}} | Acme</title><h1 data-status=\"{{status}}\">{{title}}</h1><p>{{message}}</p>\n",
    )
    .unwrap();
    let dead = support::upstream::dead_upstream();
    let h = Harness::start_with(&support::upstream::public_config(
        &dead.to_string(),
        &format!("  error_template: \"{}\"\n", template.display()),
    ))
    .await;
    let (status, ctype, csp, body) = get_error(&h, "/app", Some("text/html")).await;
    assert_eq!(
        (status, ctype.as_str(), csp.as_str()),
        (502, "text/html; charset=utf-8", "")
    );
    let page = gateway::__test::ErrorPage::for_status(&http::StatusCode::BAD_GATEWAY);
    assert_eq!(
        body,
        format!(
            "<!doctype html><title>Bad gateway | Acme</title><h1 data-status=\"502\">Bad gateway</h1><p>{}</p>\n",
            page.message
        )
    );
    // API clients still get JSON.
    let (_, ctype, _, _) = get_error(&h, "/app", Some("application/json")).await;
    assert_eq!(ctype, "application/json");
}

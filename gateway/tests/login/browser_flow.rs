//! A real login through the gateway in headless Chromium: a protected URL redirects to the
//! login page, a wrong password is refused with a message, alice's credentials land her on the
//! page she asked for with the identity the upstream (the demo app) received, and logout ends
//! the session.

use crate::browser;
use crate::support;

use std::sync::Arc;
use std::time::Duration;

use browser::Browser;
use fantoccini::Locator;
use fantoccini::key::Key;
use gateway::__test::Metrics;
use gateway::__test::demo_upstream;
use gateway::__test::{Gateway, Running};

const CONFIG: &str = r#"
server:
  public_url: "http://127.0.0.1:{port}"
upstream:
  url: "http://{upstream}"
  connect_timeout: 1s
  timeout: 5s
session:
  secure: false
  secret: "0123456789abcdef0123456789abcdef-browser"
login:
  title: "Sign in to Acme"
routes:
  - match: { path: /static/ }
    access: public
  - match: { path: / }
    access: authenticated
"#;

fn enter() -> String {
    String::from(char::from(Key::Enter))
}

/// Waits until the page's path is `path` (navigations after a submit are asynchronous).
async fn wait_for_path(client: &fantoccini::Client, path: &str) -> url::Url {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let url = client.current_url().await.expect("current url");
        if url.path() == path {
            return url;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "expected to reach {path}, still at {url}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn identity_cell(client: &fantoccini::Client, header: &str) -> String {
    client
        .find(Locator::Css(&format!(
            "#identity td[data-header='{header}']"
        )))
        .await
        .expect("identity row")
        .text()
        .await
        .expect("text")
}

/// The gateway in front of the demo upstream, and what must be stopped afterwards.
struct Site {
    running: Running,
    upstream: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Site {
    async fn start() -> Site {
        let (upstream_addr, upstream) = demo_upstream::spawn("127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("demo upstream");
        let backend = support::default_backend();
        // `public_url` is the origin the browser uses: the login and logout POSTs must come
        // from it (their `Origin` is checked), so the port is chosen before the config.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let config =
            support::parse_config(&CONFIG.replace("{port}", &port.to_string()), upstream_addr);
        let dir = tempfile::tempdir().expect("tempdir");
        let runtime = support::runtime(config, &backend, dir.path(), 1).await;
        let gateway = Gateway::new(runtime, Arc::new(Metrics::new()));
        let running = Running::start(gateway, ([127, 0, 0, 1], port).into(), None)
            .await
            .expect("gateway starts");
        Site {
            running,
            upstream,
            _dir: dir,
        }
    }

    fn base(&self) -> String {
        format!("http://{}", self.running.addr)
    }

    async fn stop(self) {
        self.running.shutdown().await;
        self.upstream.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_through_the_gateway_then_logout() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let site = Site::start().await;
    let base = site.base();
    let client = browser.client();

    // Public content needs no login.
    client
        .goto(&format!("{base}/static/hello.txt"))
        .await
        .expect("open static");
    let text = client.source().await.expect("source");
    assert!(text.contains("no login needed"), "{text}");

    // A protected URL sends the browser to the login page, carrying where it wanted to go.
    client
        .goto(&format!("{base}/app/reports?year=2026&q=a+b"))
        .await
        .expect("open protected page");
    let login_url = wait_for_path(client, "/_auth/login").await;
    assert_eq!(
        login_url
            .query_pairs()
            .find(|(k, _)| k == "next")
            .map(|(_, v)| v.into_owned())
            .as_deref(),
        Some("/app/reports?year=2026&q=a+b")
    );
    assert_eq!(client.title().await.expect("title"), "Sign in to Acme");

    // A wrong password: refused, message announced, username kept.
    let username = client
        .find(Locator::Id("username"))
        .await
        .expect("username");
    username.send_keys("alice").await.expect("type");
    let password = client
        .find(Locator::Id("password"))
        .await
        .expect("password");
    password.send_keys("wrong-password").await.expect("type");
    password.send_keys(&enter()).await.expect("submit");
    let alert = client
        .wait()
        .for_element(Locator::Css("[role=alert]:not(:empty)"))
        .await
        .expect("error message");
    assert!(!alert.text().await.expect("text").is_empty());
    assert_eq!(
        client
            .find(Locator::Id("username"))
            .await
            .expect("username")
            .prop("value")
            .await
            .expect("value")
            .as_deref(),
        Some("alice")
    );
    assert!(
        client
            .find(Locator::Css("[role=alert]"))
            .await
            .expect("alert")
            .is_displayed()
            .await
            .expect("displayed")
    );

    // The right password lands on `next`, showing what the upstream received.
    let password = client
        .find(Locator::Id("password"))
        .await
        .expect("password");
    password.send_keys("alice-pw").await.expect("type");
    password.send_keys(&enter()).await.expect("submit");
    let landed = wait_for_path(client, "/app/reports").await;
    assert_eq!(landed.query(), Some("year=2026&q=a+b"));
    let greeting = client
        .wait()
        .for_element(Locator::Id("greeting"))
        .await
        .expect("upstream page");
    assert_eq!(greeting.text().await.expect("text"), "Hello, alice!");
    assert_eq!(identity_cell(client, "x-remote-user").await, "alice");
    assert_eq!(
        identity_cell(client, "x-remote-email").await,
        "alice@example.org"
    );
    assert_eq!(identity_cell(client, "x-remote-groups").await, "staff");
    assert_eq!(identity_cell(client, "x-remote-backend").await, "test");
    // The gateway's own session cookie never reaches the app.
    let cookies_seen = client
        .execute(
            "const c = document.querySelector(\"td[data-header='cookie']\");\
             return c ? c.textContent : '';",
            vec![],
        )
        .await
        .expect("cookie cell");
    assert!(
        !cookies_seen
            .as_str()
            .unwrap_or_default()
            .contains("gw_session"),
        "{cookies_seen}"
    );
    browser.screenshot("flow-upstream").await;

    // Logout: the app's link leads to the gateway's confirmation form, which ends the session.
    client
        .find(Locator::Id("logout"))
        .await
        .expect("logout link")
        .click()
        .await
        .expect("click");
    wait_for_path(client, "/_auth/logout").await;
    let confirm = client
        .wait()
        .for_element(Locator::Css("form[method=post] button[type=submit]"))
        .await
        .expect("confirm form");
    browser.screenshot("flow-logout-confirm").await;
    confirm.click().await.expect("confirm");
    wait_for_path(client, "/_auth/login").await;

    // The session is over: the protected page asks for a login again.
    client
        .goto(&format!("{base}/app/reports"))
        .await
        .expect("open protected page");
    wait_for_path(client, "/_auth/login").await;
    let cookies = client.get_all_cookies().await.expect("cookies");
    assert!(
        cookies.iter().all(|c| c.name() != "gw_session"),
        "session cookie cleared: {cookies:?}"
    );

    site.stop().await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_next_lands_on_our_start_page() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let site = Site::start().await;
    let base = site.base();
    let client = browser.client();
    for (in_query, tampered) in [
        ("//evil.example/x", "https://evil.example/"),
        ("/\\evil.example", "//evil.example/x"),
        ("https://127.0.0.1.evil.example/", "/\\evil.example"),
        ("javascript:alert(1)", "/%2f%2fevil.example"),
    ] {
        let query: String = url::form_urlencoded::byte_serialize(in_query.as_bytes()).collect();
        client
            .goto(&format!("{base}/_auth/login?next={query}"))
            .await
            .expect("open login");
        let next = client
            .find(Locator::Css("input[name=next]"))
            .await
            .expect("next field")
            .prop("value")
            .await
            .expect("value");
        assert_eq!(
            next.as_deref(),
            Some("/"),
            "{in_query:?} is not carried into the form"
        );
        // A tampered hidden field is validated again on submit.
        client
            .execute(
                "document.querySelector('input[name=next]').value = arguments[0];",
                vec![serde_json::json!(tampered)],
            )
            .await
            .expect("tamper");
        client
            .find(Locator::Id("username"))
            .await
            .expect("username")
            .send_keys("alice")
            .await
            .expect("type");
        let password = client
            .find(Locator::Id("password"))
            .await
            .expect("password");
        password.send_keys("alice-pw").await.expect("type");
        password.send_keys(&enter()).await.expect("submit");
        let landed = wait_for_path(client, "/").await;
        assert_eq!(
            landed.host_str(),
            Some("127.0.0.1"),
            "{tampered:?} must not leave the gateway"
        );
        client
            .wait()
            .for_element(Locator::Id("greeting"))
            .await
            .expect("upstream start page");
        client.delete_all_cookies().await.expect("fresh visitor");
    }
    site.stop().await;
    browser.close().await;
}

/// What Chromium shows for a gateway error: `(<title>, <h1>, footnote, card radius, page text)`.
async fn error_page_in(
    client: &fantoccini::Client,
    url: &str,
) -> (String, String, String, String, String) {
    client.goto(url).await.expect("open");
    let title = client.title().await.expect("title");
    let h1 = client
        .find(Locator::Css("h1"))
        .await
        .expect("h1")
        .text()
        .await
        .expect("text");
    let footnote = client
        .find(Locator::Css(".footnote"))
        .await
        .expect("footnote")
        .text()
        .await
        .expect("text");
    // The card's rounded corner comes from the login page's stylesheet: it only applies when
    // the page's CSP (the login page's, by hash) lets that inline stylesheet in.
    let radius = client
        .find(Locator::Css("main"))
        .await
        .expect("main")
        .css_value("border-top-left-radius")
        .await
        .expect("css");
    let text = client
        .find(Locator::Css("body"))
        .await
        .expect("body")
        .text()
        .await
        .expect("text");
    (title, h1, footnote, radius, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_errors_and_unknown_endpoints_show_the_styled_pages() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let client = browser.client();
    let dead = support::upstream::dead_upstream();
    let mut down =
        support::Harness::start_with(&support::upstream::public_config(&dead.to_string(), ""))
            .await;
    let (title, h1, footnote, radius, text) = error_page_in(client, &down.url("/app/report")).await;
    assert_eq!(
        (title.as_str(), h1.as_str(), footnote.as_str()),
        ("Bad gateway", "Bad gateway", "Error 502")
    );
    assert_eq!(
        radius, "14px",
        "styled by the login page's stylesheet under its CSP"
    );
    assert!(text.contains("could not be reached"), "{text}");
    assert!(
        !text.contains(&dead.port().to_string()) && !text.contains("refused"),
        "no internal detail: {text}"
    );
    browser.screenshot("error-502").await;
    down.stop().await;

    let mut slow =
        support::Harness::start_with(&support::upstream::public_config("{upstream}", "")).await;
    let (title, h1, footnote, radius, _) = error_page_in(client, &slow.url("/slow/report")).await;
    assert_eq!(
        (title.as_str(), h1.as_str(), footnote.as_str()),
        ("Gateway timeout", "Gateway timeout", "Error 504")
    );
    assert_eq!(radius, "14px");
    let (title, h1, footnote, radius, _) =
        error_page_in(client, &slow.url("/_auth/no-such-page")).await;
    assert_eq!(
        (title.as_str(), h1.as_str(), footnote.as_str()),
        ("Page not found", "Page not found", "Error 404")
    );
    assert_eq!(radius, "14px");
    // The login page's style: the same card as the login form.
    client.goto(&slow.url("/_auth/login")).await.expect("open");
    let login_radius = client
        .find(Locator::Css("main"))
        .await
        .expect("main")
        .css_value("border-top-left-radius")
        .await
        .expect("css");
    assert_eq!(login_radius, radius);
    slow.stop().await;
    browser.close().await;
}

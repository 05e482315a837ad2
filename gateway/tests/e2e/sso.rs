//! Single sign-on (`type: oidc`) against a real OpenID provider: the certified Node.js
//! `oidc-provider` package from npm (see `support/oidc.rs`), the gateway started in-process from
//! a YAML file through the real loader, in front of a recording upstream (or the demo app, for
//! the browser).
//!
//! Covered: the whole flow in headless Chromium; the pre-login cookie and `state`; a replayed
//! callback; PKCE binding the code to the browser that started; the provider's errors; the
//! provider down at start and half-way (the password form keeps working); two providers side by
//! side; a wrong `nonce`, a token signed by a key the JWKS does not hold, an expired token, and
//! key rotation at the provider. The wrong nonce and the foreign key come from the real provider
//! with a fault switch of the test script (it rewrites the nonce it is asked for; it serves
//! another JWKS than the one it signs with), not from a fake.

use crate::browser;
use crate::oidc;
use crate::support;

use std::sync::Arc;
use std::time::Duration;

use fantoccini::Locator;
use gateway::metrics::Metrics;
use gateway::reload::{build_runtime, default_chain_builder};
use gateway::server::{Gateway, Running};
use oidc::{OidcProvider, ProviderSetup, provider_login};
use support::RecordingUpstream;

const CSRF_COOKIE_SSO: &str = "gw_session_csrf_sso";
const SESSION: &str = "gw_session";
const CSRF: &str = "gw_session_csrf";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

fn callback_uri(port: u16, entry: &str) -> String {
    format!("http://127.0.0.1:{port}/_auth/oidc/{entry}/callback")
}

/// One `oidc` chain entry of the site.
struct Sso<'a> {
    entry: &'a str,
    provider: &'a OidcProvider,
    /// Extra lines under `options:` (8 spaces of indent).
    options: &'a str,
}

/// The gateway, on a port chosen before its config (the provider must know its callback).
struct Site {
    running: Running,
    port: u16,
    dir: tempfile::TempDir,
}

impl Site {
    async fn start(
        port: u16,
        upstream: std::net::SocketAddr,
        sso: &[Sso<'_>],
        password: bool,
    ) -> Site {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut chain = String::new();
        if password {
            chain.push_str(
                r#"
  - name: staff
    type: static
    options:
      allow_plaintext: true
      users:
        carol: { password: "carol-pw", groups: [ops] }
"#,
            );
        }
        for s in sso {
            chain.push_str(&format!(
                r#"
  - name: {entry}
    type: oidc
    provision: update
    timeout: 10s
    options:
      issuer: "{issuer}"
      client_id: "{client_id}"
      client_secret: "{secret}"
      scopes: [openid, email, profile, groups]
      attributes: {{ username: preferred_username, email: email, name: name, groups: groups, extra: {{ roles: realm_access.roles }} }}
{options}
"#,
                entry = s.entry,
                issuer = s.provider.issuer,
                client_id = s.provider.setup.client_id,
                secret = s.provider.setup.client_secret,
                options = s.options,
            ));
        }
        let yaml = format!(
            r#"
server:
  public_url: "http://127.0.0.1:{port}"
upstream:
  url: "http://{upstream}"
  connect_timeout: 1s
  timeout: 5s
session:
  secure: false
  secret: "0123456789abcdef0123456789abcdef-sso"
  revalidate: 1s
login:
  title: "Sign in to Acme"
users_db: "sqlite://{db}"
audit: {{ format: json, to: "{audit}" }}
chain:{chain}
routes:
  - match: {{ path: /static/ }}
    access: public
  - match: {{ path: / }}
    access: authenticated
"#,
            db = dir.path().join("users.db").display(),
            audit = dir.path().join("audit.jsonl").display(),
        );
        let path = dir.path().join("gateway.yaml");
        std::fs::write(&path, yaml).expect("write config");
        // Literal secrets: the config must not be readable by others.
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .expect("chmod");
        let runtime = build_runtime(&path, 1, None, &default_chain_builder())
            .await
            .unwrap_or_else(|e| panic!("config builds: {e}"));
        let gateway = Gateway::new(runtime, Arc::new(Metrics::new()));
        let running = Running::start(gateway, ([127, 0, 0, 1], port).into(), None)
            .await
            .expect("gateway starts");
        Site { running, port, dir }
    }

    /// The audit events written so far whose `method` is `sso`, once `count` of them are there
    /// (the audit writer is a thread of its own).
    async fn sso_audit(&self, count: usize) -> Vec<serde_json::Value> {
        let path = self.dir.path().join("audit.jsonl");
        let mut events = Vec::new();
        for _ in 0..50 {
            events = std::fs::read_to_string(&path)
                .unwrap_or_default()
                .lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("a JSON audit line"))
                .filter(|e| e["method"] == "sso")
                .collect();
            if events.len() >= count {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        events
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    async fn store(&self) -> auth_backends::UserStore {
        auth_backends::UserStore::connect(&format!(
            "sqlite://{}",
            self.dir.path().join("users.db").display()
        ))
        .await
        .expect("user store")
    }

    /// `GET start`: the provider's authorization URL and the pre-login cookie (`name=value`).
    async fn start_login(&self, entry: &str, next: &str) -> (String, String) {
        let resp = http()
            .get(self.url(&format!("/_auth/oidc/{entry}/start")))
            .query(&[("next", next)])
            .send()
            .await
            .expect("start");
        assert_eq!(resp.status(), 303, "start redirects to the provider");
        let location = header(&resp, "location").expect("location");
        let cookie = set_cookie(&resp, CSRF_COOKIE_SSO).expect("the pre-login cookie is set");
        let set = set_cookie_line(&resp, CSRF_COOKIE_SSO).unwrap_or_default();
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Lax"),
            "{set}"
        );
        (location, format!("{CSRF_COOKIE_SSO}={cookie}"))
    }

    /// `GET callback` (the URL the provider sent the browser to) with `cookie`.
    async fn callback(&self, url: &str, cookie: Option<&str>) -> reqwest::Response {
        let mut request = http().get(url);
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        request.send().await.expect("callback")
    }

    /// A whole login of `account` through `entry`, returning the session cookie.
    async fn sign_in(&self, entry: &str, account: &str, next: &str) -> String {
        let (auth_url, cookie) = self.start_login(entry, next).await;
        let back = provider_login(&auth_url, account).await;
        let resp = self.callback(&back, Some(&cookie)).await;
        let status = resp.status();
        let location = header(&resp, "location");
        let session = set_cookie(&resp, SESSION);
        let body = resp.text().await.unwrap_or_default();
        assert_eq!(status, 303, "callback signs in: {body}");
        assert_eq!(location.as_deref(), Some(next));
        format!("{SESSION}={}", session.expect("a session cookie"))
    }

    async fn stop(self) {
        self.running.shutdown().await;
    }
}

fn header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn set_cookie_line(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_string)
}

/// The value `resp` sets for cookie `name` (`None` when absent or removed).
fn set_cookie(resp: &reqwest::Response, name: &str) -> Option<String> {
    let line = set_cookie_line(resp, name)?;
    let value = line.split(';').next()?.split_once('=')?.1.to_string();
    (!value.is_empty()).then_some(value)
}

/// The `csrf` hidden field of a page.
fn csrf_field(page: &str) -> String {
    page.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("csrf field")
        .to_string()
}

fn param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The upstream's view of `GET path` with `cookie`.
async fn as_seen(
    site: &Site,
    upstream: &RecordingUpstream,
    path: &str,
    cookie: &str,
) -> support::upstream::Recorded {
    let resp = http()
        .get(site.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .expect("app");
    assert_eq!(resp.status(), 200, "{path} with the session");
    upstream
        .seen()
        .into_iter()
        .rfind(|r| r.path == path)
        .expect("the upstream saw the request")
}

async fn provider(
    port: u16,
    entry: &str,
    change: impl FnOnce(&mut ProviderSetup),
) -> Option<OidcProvider> {
    let mut setup = ProviderSetup::new(&callback_uri(port, entry));
    change(&mut setup);
    OidcProvider::start_or_skip(setup).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_signs_in_at_the_provider_and_reaches_the_app() {
    let port = free_port();
    let Some(idp) = provider(port, "corp", |_| {}).await else {
        return;
    };
    let Some(browser) = browser::Browser::start().await else {
        return;
    };
    let (upstream_addr, upstream) =
        gateway::demo_upstream::spawn("127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("demo upstream");
    let site = Site::start(
        port,
        upstream_addr,
        &[Sso {
            entry: "corp",
            provider: &idp,
            options: "      label: Corp ID",
        }],
        true,
    )
    .await;
    let client = browser.client();

    client
        .goto(&site.url("/app/reports?year=2026"))
        .await
        .expect("open protected page");
    wait_for_path(client, "/_auth/login").await;
    // The provider's button beside the password form.
    let button = client
        .find(Locator::LinkText("Sign in with Corp ID"))
        .await
        .expect("the SSO button");
    client
        .find(Locator::Id("password"))
        .await
        .expect("the password form is still there");
    button.click().await.expect("click SSO");

    // The provider's own login page.
    let login = wait_for_element(client, "input[name=login]").await;
    assert!(
        client
            .current_url()
            .await
            .expect("url")
            .as_str()
            .starts_with(&idp.issuer),
        "at the provider"
    );
    login.send_keys("alice").await.expect("type login");
    client
        .find(Locator::Css("input[name=password]"))
        .await
        .expect("password field")
        .send_keys("whatever")
        .await
        .expect("type password");
    client
        .find(Locator::Css("button[type=submit]"))
        .await
        .expect("submit")
        .click()
        .await
        .expect("submit");

    // Back through the callback, at the page first asked for, as alice from the provider.
    let url = wait_for_path(client, "/app/reports").await;
    assert_eq!(url.query(), Some("year=2026"));
    assert_eq!(identity_cell(client, "x-remote-user").await, "alice");
    assert_eq!(
        identity_cell(client, "x-remote-email").await,
        "alice@example.org"
    );
    assert_eq!(identity_cell(client, "x-remote-backend").await, "corp");
    let groups = identity_cell(client, "x-remote-groups").await;
    assert!(
        groups.contains("staff") && groups.contains("readers"),
        "{groups}"
    );

    // Provisioned into the local store, attributes from nested claims included.
    let stored = site
        .store()
        .await
        .get_by_username("alice")
        .await
        .expect("store")
        .expect("alice provisioned");
    assert_eq!(stored.source, "corp");
    assert_eq!(
        stored.attributes.get("roles"),
        Some(&vec!["admin".to_string(), "user".to_string()])
    );

    browser.close().await;
    site.stop().await;
    upstream.abort();
}

async fn wait_for_path(client: &fantoccini::Client, path: &str) -> url::Url {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
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

async fn wait_for_element(client: &fantoccini::Client, css: &str) -> fantoccini::elements::Element {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(e) = client.find(Locator::Css(css)).await {
            return e;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {css} at {:?}",
            client.current_url().await.ok()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callback_needs_the_pre_login_cookie_its_state_and_a_fresh_code() {
    let port = free_port();
    let Some(idp) = provider(port, "corp", |_| {}).await else {
        return;
    };
    let upstream = RecordingUpstream::start().await;
    let site = Site::start(
        port,
        upstream.addr,
        &[Sso {
            entry: "corp",
            provider: &idp,
            options: "",
        }],
        true,
    )
    .await;

    let (auth_url, cookie) = site.start_login("corp", "/app/one").await;
    // The authorization request: code flow, PKCE S256, state and nonce.
    assert_eq!(param(&auth_url, "response_type").as_deref(), Some("code"));
    assert_eq!(
        param(&auth_url, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert!(param(&auth_url, "code_challenge").is_some_and(|c| c.len() == 43));
    assert!(param(&auth_url, "nonce").is_some_and(|n| n.len() >= 32));
    assert_eq!(
        param(&auth_url, "redirect_uri"),
        Some(callback_uri(port, "corp"))
    );
    let back = provider_login(&auth_url, "alice").await;
    let state = param(&back, "state").expect("state");

    // No pre-login cookie (another browser, or a forged link): refused, styled page.
    let resp = site.callback(&back, None).await;
    assert_eq!(resp.status(), 403);
    assert!(set_cookie(&resp, SESSION).is_none());
    let body = resp.text().await.expect("body");
    assert!(
        body.contains("Your sign-in attempt expired or was started elsewhere"),
        "{body}"
    );
    assert!(
        body.contains("<form"),
        "the login page, with its form: {body}"
    );

    // The cookie of another start: its state does not match.
    let (_, other_cookie) = site.start_login("corp", "/app/one").await;
    let resp = site.callback(&back, Some(&other_cookie)).await;
    assert_eq!(resp.status(), 403);

    // The right cookie with a state changed: refused too.
    let forged = back.replace(&state, "forged-state");
    let resp = site.callback(&forged, Some(&cookie)).await;
    assert_eq!(resp.status(), 403);

    // The genuine callback signs in and clears the pre-login cookie.
    let resp = site.callback(&back, Some(&cookie)).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(header(&resp, "location").as_deref(), Some("/app/one"));
    let session = set_cookie(&resp, SESSION).expect("session");
    assert!(set_cookie_line(&resp, CSRF_COOKIE_SSO).is_some_and(|l| l.contains("Max-Age=0")));
    let seen = as_seen(
        &site,
        &upstream,
        "/app/one",
        &format!("{SESSION}={session}"),
    )
    .await;
    assert_eq!(seen.get("x-remote-user").as_deref(), Some("alice"));
    assert_eq!(seen.get("x-remote-backend").as_deref(), Some("corp"));

    // Replayed (the same URL and the captured cookie): the provider refuses the used code.
    let resp = site.callback(&back, Some(&cookie)).await;
    assert_eq!(resp.status(), 401);
    assert!(set_cookie(&resp, SESSION).is_none());
    let body = resp.text().await.expect("body");
    assert!(body.contains("Sign-in with corp failed"), "{body}");

    // An error from the provider: a message, never its description.
    let (auth_url, cookie) = site.start_login("corp", "/").await;
    let state = param(&auth_url, "state").expect("state");
    let url = format!(
        "{}?error=access_denied&error_description=%3Cb%3Einternal%20detail%3C%2Fb%3E&state={state}",
        callback_uri(port, "corp")
    );
    let resp = site.callback(&url, Some(&cookie)).await;
    assert_eq!(resp.status(), 401);
    let body = resp.text().await.expect("body");
    assert!(
        body.contains("Sign-in with corp was cancelled or refused."),
        "{body}"
    );
    assert!(!body.contains("internal detail"), "{body}");

    // Every attempt is in the audit trail, through the same events as a password login.
    let events = site.sso_audit(6).await;
    let seen: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            let what = e["reason"].as_str().or(e["user"].as_str()).unwrap_or("?");
            (
                e["event"].as_str().unwrap_or("?").to_string(),
                what.to_string(),
            )
        })
        .collect();
    let expected = [
        ("login_failure", "sso_state"),
        ("login_failure", "sso_state"),
        ("login_failure", "sso_state"),
        ("login_success", "alice"),
        ("login_failure", "provider_refused"),
        ("login_failure", "provider_refused"),
    ]
    .map(|(a, b)| (a.to_string(), b.to_string()));
    assert_eq!(seen, expected, "{events:#?}");
    assert_eq!(events[3]["backend"], "corp");

    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pkce_binds_the_code_to_the_browser_that_started() {
    let port = free_port();
    let Some(idp) = provider(port, "corp", |_| {}).await else {
        return;
    };
    let upstream = RecordingUpstream::start().await;
    let site = Site::start(
        port,
        upstream.addr,
        &[Sso {
            entry: "corp",
            provider: &idp,
            options: "",
        }],
        false,
    )
    .await;
    // The victim's code, redeemed with the attacker's own pre-login cookie and state: state
    // and cookie pair, but the PKCE verifier derived from that cookie is not the one whose
    // challenge the provider holds for the code.
    let (victim_url, _) = site.start_login("corp", "/").await;
    let (attacker_url, attacker_cookie) = site.start_login("corp", "/").await;
    let back = provider_login(&victim_url, "alice").await;
    let code = param(&back, "code").expect("code");
    let attacker_state = param(&attacker_url, "state").expect("state");
    let url = format!(
        "{}?code={code}&state={attacker_state}",
        callback_uri(port, "corp")
    );
    let resp = site.callback(&url, Some(&attacker_cookie)).await;
    assert_eq!(
        resp.status(),
        401,
        "PKCE verification fails at the provider"
    );
    assert!(set_cookie(&resp, SESSION).is_none());
    // The control: a code brought back with the cookie of the browser that started signs in.
    site.sign_in("corp", "alice", "/").await;
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_page_offers_each_provider_and_the_form_only_with_a_password_entry() {
    let port = free_port();
    let Some(corp) = provider(port, "corp", |_| {}).await else {
        return;
    };
    let Some(partner) = provider(port, "partner", |s| {
        s.client_id = "gateway-partner".into();
    })
    .await
    else {
        return;
    };
    let upstream = RecordingUpstream::start().await;
    let site = Site::start(
        port,
        upstream.addr,
        &[
            Sso {
                entry: "corp",
                provider: &corp,
                options: "      label: Corp ID",
            },
            Sso {
                entry: "partner",
                provider: &partner,
                options: "      label: \"Partner <SSO>\"",
            },
        ],
        true,
    )
    .await;
    let page = http()
        .get(site.url("/_auth/login?next=%2Freports%3Fq%3D1"))
        .send()
        .await
        .expect("login page")
        .text()
        .await
        .expect("body");
    assert!(
        page.contains("href=\"/_auth/oidc/corp/start?next=%2Freports%3Fq%3D1\""),
        "{page}"
    );
    assert!(page.contains("Sign in with Corp ID"), "{page}");
    assert!(
        page.contains("Sign in with Partner &lt;SSO&gt;"),
        "escaped: {page}"
    );
    assert!(page.contains("name=\"password\""), "{page}");

    // Two providers side by side: each user lands with their own entry.
    let a = site.sign_in("corp", "alice", "/a").await;
    let b = site.sign_in("partner", "bob", "/b").await;
    let seen = as_seen(&site, &upstream, "/a", &a).await;
    assert_eq!(seen.get("x-remote-user").as_deref(), Some("alice"));
    assert_eq!(seen.get("x-remote-backend").as_deref(), Some("corp"));
    let seen = as_seen(&site, &upstream, "/b", &b).await;
    assert_eq!(seen.get("x-remote-user").as_deref(), Some("bob"));
    assert_eq!(seen.get("x-remote-backend").as_deref(), Some("partner"));
    // Logout ends the gateway session and offers the provider's RP-initiated logout.
    let confirm = http()
        .get(site.url("/_auth/logout"))
        .header("cookie", &a)
        .send()
        .await
        .expect("logout form")
        .text()
        .await
        .expect("body");
    let token = csrf_field(&confirm);
    let resp = http()
        .post(site.url("/_auth/logout"))
        .header("cookie", &a)
        .header("origin", format!("http://127.0.0.1:{}", site.port))
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .expect("logout");
    assert_eq!(resp.status(), 200);
    let body = resp.text().await.expect("body");
    assert!(
        body.contains(&format!(
            "href=\"{}/session/end?client_id=gateway\"",
            corp.issuer
        )),
        "{body}"
    );
    assert!(body.contains("Also sign out of Corp ID"), "{body}");
    let resp = http()
        .get(site.url("/a"))
        .header("cookie", &a)
        .send()
        .await
        .expect("after logout");
    assert_ne!(resp.status(), 200, "the session has ended");

    // A code from one provider is not redeemed through the other's callback.
    let (auth_url, cookie) = site.start_login("corp", "/").await;
    let back = provider_login(&auth_url, "alice").await;
    let crossed = back.replace("/oidc/corp/", "/oidc/partner/");
    let resp = site.callback(&crossed, Some(&cookie)).await;
    assert_eq!(resp.status(), 403, "the pre-login cookie names corp");
    site.stop().await;

    // Only SSO entries: only the buttons.
    let port = free_port();
    let Some(only) = provider(port, "corp", |_| {}).await else {
        return;
    };
    let site = Site::start(
        port,
        upstream.addr,
        &[Sso {
            entry: "corp",
            provider: &only,
            options: "",
        }],
        false,
    )
    .await;
    let page = http()
        .get(site.url("/_auth/login"))
        .send()
        .await
        .expect("login page")
        .text()
        .await
        .expect("body");
    assert!(page.contains("Sign in with corp"), "{page}");
    assert!(!page.contains("name=\"password\""), "{page}");
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_down_at_start_or_half_way_shows_a_message_and_the_password_form_works() {
    let port = free_port();
    let Some(mut idp) = provider(port, "corp", |_| {}).await else {
        return;
    };
    let upstream = RecordingUpstream::start().await;
    let site = Site::start(
        port,
        upstream.addr,
        &[Sso {
            entry: "corp",
            provider: &idp,
            options: "      timeout: 2s",
        }],
        true,
    )
    .await;

    // Half-way: discovered and sent to the provider, which then goes away.
    let (auth_url, cookie) = site.start_login("corp", "/x").await;
    let back = provider_login(&auth_url, "alice").await;
    idp.stop().await;
    let resp = site.callback(&back, Some(&cookie)).await;
    assert_eq!(resp.status(), 503);
    let body = resp.text().await.expect("body");
    assert!(
        body.contains("Sign-in with corp is unavailable right now"),
        "{body}"
    );
    assert!(body.contains("name=\"password\""), "{body}");
    site.stop().await;

    // At start: a gateway that never reached the provider.
    let port = free_port();
    let site = Site::start(
        port,
        upstream.addr,
        &[Sso {
            entry: "corp",
            provider: &idp,
            options: "      timeout: 2s",
        }],
        true,
    )
    .await;
    let resp = http()
        .get(site.url("/_auth/oidc/corp/start?next=%2Fx"))
        .send()
        .await
        .expect("start");
    assert_eq!(resp.status(), 503);
    assert!(set_cookie(&resp, CSRF_COOKIE_SSO).is_none());
    let csrf = set_cookie(&resp, CSRF).expect("the form's CSRF cookie");
    let body = resp.text().await.expect("body");
    assert!(
        body.contains("Sign-in with corp is unavailable right now"),
        "{body}"
    );
    // The password form on that very page still signs carol in.
    let token = csrf_field(&body);
    let resp = http()
        .post(site.url("/_auth/login"))
        .header("cookie", format!("{CSRF}={csrf}"))
        .header("origin", format!("http://127.0.0.1:{port}"))
        .form(&[
            ("username", "carol"),
            ("password", "carol-pw"),
            ("csrf", token.as_str()),
            ("next", "/x"),
        ])
        .send()
        .await
        .expect("login");
    assert_eq!(resp.status(), 303);
    assert_eq!(header(&resp, "location").as_deref(), Some("/x"));
    site.stop().await;
}

/// A provider set up by `change` signs alice in and issues a code; the gateway must refuse what
/// it brings back (401, no session, our own message). `false` when the provider is unavailable
/// here (the test skips).
async fn assert_id_token_refused(
    upstream: &RecordingUpstream,
    change: impl FnOnce(&mut ProviderSetup),
    options: &str,
    what: &str,
) -> bool {
    let port = free_port();
    let Some(idp) = provider(port, "corp", change).await else {
        return false;
    };
    let site = Site::start(
        port,
        upstream.addr,
        &[Sso {
            entry: "corp",
            provider: &idp,
            options,
        }],
        false,
    )
    .await;
    // Past `min_refresh` (100ms in the JWKS case): the gateway may read the keys again.
    let (status, body, session) =
        refused_sign_in(&site, "corp", "alice", Duration::from_millis(150)).await;
    assert_eq!(status, 401, "{what}: {body}");
    assert!(!session, "{what}: no session");
    assert!(body.contains("Sign-in with corp failed"), "{what}: {body}");
    site.stop().await;
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn id_tokens_failing_a_check_are_refused() {
    let upstream = RecordingUpstream::start().await;
    // A provider that puts another nonce in the ID token than the one asked for.
    if !assert_id_token_refused(
        &upstream,
        |s| s.faults.push("tamper_nonce"),
        "",
        "wrong nonce",
    )
    .await
    {
        return;
    }
    // A provider whose JWKS does not hold the key it signs with.
    assert_id_token_refused(
        &upstream,
        |s| s.faults.push("publish_other_keys"),
        "      min_refresh: 100ms",
        "a key not in the JWKS, even after reading it again",
    )
    .await;
    // An expired ID token: the provider's clock is two hours behind, so the one-hour token it
    // mints has expired well beyond the leeway.
    assert_id_token_refused(&upstream, |s| s.clock_behind = 7200, "", "expired").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_at_the_provider_is_followed() {
    let port = free_port();
    let Some(mut idp) = provider(port, "corp", |_| {}).await else {
        return;
    };
    let upstream = RecordingUpstream::start().await;
    let site = Site::start(
        port,
        upstream.addr,
        &[Sso {
            entry: "corp",
            provider: &idp,
            options: "      min_refresh: 100ms",
        }],
        false,
    )
    .await;
    let first = site.sign_in("corp", "alice", "/one").await;
    // New signing key, old one gone; the gateway still holds the old key set.
    idp.restart(|s| s.key_id = Some("key-2".into())).await;
    let second = site.sign_in("corp", "alice", "/two").await;
    assert_ne!(first, second);
    let seen = as_seen(&site, &upstream, "/two", &second).await;
    assert_eq!(seen.get("x-remote-user").as_deref(), Some("alice"));
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_restored_from_the_store_and_end_when_the_user_is_disabled() {
    let port = free_port();
    let Some(idp) = provider(port, "corp", |_| {}).await else {
        return;
    };
    let upstream = RecordingUpstream::start().await;
    let site = Site::start(
        port,
        upstream.addr,
        &[Sso {
            entry: "corp",
            provider: &idp,
            options: "",
        }],
        false,
    )
    .await;
    let session = site.sign_in("corp", "alice", "/").await;
    // Past `session.revalidate`: the user is read back through the entry's `get_user`, from the
    // local store the login provisioned.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let seen = as_seen(&site, &upstream, "/after", &session).await;
    assert_eq!(seen.get("x-remote-user").as_deref(), Some("alice"));
    assert_eq!(seen.get("x-remote-backend").as_deref(), Some("corp"));
    let groups = seen.get("x-remote-groups").unwrap_or_default();
    assert!(groups.contains("staff"), "{groups}");

    site.store().await.disable("alice").await.expect("disable");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let resp = http()
        .get(site.url("/after"))
        .header("cookie", &session)
        .send()
        .await
        .expect("request");
    assert_ne!(resp.status(), 200, "a disabled user's session ends");
    site.stop().await;
}

/// Signs `account` in at the provider, which must issue a code, and brings it back after
/// `pause`: the gateway's status, page, and whether it set a session.
async fn refused_sign_in(
    site: &Site,
    entry: &str,
    account: &str,
    pause: Duration,
) -> (u16, String, bool) {
    let (auth_url, cookie) = site.start_login(entry, "/").await;
    let back = provider_login(&auth_url, account).await;
    assert!(
        param(&back, "code").is_some(),
        "the provider issued a code: {back}"
    );
    tokio::time::sleep(pause).await;
    let resp = site.callback(&back, Some(&cookie)).await;
    let status = resp.status().as_u16();
    let session = set_cookie(&resp, SESSION).is_some();
    (status, resp.text().await.unwrap_or_default(), session)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_groups_and_domains_admit_only_the_listed_users() {
    // alice: groups [staff, readers], alice@example.org; bob: [builders], bob@partner.example.
    for (options, admitted, refused) in [
        ("      allowed_groups: [staff, auditors]", "alice", "bob"),
        ("      allowed_domains: [partner.example]", "bob", "alice"),
    ] {
        let port = free_port();
        let Some(idp) = provider(port, "corp", |_| {}).await else {
            return;
        };
        let upstream = RecordingUpstream::start().await;
        let site = Site::start(
            port,
            upstream.addr,
            &[Sso {
                entry: "corp",
                provider: &idp,
                options,
            }],
            false,
        )
        .await;
        let (status, body, session) = refused_sign_in(&site, "corp", refused, Duration::ZERO).await;
        assert_eq!(status, 403, "{options}: {refused} is refused: {body}");
        assert!(!session, "{options}: no session for {refused}");
        assert!(
            body.contains("Your account is not allowed to sign in here."),
            "{body}"
        );
        assert!(
            site.store()
                .await
                .get_by_username(refused)
                .await
                .expect("store")
                .is_none(),
            "{options}: a refused user is not provisioned"
        );
        let cookie = site.sign_in("corp", admitted, "/").await;
        let seen = as_seen(&site, &upstream, "/", &cookie).await;
        assert_eq!(seen.get("x-remote-user").as_deref(), Some(admitted));
        let events = site.sso_audit(2).await;
        assert_eq!(events[0]["reason"], "denied", "{events:#?}");
        assert_eq!(events[1]["event"], "login_success", "{events:#?}");
        site.stop().await;
    }
}

//! Single sign-on (`type: oidc`) against a real OpenID provider: the certified Node.js
//! `oidc-provider` package from npm (see `support/oidc.rs`), the gateway started in-process from
//! a YAML file through the real loader, in front of a recording upstream (or the demo app, for
//! the browser).
//!
//! Covered: the whole flow in headless Chromium; the pre-login cookie and `state`; a replayed
//! callback; PKCE binding the code to the browser that started; the provider's errors; the
//! provider down at start and half-way (the password form keeps working); two providers side by
//! side; a wrong `nonce`, a token signed by a key the JWKS does not hold, an expired token, and
//! key rotation at the provider; a callback naming another issuer (RFC 9207); claims only at the
//! userinfo endpoint; refresh at revalidation (rotation, new claims, a revoked grant, a user no
//! longer allowed, the provider down under both `on_error`s); RP-initiated logout accepted by the
//! provider. The wrong nonce and the foreign key come from the real provider
//! with a fault switch of the test script (it rewrites the nonce it is asked for; it serves
//! another JWKS than the one it signs with), not from a fake.

use crate::browser;
use crate::oidc;
use crate::support;

use std::sync::Arc;
use std::time::Duration;

use fantoccini::Locator;
use gateway::__test::Metrics;
use gateway::__test::build_runtime;
use gateway::__test::{Gateway, Running};
use gateway::launch::default_chain_builder;
use oidc::{OidcProvider, ProviderAgent, ProviderSetup, provider_login};
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
    /// Extra lines under `options:` (6 spaces of indent).
    options: &'a str,
    /// Extra lines of the entry itself (4 spaces of indent: `on_error`...).
    policy: &'a str,
}

impl<'a> Sso<'a> {
    fn new(entry: &'a str, provider: &'a OidcProvider, options: &'a str) -> Sso<'a> {
        Sso {
            entry,
            provider,
            options,
            policy: "",
        }
    }
}

/// The gateway, on a port chosen before its config (the provider must know its callback).
struct Site {
    running: Running,
    port: u16,
    dir: tempfile::TempDir,
}

impl Site {
    /// The site with one `oidc` entry, `corp` at `provider` with extra `options`, after a
    /// password entry when `password`.
    async fn single(
        port: u16,
        upstream: std::net::SocketAddr,
        provider: &OidcProvider,
        options: &str,
        password: bool,
    ) -> Site {
        Site::start(
            port,
            upstream,
            &[Sso::new("corp", provider, options)],
            password,
            "",
        )
        .await
    }

    /// The site with `sso` entries after a password entry when `password`, and `session` lines
    /// (2 spaces of indent) added to its `session:` block.
    async fn start(
        port: u16,
        upstream: std::net::SocketAddr,
        sso: &[Sso<'_>],
        password: bool,
        session: &str,
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
{policy}
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
                policy = s.policy,
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
{session}
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
        self.audit(count, |e| e["method"] == "sso").await
    }

    /// The audit events written so far that `keep`, once `count` of them are there.
    async fn audit(
        &self,
        count: usize,
        keep: impl Fn(&serde_json::Value) -> bool,
    ) -> Vec<serde_json::Value> {
        let path = self.dir.path().join("audit.jsonl");
        let mut events = Vec::new();
        for _ in 0..50 {
            events = std::fs::read_to_string(&path)
                .unwrap_or_default()
                .lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("a JSON audit line"))
                .filter(|e| keep(e))
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
        self.sign_in_as(&mut ProviderAgent::default(), entry, account, next)
            .await
    }

    /// As [`sign_in`](Self::sign_in), in the browser `agent` (its provider session kept).
    async fn sign_in_as(
        &self,
        agent: &mut ProviderAgent,
        entry: &str,
        account: &str,
        next: &str,
    ) -> String {
        let (auth_url, cookie) = self.start_login(entry, next).await;
        let back = agent.login(&auth_url, account).await;
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
        gateway::__test::demo_upstream::spawn("127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("demo upstream");
    let site = Site::single(port, upstream_addr, &idp, "      label: Corp ID", true).await;
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
    let site = Site::single(port, upstream.addr, &idp, "", true).await;

    let (auth_url, cookie) = site.start_login("corp", "/app/one").await;
    // The authorization request: code flow, PKCE S256, state and nonce.
    assert_eq!(param(&auth_url, "response_type").as_deref(), Some("code"));
    assert_eq!(
        param(&auth_url, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert!(param(&auth_url, "code_challenge").is_some_and(|c| c.len() == 43));
    assert!(param(&auth_url, "nonce").is_some_and(|n| n.len() >= 32));
    // `offline_access` only when the operator lists it in `scopes`.
    assert_eq!(
        param(&auth_url, "scope").as_deref(),
        Some("openid email profile groups")
    );
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
    let site = Site::single(port, upstream.addr, &idp, "", false).await;
    // The victim's code, redeemed with the attacker's own pre-login cookie and state: state
    // and cookie pair, but the PKCE verifier derived from that cookie is not the one whose
    // challenge the provider holds for the code.
    let (victim_url, _) = site.start_login("corp", "/").await;
    let (attacker_url, attacker_cookie) = site.start_login("corp", "/").await;
    let back = provider_login(&victim_url, "alice").await;
    let code = param(&back, "code").expect("code");
    let attacker_state = param(&attacker_url, "state").expect("state");
    let url = format!(
        "{}?code={code}&state={attacker_state}&iss={}",
        callback_uri(port, "corp"),
        idp.issuer
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
            Sso::new("corp", &corp, "      label: Corp ID"),
            Sso::new("partner", &partner, "      label: \"Partner <SSO>\""),
        ],
        true,
        "",
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
    // Logout ends the gateway session and goes on to the provider's RP-initiated logout.
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
    assert_eq!(resp.status(), 303);
    let location = header(&resp, "location").unwrap_or_default();
    assert!(
        location.starts_with(&format!("{}/session/end?client_id=gateway&", corp.issuer)),
        "{location}"
    );
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
    let site = Site::single(port, upstream.addr, &only, "", false).await;
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
    let site = Site::single(port, upstream.addr, &idp, "      timeout: 2s", true).await;

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
    let site = Site::single(port, upstream.addr, &idp, "      timeout: 2s", true).await;
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
    let site = Site::single(port, upstream.addr, &idp, options, false).await;
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
    let site = Site::single(port, upstream.addr, &idp, "      min_refresh: 100ms", false).await;
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
    let site = Site::single(port, upstream.addr, &idp, "", false).await;
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
        let site = Site::single(port, upstream.addr, &idp, options, false).await;
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

/// `GET path` with `cookie`: the status, and what the upstream saw when it was let through.
async fn visit(
    site: &Site,
    upstream: &RecordingUpstream,
    path: &str,
    cookie: &str,
) -> (u16, Option<support::upstream::Recorded>) {
    let resp = http()
        .get(site.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    let seen = upstream.seen().into_iter().rfind(|r| r.path == path);
    (status, seen.filter(|_| status == 200))
}

/// Past the test sites' `session.revalidate` (1s).
async fn past_revalidation() {
    tokio::time::sleep(Duration::from_millis(1200)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revalidation_refreshes_rotates_the_token_and_takes_the_new_claims() {
    let port = free_port();
    let Some(idp) = provider(port, "corp", |s| s.refresh_tokens = true).await else {
        return;
    };
    let upstream = RecordingUpstream::start().await;
    let site = Site::single(port, upstream.addr, &idp, "", false).await;
    let session = site.sign_in("corp", "alice", "/").await;
    assert_eq!(idp.refreshes().await, 0);

    // The claims change at the provider; the next revalidation refreshes and takes them.
    idp.set_claims(
        "alice",
        serde_json::json!({
            "email": "alice@example.org",
            "name": "Alice Liddell",
            "preferred_username": "alice",
            "groups": ["staff", "auditors"],
        }),
    )
    .await;
    past_revalidation().await;
    let seen = as_seen(&site, &upstream, "/one", &session).await;
    assert_eq!(
        idp.refreshes().await,
        1,
        "revalidation refreshed at the provider"
    );
    let groups = seen.get("x-remote-groups").unwrap_or_default();
    assert!(
        groups.contains("auditors"),
        "the refreshed ID token's groups: {groups}"
    );
    let stored = site
        .store()
        .await
        .get_by_username("alice")
        .await
        .expect("store")
        .expect("alice");
    assert!(
        stored.groups.iter().any(|g| g == "auditors"),
        "the provisioned user is updated: {:?}",
        stored.groups
    );

    // The provider rotates refresh tokens and revokes the grant when a used one comes back:
    // a second refresh works only with the rotated token the session kept.
    past_revalidation().await;
    let seen = as_seen(&site, &upstream, "/two", &session).await;
    assert_eq!(seen.get("x-remote-user").as_deref(), Some("alice"));
    assert_eq!(idp.refreshes().await, 2);
    // Within `session.revalidate`: no call to the provider.
    as_seen(&site, &upstream, "/three", &session).await;
    assert_eq!(idp.refreshes().await, 2);
    // A page's requests pass `session.revalidate` together: they share one refresh (the
    // provider would refuse the token used twice and revoke the grant).
    past_revalidation().await;
    let statuses: Vec<u16> = futures_util::future::join_all((0..6).map(|i| {
        visit(
            &site,
            &upstream,
            if i == 0 { "/page" } else { "/asset" },
            &session,
        )
    }))
    .await
    .into_iter()
    .map(|(status, _)| status)
    .collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(idp.refreshes().await, 3, "one refresh for the six requests");
    as_seen(&site, &upstream, "/four", &session).await;
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_cookie_store_the_tokens_ride_in_the_encrypted_cookie() {
    let port = free_port();
    let Some(idp) = provider(port, "corp", |s| s.refresh_tokens = true).await else {
        return;
    };
    let upstream = RecordingUpstream::start().await;
    let site = Site::start(
        port,
        upstream.addr,
        &[Sso::new("corp", &idp, "")],
        false,
        "  store: cookie",
    )
    .await;
    let mut cookie = site.sign_in("corp", "alice", "/").await;
    // Each refresh reissues the cookie with the rotated token: the next refresh needs it.
    for round in 1..=2 {
        past_revalidation().await;
        let resp = http()
            .get(site.url("/x"))
            .header("cookie", &cookie)
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), 200, "round {round}");
        let value = set_cookie(&resp, SESSION).expect("the cookie is reissued");
        cookie = format!("{SESSION}={value}");
        assert_eq!(idp.refreshes().await, round);
    }
    let seen = as_seen(&site, &upstream, "/y", &cookie).await;
    assert_eq!(seen.get("x-remote-user").as_deref(), Some("alice"));
    // The provider's logout still gets the gateway's identity.
    let confirm = http()
        .get(site.url("/_auth/logout"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("logout form")
        .text()
        .await
        .expect("body");
    let token = csrf_field(&confirm);
    let resp = http()
        .post(site.url("/_auth/logout"))
        .header("cookie", &cookie)
        .header("origin", site.url(""))
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .expect("logout");
    assert_eq!(resp.status(), 303);
    let location = header(&resp, "location").unwrap_or_default();
    assert_eq!(param(&location, "client_id").as_deref(), Some("gateway"));
    let (status, _) = visit(&site, &upstream, "/z", &cookie).await;
    assert_ne!(status, 200, "the cookie is revoked");
    eprintln!(
        "cookie store: session cookie {} bytes, id_token_hint kept: {}",
        cookie.len(),
        param(&location, "id_token_hint").is_some()
    );
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_revoked_or_a_user_no_longer_allowed_ends_the_session_at_revalidation() {
    let port = free_port();
    let Some(idp) = provider(port, "corp", |s| s.refresh_tokens = true).await else {
        return;
    };
    let upstream = RecordingUpstream::start().await;
    let site = Site::single(
        port,
        upstream.addr,
        &idp,
        "      allowed_groups: [staff]",
        false,
    )
    .await;
    let alice = site.sign_in("corp", "alice", "/").await;
    let carol_claims = serde_json::json!({
        "email": "carol@example.org",
        "preferred_username": "carol",
        "groups": ["staff"],
    });
    idp.set_claims("carol", carol_claims).await;
    let carol = site.sign_in("corp", "carol", "/").await;
    as_seen(&site, &upstream, "/", &alice).await;
    as_seen(&site, &upstream, "/", &carol).await;

    // alice's grant is revoked at the provider; carol leaves the allowed group there.
    idp.revoke_grants("alice").await;
    idp.set_claims(
        "carol",
        serde_json::json!({
            "email": "carol@example.org",
            "preferred_username": "carol",
            "groups": ["visitors"],
        }),
    )
    .await;
    past_revalidation().await;
    for (name, cookie) in [("alice", &alice), ("carol", &carol)] {
        let resp = http()
            .get(site.url("/after"))
            .header("cookie", cookie)
            .send()
            .await
            .expect("request");
        assert_ne!(resp.status(), 200, "{name}'s session has ended");
        assert!(
            set_cookie_line(&resp, SESSION).is_some_and(|l| l.contains("Max-Age=0")),
            "{name}: the session cookie is cleared"
        );
        // And stays ended.
        let (status, _) = visit(&site, &upstream, "/again", cookie).await;
        assert_ne!(status, 200, "{name}");
    }
    let ended = site.audit(2, |e| e["event"] == "session_ended").await;
    let reasons: Vec<(&str, &str)> = ended
        .iter()
        .map(|e| {
            (
                e["user"].as_str().unwrap_or("?"),
                e["reason"].as_str().unwrap_or("?"),
            )
        })
        .collect();
    assert_eq!(
        reasons,
        [("alice", "refresh_refused"), ("carol", "not_allowed")],
        "{ended:#?}"
    );
    assert!(ended.iter().all(|e| e["backend"] == "corp"));
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_down_at_revalidation_follows_on_error() {
    let (deny_port, next_port) = (free_port(), free_port());
    let Some(mut idp) = provider(deny_port, "corp", |s| {
        s.refresh_tokens = true;
        s.redirect_uris.push(callback_uri(next_port, "corp"));
    })
    .await
    else {
        return;
    };
    let upstream = RecordingUpstream::start().await;
    let deny = Site::single(deny_port, upstream.addr, &idp, "      timeout: 2s", false).await;
    let next = Site::start(
        next_port,
        upstream.addr,
        &[Sso {
            policy: "    on_error: next",
            ..Sso::new("corp", &idp, "      timeout: 2s")
        }],
        false,
        "",
    )
    .await;
    let denied = deny.sign_in("corp", "alice", "/").await;
    let kept = next.sign_in("corp", "alice", "/").await;
    idp.stop().await;
    past_revalidation().await;

    // `on_error: deny` (the default): 503, and the session is not ended.
    let resp = http()
        .get(deny.url("/x"))
        .header("cookie", &denied)
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 503);
    assert!(
        set_cookie_line(&resp, SESSION).is_none(),
        "the session cookie is left alone"
    );
    // `on_error: next`: restored from the local user store, as without a refresh token.
    let seen = as_seen(&next, &upstream, "/y", &kept).await;
    assert_eq!(seen.get("x-remote-user").as_deref(), Some("alice"));
    // Still bound by the store: a user disabled there is signed out.
    next.store().await.disable("alice").await.expect("disable");
    past_revalidation().await;
    let (status, _) = visit(&next, &upstream, "/z", &kept).await;
    assert_ne!(status, 200, "a disabled user's session ends");
    deny.stop().await;
    next.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_ends_the_session_here_then_at_the_provider() {
    let port = free_port();
    let Some(idp) = provider(port, "corp", |s| s.refresh_tokens = true).await else {
        return;
    };
    let upstream = RecordingUpstream::start().await;
    let site = Site::single(port, upstream.addr, &idp, "", false).await;
    let mut browser = ProviderAgent::default();
    let session = site.sign_in_as(&mut browser, "corp", "alice", "/").await;
    as_seen(&site, &upstream, "/", &session).await;

    let confirm = http()
        .get(site.url("/_auth/logout"))
        .header("cookie", &session)
        .send()
        .await
        .expect("logout form")
        .text()
        .await
        .expect("body");
    let token = csrf_field(&confirm);
    let resp = http()
        .post(site.url("/_auth/logout"))
        .header("cookie", &session)
        .header("origin", site.url(""))
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .expect("logout");
    assert_eq!(resp.status(), 303);
    assert!(
        set_cookie_line(&resp, SESSION).is_some_and(|l| l.contains("Max-Age=0")),
        "the session cookie is cleared"
    );
    let end_session = header(&resp, "location").expect("location");
    assert!(
        end_session.starts_with(&format!("{}/session/end?", idp.issuer)),
        "{end_session}"
    );
    assert_eq!(param(&end_session, "client_id").as_deref(), Some("gateway"));
    let login_page = site.url("/_auth/login");
    assert_eq!(
        param(&end_session, "post_logout_redirect_uri").as_deref(),
        Some(login_page.as_str())
    );
    let hint = param(&end_session, "id_token_hint").expect("id_token_hint");
    assert_eq!(hint.split('.').count(), 3, "the session's ID token");
    // The gateway's session is gone before the browser reaches the provider.
    let (status, _) = visit(&site, &upstream, "/after", &session).await;
    assert_ne!(status, 200);

    // Before: the provider's session signs the browser in without asking.
    let (auth_url, _) = site.start_login("corp", "/").await;
    let hop = browser.first_hop(&auth_url).await;
    assert!(
        hop.starts_with(&format!("{}/auth/", idp.issuer)) || hop.contains("/oidc/corp/callback"),
        "{hop}"
    );
    // The provider accepts the hint and the return address, and ends its session.
    let back = browser.confirm_logout(&end_session).await;
    assert_eq!(back, login_page, "back at the gateway's login page");
    let (auth_url, _) = site.start_login("corp", "/").await;
    let mut hop = browser.first_hop(&auth_url).await;
    if hop.starts_with(&format!("{}/auth/", idp.issuer)) {
        hop = browser.first_hop(&hop).await;
    }
    assert!(
        hop.starts_with(&format!("{}/interaction/", idp.issuer)),
        "the provider asks to sign in again: {hop}"
    );
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_only_in_userinfo_reach_the_headers_with_userinfo_on() {
    let (off_port, on_port) = (free_port(), free_port());
    let Some(idp) = provider(off_port, "corp", |s| {
        s.userinfo_only.push("groups");
        s.redirect_uris.push(callback_uri(on_port, "corp"));
    })
    .await
    else {
        return;
    };
    let upstream = RecordingUpstream::start().await;
    let off = Site::single(off_port, upstream.addr, &idp, "", false).await;
    let on = Site::single(on_port, upstream.addr, &idp, "      userinfo: true", false).await;
    let cookie = off.sign_in("corp", "alice", "/").await;
    let seen = as_seen(&off, &upstream, "/off", &cookie).await;
    let groups = seen.get("x-remote-groups").unwrap_or_default();
    assert!(!groups.contains("staff"), "not in the ID token: {groups:?}");
    let cookie = on.sign_in("corp", "alice", "/").await;
    let seen = as_seen(&on, &upstream, "/on", &cookie).await;
    let groups = seen.get("x-remote-groups").unwrap_or_default();
    assert!(
        groups.contains("staff") && groups.contains("readers"),
        "from userinfo: {groups:?}"
    );
    assert_eq!(seen.get("x-remote-user").as_deref(), Some("alice"));
    off.stop().await;
    on.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_naming_another_issuer_or_none_is_refused() {
    let port = free_port();
    let Some(idp) = provider(port, "corp", |_| {}).await else {
        return;
    };
    let upstream = RecordingUpstream::start().await;
    let site = Site::single(port, upstream.addr, &idp, "", false).await;
    let (auth_url, cookie) = site.start_login("corp", "/").await;
    let back = provider_login(&auth_url, "alice").await;
    assert_eq!(param(&back, "iss").as_deref(), Some(idp.issuer.as_str()));
    let mut url = url::Url::parse(&back).expect("callback url");
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "iss")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    for iss in [Some("http://idp.evil.example"), Some(""), None] {
        {
            let mut query = url.query_pairs_mut();
            query.clear();
            for (k, v) in &pairs {
                query.append_pair(k, v);
            }
            if let Some(iss) = iss {
                query.append_pair("iss", iss);
            }
        }
        let resp = site.callback(url.as_str(), Some(&cookie)).await;
        assert_eq!(resp.status(), 401, "iss {iss:?}");
        assert!(
            set_cookie(&resp, SESSION).is_none(),
            "iss {iss:?}: no session"
        );
    }
    // Refused before the code was redeemed: the genuine callback still signs in with it.
    let resp = site.callback(&back, Some(&cookie)).await;
    assert_eq!(resp.status(), 303);
    assert!(set_cookie(&resp, SESSION).is_some());
    site.stop().await;
}

/// A server-side session store the tests read and write directly.
#[derive(Clone, Copy, Debug)]
enum AtRest {
    Postgres,
    Redis,
}

impl AtRest {
    fn url(self) -> String {
        match self {
            AtRest::Postgres => std::env::var("TEST_POSTGRES_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into()),
            AtRest::Redis => {
                std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
            }
        }
    }

    /// Whether the service answers (a panic under `CI=true` when it does not).
    fn up(self) -> bool {
        let url = url::Url::parse(&self.url()).expect("service url");
        let addr = format!(
            "{}:{}",
            url.host_str().unwrap_or("127.0.0.1"),
            url.port_or_known_default()
                .unwrap_or(if matches!(self, AtRest::Redis) {
                    6379
                } else {
                    5432
                })
        );
        let up = addr
            .parse()
            .ok()
            .and_then(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(2)).ok())
            .is_some();
        if !up {
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "{self:?} is not reachable on {addr} and CI=true"
            );
            eprintln!("!!! SKIPPED: {self:?} is not reachable on {addr}");
        }
        up
    }

    /// The stored record of the session whose cookie (`name=value`) is `cookie`.
    async fn read(self, cookie: &str) -> Option<String> {
        let key = storage_key(cookie);
        match self {
            AtRest::Postgres => {
                let pool = sqlx::PgPool::connect(&self.url()).await.expect("postgres");
                let row: Option<(String,)> =
                    sqlx::query_as("SELECT data FROM gateway_sessions WHERE id = $1")
                        .bind(&key)
                        .fetch_optional(&pool)
                        .await
                        .expect("select");
                pool.close().await;
                row.map(|(data,)| data)
            }
            AtRest::Redis => {
                let mut conn = redis_conn(&self.url()).await;
                ::redis::cmd("GET")
                    .arg(format!("gateway:session:{key}"))
                    .query_async(&mut conn)
                    .await
                    .expect("GET")
            }
        }
    }

    /// Replaces the stored record of the session of `cookie` (an attacker with write access).
    async fn write(self, cookie: &str, data: &str) {
        let key = storage_key(cookie);
        match self {
            AtRest::Postgres => {
                let pool = sqlx::PgPool::connect(&self.url()).await.expect("postgres");
                let done = sqlx::query("UPDATE gateway_sessions SET data = $1 WHERE id = $2")
                    .bind(data)
                    .bind(&key)
                    .execute(&pool)
                    .await
                    .expect("update");
                assert_eq!(done.rows_affected(), 1);
                pool.close().await;
            }
            AtRest::Redis => {
                let mut conn = redis_conn(&self.url()).await;
                let set: Option<String> = ::redis::cmd("SET")
                    .arg(format!("gateway:session:{key}"))
                    .arg(data)
                    .arg("XX")
                    .arg("KEEPTTL")
                    .query_async(&mut conn)
                    .await
                    .expect("SET");
                assert_eq!(set.as_deref(), Some("OK"));
            }
        }
    }
}

async fn redis_conn(url: &str) -> ::redis::aio::MultiplexedConnection {
    ::redis::Client::open(url)
        .expect("redis client")
        .get_multiplexed_async_connection()
        .await
        .expect("redis")
}

/// The key a server-side store files the session of `cookie` (`name=value`) under: the
/// base64url SHA-256 of its id (the part of the value before the dot).
fn storage_key(cookie: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let value = cookie.split_once('=').expect("name=value").1;
    let id = b64
        .decode(value.split('.').next().expect("id"))
        .expect("base64 id");
    b64.encode(sha2::Sha256::digest(id))
}

/// The stored record of `cookie`, checked to hold none of the tokens the provider issued.
async fn assert_no_token_at_rest(store: AtRest, idp: &OidcProvider, cookie: &str) -> String {
    let stored = store.read(cookie).await.expect("the session is stored");
    let issued = idp.issued_tokens().await;
    assert!(
        issued.len() >= 3,
        "refresh, ID and access tokens issued: {}",
        issued.len()
    );
    for token in &issued {
        assert!(
            !stored.contains(token.as_str()),
            "{store:?}: a provider token is stored in clear: {stored}"
        );
    }
    let record: serde_json::Value = serde_json::from_str(&stored).expect("a JSON record");
    assert!(record.get("p").is_none(), "{stored}");
    assert!(record["t"].is_string(), "the tokens are sealed: {stored}");
    stored
}

/// `GET path` with `cookie` no longer reaches the app, the session cookie is cleared and the
/// stored record is gone.
async fn assert_session_ended(store: AtRest, site: &Site, path: &str, cookie: &str, why: &str) {
    let resp = http()
        .get(site.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .expect("request");
    assert_ne!(resp.status(), 200, "{why}");
    assert!(
        set_cookie_line(&resp, SESSION).is_some_and(|l| l.contains("Max-Age=0")),
        "{why}: the session cookie is cleared"
    );
    assert_eq!(
        store.read(cookie).await,
        None,
        "{why}: the record is deleted"
    );
}

/// With a server-side store, the refresh and ID tokens are sealed at rest: the stored record
/// holds none of the provider's tokens, rotation still works through the sealed value, and a
/// sealed value altered or moved to another session's record ends that session.
async fn provider_tokens_are_sealed_at_rest(store: AtRest) {
    if !store.up() {
        return;
    }
    let port = free_port();
    let Some(idp) = provider(port, "corp", |s| s.refresh_tokens = true).await else {
        return;
    };
    let upstream = RecordingUpstream::start().await;
    let site = Site::start(
        port,
        upstream.addr,
        &[Sso::new("corp", &idp, "")],
        false,
        &format!("  store: \"{}\"", store.url()),
    )
    .await;
    let alice = site.sign_in("corp", "alice", "/").await;
    as_seen(&site, &upstream, "/", &alice).await;
    let at_login = assert_no_token_at_rest(store, &idp, &alice).await;

    // Two refreshes: the second works only with the rotated token the first sealed.
    for round in 1..=2 {
        past_revalidation().await;
        let seen = as_seen(&site, &upstream, "/refreshed", &alice).await;
        assert_eq!(seen.get("x-remote-user").as_deref(), Some("alice"));
        assert_eq!(idp.refreshes().await, round, "refreshed at the provider");
        let now = assert_no_token_at_rest(store, &idp, &alice).await;
        assert_ne!(now, at_login, "the rotated tokens are sealed anew");
    }

    // alice's sealed tokens moved into bob's record: they do not open there.
    let bob = site.sign_in("corp", "bob", "/").await;
    as_seen(&site, &upstream, "/", &bob).await;
    let alice_record: serde_json::Value =
        serde_json::from_str(&store.read(&alice).await.expect("alice")).expect("json");
    let mut bob_record: serde_json::Value =
        serde_json::from_str(&store.read(&bob).await.expect("bob")).expect("json");
    bob_record["t"] = alice_record["t"].clone();
    store.write(&bob, &bob_record.to_string()).await;
    assert_session_ended(store, &site, "/moved", &bob, "a moved sealed value").await;

    // One character of alice's sealed tokens altered.
    let mut altered = alice_record.clone();
    let sealed = alice_record["t"].as_str().expect("sealed").to_string();
    let mut bytes = sealed.into_bytes();
    let at = bytes.len() / 2;
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    altered["t"] = String::from_utf8(bytes).expect("ascii").into();
    store.write(&alice, &altered.to_string()).await;
    assert_session_ended(store, &site, "/altered", &alice, "an altered sealed value").await;
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_tokens_are_sealed_at_rest_in_postgres() {
    provider_tokens_are_sealed_at_rest(AtRest::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_tokens_are_sealed_at_rest_in_redis() {
    provider_tokens_are_sealed_at_rest(AtRest::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_without_an_id_token_takes_the_userinfo_claims_when_userinfo_is_on() {
    let (on_port, off_port) = (free_port(), free_port());
    let Some(idp) = provider(on_port, "corp", |s| {
        s.refresh_tokens = true;
        s.userinfo_only.push("groups");
        s.faults.push("refresh_without_id_token");
        s.redirect_uris.push(callback_uri(off_port, "corp"));
    })
    .await
    else {
        return;
    };
    let upstream = RecordingUpstream::start().await;
    let on = Site::single(on_port, upstream.addr, &idp, "      userinfo: true", false).await;
    let off = Site::single(off_port, upstream.addr, &idp, "", false).await;
    let on_cookie = on.sign_in("corp", "alice", "/").await;
    let off_cookie = off.sign_in("corp", "alice", "/").await;
    let groups =
        |seen: &support::upstream::Recorded| seen.get("x-remote-groups").unwrap_or_default();
    let at_login = as_seen(&on, &upstream, "/on", &on_cookie).await;
    assert!(
        groups(&at_login).contains("staff"),
        "{:?}",
        groups(&at_login)
    );

    idp.set_claims(
        "alice",
        serde_json::json!({
            "email": "alice@example.org",
            "name": "Alice Liddell",
            "preferred_username": "alice",
            "groups": ["staff", "auditors"],
        }),
    )
    .await;
    past_revalidation().await;
    // `userinfo: true`: the refresh brought no ID token; the claims come from userinfo.
    let seen = as_seen(&on, &upstream, "/on-refreshed", &on_cookie).await;
    assert_eq!(idp.refreshes().await, 1);
    assert!(
        groups(&seen).contains("auditors"),
        "userinfo read with the refreshed access token: {:?}",
        groups(&seen)
    );
    assert_eq!(seen.get("x-remote-user").as_deref(), Some("alice"));
    // Without `userinfo`: as before, the provisioned user (its groups never came in a token).
    let seen = as_seen(&off, &upstream, "/off-refreshed", &off_cookie).await;
    assert_eq!(idp.refreshes().await, 2);
    assert!(!groups(&seen).contains("auditors"), "{:?}", groups(&seen));
    assert_eq!(seen.get("x-remote-user").as_deref(), Some("alice"));
    on.stop().await;
    off.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_sharing_redis_take_turns_to_refresh_a_session() {
    if !AtRest::Redis.up() {
        return;
    }
    let (a_port, b_port) = (free_port(), free_port());
    let Some(idp) = provider(a_port, "corp", |s| {
        s.refresh_tokens = true;
        s.redirect_uris.push(callback_uri(b_port, "corp"));
    })
    .await
    else {
        return;
    };
    let upstream = RecordingUpstream::start().await;
    let store = format!("  store: \"{}\"", AtRest::Redis.url());
    let a = Site::start(
        a_port,
        upstream.addr,
        &[Sso::new("corp", &idp, "")],
        false,
        &store,
    )
    .await;
    let b = Site::start(
        b_port,
        upstream.addr,
        &[Sso::new("corp", &idp, "")],
        false,
        &store,
    )
    .await;
    // Each test site has its own user store: alice is provisioned into b's by a sign-in there.
    b.sign_in("corp", "alice", "/").await;
    let session = a.sign_in("corp", "alice", "/").await;
    for round in 1..=2 {
        past_revalidation().await;
        // Both replicas revalidate the session at once; the provider rotates refresh tokens and
        // revokes the grant when one comes back: only one replica may refresh.
        let statuses: Vec<u16> = futures_util::future::join_all((0..6).map(|i| {
            let site = if i % 2 == 0 { &a } else { &b };
            visit(site, &upstream, "/both", &session)
        }))
        .await
        .into_iter()
        .map(|(status, _)| status)
        .collect();
        assert!(
            statuses.iter().all(|s| *s == 200),
            "round {round}: {statuses:?}"
        );
        assert_eq!(
            idp.refreshes().await,
            round,
            "one refresh for both replicas"
        );
    }
    a.stop().await;
    b.stop().await;
}

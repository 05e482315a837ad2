//! The OpenID provider of the single sign-on tests: the certified Node.js `oidc-provider`
//! package from npm, run by `support/oidc/provider.mjs` (a test client, a static account store,
//! the package's development login form).
//!
//! The package is installed with `npm ci` (from the committed `package-lock.json`) into
//! `$OIDC_PROVIDER_DIR`, else `target/tmp/oidc-provider`, kept between runs and installed again
//! when the lock file changes. Without `node`/`npm` (or the registry, the first time) the tests
//! are skipped loudly, and fail under `CI=true`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const SOURCES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/oidc");

fn service_missing(why: &str) {
    let service = "node + npm with the `oidc-provider` package";
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{service} is required (CI=true) but unavailable: {why}");
    }
    eprintln!(
        "\n!!!!!!!! SKIPPING TEST: {service} unavailable: {why}\n!!!!!!!! (set CI=true to make this a failure)\n"
    );
}

fn install(dir: &Path) -> Result<(), String> {
    let lock = std::fs::read(Path::new(SOURCES).join("package-lock.json"))
        .map_err(|e| format!("package-lock.json: {e}"))?;
    let ready = dir.join(".ready");
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    for file in ["package.json", "package-lock.json", "provider.mjs"] {
        std::fs::copy(Path::new(SOURCES).join(file), dir.join(file))
            .map_err(|e| format!("copying {file}: {e}"))?;
    }
    if std::fs::read(&ready).ok().as_deref() == Some(&lock[..]) {
        return Ok(());
    }
    let out = std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir)
        .output()
        .map_err(|e| format!("npm: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "npm ci: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    std::fs::write(&ready, &lock).map_err(|e| e.to_string())
}

/// The folder holding `provider.mjs` and its `node_modules`, or `None` (skipped, or a panic
/// under `CI=true`).
fn installed() -> Option<PathBuf> {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let dir = std::env::var_os("OIDC_PROVIDER_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("oidc-provider"));
        install(&dir).map(|_| dir)
    });
    match dir {
        Ok(dir) => Some(dir.clone()),
        Err(e) => {
            service_missing(e);
            None
        }
    }
}

/// How a provider is set up.
#[derive(Clone, Debug)]
pub struct ProviderSetup {
    /// 0: any free port.
    pub port: u16,
    /// The test client's redirect URIs.
    pub redirect_uris: Vec<String>,
    pub client_id: String,
    pub client_secret: String,
    /// Account id -> claims.
    pub accounts: BTreeMap<String, Value>,
    /// The `kid` of a signing key generated at start (a fresh key each start); `None`: the
    /// package's development keys.
    pub key_id: Option<String>,
    /// Lifetime of ID tokens, in seconds.
    pub id_token_ttl: u64,
    /// How many seconds the provider's clock is behind (its tokens look older).
    pub clock_behind: u64,
    /// Fault switches of the provider script: `tamper_nonce` (the ID token carries another
    /// nonce than the one asked for), `publish_other_keys` (the JWKS endpoint publishes a key
    /// that signs nothing, never the signing key), `refresh_without_id_token` (refresh responses
    /// carry no ID token).
    pub faults: Vec<&'static str>,
    /// Every code grant also issues a refresh token, rotated at each use.
    pub refresh_tokens: bool,
    /// Claims left out of ID tokens (only the userinfo endpoint gives them).
    pub userinfo_only: Vec<&'static str>,
    /// Where the provider may send the browser after its logout.
    pub post_logout_redirect_uris: Vec<String>,
}

impl ProviderSetup {
    /// One client (`gateway` / `gateway-secret`) and the accounts alice (group staff, nested
    /// roles) and bob. The gateway's login page on the callback's origin (`/_auth/login`) is
    /// the registered post-logout redirect URI.
    pub fn new(redirect_uri: &str) -> ProviderSetup {
        let login_page = url::Url::parse(redirect_uri)
            .and_then(|u| u.join("/_auth/login"))
            .map(|u| u.to_string())
            .unwrap_or_default();
        let mut accounts = BTreeMap::new();
        accounts.insert(
            "alice".to_string(),
            json!({
                "email": "alice@example.org",
                "email_verified": true,
                "name": "Alice Liddell",
                "preferred_username": "alice",
                "groups": ["staff", "readers"],
                "realm_access": { "roles": ["admin", "user"] }
            }),
        );
        accounts.insert(
            "bob".to_string(),
            json!({
                "email": "bob@partner.example",
                "name": "Bob Builder",
                "preferred_username": "bob",
                "groups": ["builders"]
            }),
        );
        ProviderSetup {
            port: 0,
            redirect_uris: vec![redirect_uri.to_string()],
            client_id: "gateway".into(),
            client_secret: "gateway-secret".into(),
            accounts,
            key_id: Some("key-1".into()),
            id_token_ttl: 3600,
            clock_behind: 0,
            faults: Vec::new(),
            refresh_tokens: false,
            userinfo_only: Vec::new(),
            post_logout_redirect_uris: vec![login_page],
        }
    }

    fn to_json(&self) -> Value {
        let mut faults = serde_json::Map::new();
        for f in &self.faults {
            faults.insert((*f).to_string(), Value::Bool(true));
        }
        json!({
            "port": self.port,
            "clients": [{
                "client_id": self.client_id,
                "client_secret": self.client_secret,
                "redirect_uris": self.redirect_uris,
                "post_logout_redirect_uris": self.post_logout_redirect_uris,
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
            }],
            "accounts": self.accounts,
            "key_id": self.key_id,
            "id_token_ttl": self.id_token_ttl,
            "clock_behind": self.clock_behind,
            "refresh_tokens": self.refresh_tokens,
            "userinfo_only": self.userinfo_only,
            "faults": faults,
        })
    }
}

/// A running provider; killed on drop.
pub struct OidcProvider {
    child: Option<Child>,
    dir: PathBuf,
    work: tempfile::TempDir,
    pub setup: ProviderSetup,
    /// `http://127.0.0.1:PORT`.
    pub issuer: String,
    pub port: u16,
}

impl OidcProvider {
    /// Starts a provider, or `None` when node/npm are missing outside CI.
    pub async fn start_or_skip(setup: ProviderSetup) -> Option<OidcProvider> {
        let dir = installed()?;
        let work = tempfile::tempdir().expect("tempdir");
        let mut p = OidcProvider {
            child: None,
            dir,
            work,
            setup,
            issuer: String::new(),
            port: 0,
        };
        p.spawn().await;
        Some(p)
    }

    async fn spawn(&mut self) {
        let config = self.work.path().join("provider.json");
        std::fs::write(&config, self.setup.to_json().to_string()).expect("write provider config");
        let mut child = Command::new("node")
            .arg(self.dir.join("provider.mjs"))
            .arg(&config)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start node provider.mjs");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let issuer = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(issuer) = line.strip_prefix("listening ") {
                    return Some(issuer.to_string());
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .expect("the provider prints `listening URL` within 30s");
        // Keep draining its stdout so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        self.port = issuer
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port in issuer");
        self.setup.port = self.port;
        self.issuer = issuer;
        self.child = Some(child);
    }

    /// Stops the provider (its port then refuses connections).
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
            let _ = child.wait().await;
        }
    }

    /// Stops and starts again on the same port with `setup` changed by `change` (new keys...).
    pub async fn restart(&mut self, change: impl FnOnce(&mut ProviderSetup)) {
        self.stop().await;
        change(&mut self.setup);
        self.spawn().await;
    }
}

/// A browser at the provider, without a browser: its cookies (the provider's session) kept
/// between calls, redirects not followed.
#[derive(Default)]
pub struct ProviderAgent {
    jar: BTreeMap<String, String>,
}

impl ProviderAgent {
    /// Sends `request` with the provider's cookies and keeps those it sets.
    pub async fn send(&mut self, request: reqwest::RequestBuilder) -> reqwest::Response {
        let cookie = self
            .jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let resp = request
            .header("cookie", cookie)
            .send()
            .await
            .expect("provider answers");
        for value in resp.headers().get_all("set-cookie") {
            let value = value.to_str().expect("ascii cookie");
            let pair = value.split(';').next().unwrap_or_default();
            if let Some((k, v)) = pair.split_once('=') {
                self.jar.insert(k.trim().to_string(), v.trim().to_string());
            }
        }
        resp
    }

    /// Signs in at the provider through its development login form (when it has no session
    /// of this agent yet): follows the redirects from `authorization_url`, posts `account`'s
    /// login, and returns the URL the provider finally sends the browser to (the gateway's
    /// callback, with `code` and `state`).
    pub async fn login(&mut self, authorization_url: &str, account: &str) -> String {
        let http = client();
        let mut url = url::Url::parse(authorization_url).expect("authorization url");
        let origin = url.origin().ascii_serialization();
        for _ in 0..10 {
            let request = if url.path().starts_with("/interaction/") {
                http.post(url.clone()).form(&[
                    ("prompt", "login"),
                    ("login", account),
                    ("password", "any"),
                ])
            } else {
                http.get(url.clone())
            };
            let resp = self.send(request).await;
            let status = resp.status();
            let Some(location) = resp.headers().get("location") else {
                panic!(
                    "the provider answered {status} without a redirect: {}",
                    resp.text().await.unwrap_or_default()
                );
            };
            let next = url
                .join(location.to_str().expect("location"))
                .expect("location url");
            if next.origin().ascii_serialization() != origin {
                return next.to_string();
            }
            url = next;
        }
        panic!("no way back from the provider after 10 redirects");
    }

    /// Where the provider first sends the browser for `url` (its `Location`, absolute).
    pub async fn first_hop(&mut self, url: &str) -> String {
        let resp = self.send(client().get(url)).await;
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("{url}: {} without a redirect", resp.status()));
        url::Url::parse(url)
            .and_then(|u| u.join(location))
            .expect("location url")
            .to_string()
    }

    /// Follows RP-initiated logout at the provider: opens `end_session_url` (the provider's
    /// confirmation form, which must be offered), confirms it, and returns where the provider
    /// then sends the browser.
    pub async fn confirm_logout(&mut self, end_session_url: &str) -> String {
        let http = client();
        let resp = self.send(http.get(end_session_url)).await;
        let status = resp.status();
        let page = resp.text().await.unwrap_or_default();
        assert_eq!(status, 200, "the provider offers its logout form: {page}");
        let field = |start: &str| {
            page.split(start)
                .nth(1)
                .and_then(|s| s.split('"').next())
                .unwrap_or_else(|| panic!("no {start} in the logout form: {page}"))
                .to_string()
        };
        let action = url::Url::parse(end_session_url)
            .and_then(|u| u.join(&field("action=\"")))
            .expect("form action");
        let resp = self
            .send(http.post(action).form(&[
                ("xsrf", field("name=\"xsrf\" value=\"")),
                ("logout", "yes".into()),
            ]))
            .await;
        let status = resp.status();
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        location.unwrap_or_else(|| {
            panic!("the logout confirmation answered {status} without a redirect")
        })
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

/// [`ProviderAgent::login`] with a fresh agent (no provider session).
pub async fn provider_login(authorization_url: &str, account: &str) -> String {
    ProviderAgent::default()
        .login(authorization_url, account)
        .await
}

impl OidcProvider {
    /// `POST /test/revoke/{account}` of the test script: the account's grants are destroyed.
    pub async fn revoke_grants(&self, account: &str) {
        let resp = client()
            .post(format!("{}/test/revoke/{account}", self.issuer))
            .send()
            .await
            .expect("revoke");
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.expect("json");
        assert!(
            body["destroyed"].as_u64() > Some(0),
            "{account} had a grant: {body}"
        );
    }

    /// How many refresh grants the provider has answered successfully.
    pub async fn refreshes(&self) -> u64 {
        let body: Value = client()
            .get(format!("{}/test/stats", self.issuer))
            .send()
            .await
            .expect("stats")
            .json()
            .await
            .expect("json");
        body["refreshes"].as_u64().expect("refreshes")
    }

    /// Every token (refresh, ID, access) the token endpoint has issued (`GET /test/tokens`).
    pub async fn issued_tokens(&self) -> Vec<String> {
        let body: Value = client()
            .get(format!("{}/test/tokens", self.issuer))
            .send()
            .await
            .expect("tokens")
            .json()
            .await
            .expect("json");
        body["tokens"]
            .as_array()
            .expect("tokens")
            .iter()
            .map(|t| t.as_str().expect("a token").to_string())
            .collect()
    }

    /// Replaces `account`'s claims (`POST /test/account/{account}`).
    pub async fn set_claims(&self, account: &str, claims: Value) {
        let resp = client()
            .post(format!("{}/test/account/{account}", self.issuer))
            .json(&claims)
            .send()
            .await
            .expect("set claims");
        assert_eq!(resp.status(), 200);
    }
}

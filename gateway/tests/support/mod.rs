//! Shared helpers for the end-to-end tests: a recording upstream, an in-test backend with a user
//! table, and a gateway started in-process on 127.0.0.1:0.
#![allow(dead_code)]

pub mod h2raw;
pub mod path_cases;
pub mod raw;
pub mod registered;
pub mod upstream;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use auth_core::{
    Backend, BackendError, Chain, ChainEntry, Context, Credentials, Outcome, User, async_trait,
};
use gateway::__test::Config;
use gateway::__test::Metrics;
use gateway::__test::{Gateway, Running};
use gateway::__test::{Runtime, Services};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub use upstream::RecordingUpstream;

/// One user of [`TableBackend`].
#[derive(Clone, Debug)]
pub struct TestUser {
    pub password: String,
    pub groups: Vec<String>,
    pub email: Option<String>,
    pub version: String,
}

/// A backend over an in-memory user table that can be changed while the gateway runs.
#[derive(Clone, Debug, Default)]
pub struct TableBackend {
    pub users: Arc<std::sync::Mutex<BTreeMap<String, TestUser>>>,
    /// What `health()` answers.
    pub healthy: Arc<std::sync::atomic::AtomicBool>,
}

impl TableBackend {
    pub fn with(users: &[(&str, &str, &[&str])]) -> Self {
        let b = TableBackend::default();
        b.healthy.store(true, std::sync::atomic::Ordering::SeqCst);
        for (name, password, groups) in users {
            b.set(name, password, groups);
        }
        b
    }

    pub fn set(&self, name: &str, password: &str, groups: &[&str]) {
        self.users.lock().unwrap().insert(
            name.to_string(),
            TestUser {
                password: password.to_string(),
                groups: groups.iter().map(|g| g.to_string()).collect(),
                email: Some(format!("{name}@example.org")),
                version: format!("v-{password}"),
            },
        );
    }

    pub fn remove(&self, name: &str) {
        self.users.lock().unwrap().remove(name);
    }

    fn user(name: &str, u: &TestUser) -> User {
        let mut user = User::new(name).with_groups(u.groups.clone());
        user.email = u.email.clone();
        user.display_name = Some(format!("User {name}"));
        user.credential_version = Some(u.version.clone());
        user
    }
}

#[async_trait]
impl Backend for TableBackend {
    fn accepts(&self, kind: auth_core::CredentialKind) -> bool {
        matches!(
            kind,
            auth_core::CredentialKind::Password | auth_core::CredentialKind::Bearer
        )
    }

    async fn authenticate(&self, credentials: &Credentials, _context: &Context) -> Outcome {
        if let Credentials::Bearer(token) = credentials {
            // Tokens are `tok-<username>`.
            let users = self.users.lock().unwrap();
            return match token
                .strip_prefix("tok-")
                .and_then(|n| users.get_key_value(n))
            {
                Some((name, u)) => Outcome::Authenticated(Self::user(name, u)),
                None => Outcome::NotFound,
            };
        }
        let Credentials::Password { username, password } = credentials else {
            return Outcome::NotFound;
        };
        let users = self.users.lock().unwrap();
        match users.get(username) {
            Some(u) if u.password == *password => Outcome::Authenticated(Self::user(username, u)),
            Some(_) => Outcome::Rejected,
            None => Outcome::NotFound,
        }
    }

    async fn get_user(&self, id: &str) -> Result<Option<User>, BackendError> {
        Ok(self
            .users
            .lock()
            .unwrap()
            .get(id)
            .map(|u| Self::user(id, u)))
    }

    async fn health(&self) -> Result<(), BackendError> {
        if self.healthy.load(std::sync::atomic::Ordering::SeqCst) {
            Ok(())
        } else {
            Err(BackendError::new("table is down"))
        }
    }
}

/// The default users: alice (staff), bob (admins), eve (no group).
pub fn default_backend() -> TableBackend {
    TableBackend::with(&[
        ("alice", "alice-pw", &["staff"]),
        ("bob", "bob-pw", &["admins", "staff"]),
        ("eve", "eve-pw", &[]),
    ])
}

/// The standard test config; `{upstream}` is replaced by the upstream's address.
pub const BASE_CONFIG: &str = r#"
server:
  public_url: "http://127.0.0.1:8080"
upstream:
  url: "http://{upstream}"
  connect_timeout: 1s
  timeout: 2s
session:
  secure: false
  secret: "0123456789abcdef0123456789abcdef-test"
login:
  realm: "Test Realm"
routes:
  - match: { path: /static/ }
    access: public
  - match: { path: /admin }
    access: { groups: [admins] }
  - match: { path: /reports, methods: [POST] }
    access: { users: [alice] }
  - match: { path: /internal/ }
    access: deny
  - match: { path: / }
    access: authenticated
"#;

/// Parses a config from YAML with `{upstream}` replaced.
pub fn parse_config(yaml: &str, upstream: SocketAddr) -> Config {
    let yaml = yaml.replace("{upstream}", &upstream.to_string());
    serde_saphyr::from_str(&yaml).expect("test config parses")
}

/// A chain with one entry `test` over `backend`.
pub fn chain(backend: &TableBackend) -> Chain {
    Chain::new(vec![ChainEntry::new("test", Arc::new(backend.clone()))])
}

/// A running gateway in front of a recording upstream.
pub struct Harness {
    pub gateway: Arc<Gateway>,
    pub running: Option<Running>,
    pub upstream: RecordingUpstream,
    pub backend: TableBackend,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
}

/// Builds services and a runtime for `config` over `backend` in `dir`.
pub async fn runtime(
    config: Config,
    backend: &TableBackend,
    dir: &std::path::Path,
    version: u64,
) -> Runtime {
    let services = Services::from_config(&config, dir, dir)
        .await
        .expect("services build");
    Runtime::new(config, chain(backend), services, version).expect("runtime builds")
}

impl Harness {
    /// The standard harness.
    pub async fn start() -> Harness {
        Harness::start_with(BASE_CONFIG).await
    }

    /// A harness with `yaml` as config.
    pub async fn start_with(yaml: &str) -> Harness {
        Harness::start_full(yaml, None).await
    }

    /// A harness with `yaml` as config, serving TLS with `tls`.
    pub async fn start_full(yaml: &str, tls: Option<tokio_rustls::TlsAcceptor>) -> Harness {
        let upstream = RecordingUpstream::start().await;
        let backend = default_backend();
        let config = parse_config(yaml, upstream.addr);
        let dir = tempfile::tempdir().unwrap();
        let runtime = runtime(config, &backend, dir.path(), 1).await;
        let gateway = Gateway::new(runtime, Arc::new(Metrics::new()));
        let running = Running::start(gateway.clone(), "127.0.0.1:0".parse().unwrap(), tls)
            .await
            .expect("gateway starts");
        let addr = running.addr;
        Harness {
            gateway,
            running: Some(running),
            upstream,
            backend,
            addr,
            dir,
        }
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Stops the gateway (graceful).
    pub async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
    }
}

/// A browser-like session: a cookie jar over [`client`], handled by hand so tests see every
/// `Set-Cookie`.
#[derive(Default, Debug, Clone)]
pub struct Jar {
    pub cookies: BTreeMap<String, String>,
}

impl Jar {
    /// Takes the `Set-Cookie` headers of `resp` (a `Max-Age=0` removes the cookie).
    pub fn absorb(&mut self, resp: &reqwest::Response) {
        for v in resp.headers().get_all("set-cookie") {
            let s = v.to_str().unwrap();
            let first = s.split(';').next().unwrap();
            let (name, value) = first.split_once('=').unwrap();
            let removed = s.to_ascii_lowercase().contains("max-age=0") || value.is_empty();
            if removed {
                self.cookies.remove(name.trim());
            } else {
                self.cookies
                    .insert(name.trim().to_string(), value.trim().to_string());
            }
        }
    }

    /// The `Cookie` header value.
    pub fn header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The value of `name="..." value="..."` hidden input in `html`.
pub fn hidden_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\"");
    let at = html.find(&marker)?;
    let tag_start = html[..at].rfind('<')?;
    let tag_end = at + html[at..].find('>')?;
    let tag = &html[tag_start..tag_end];
    let v = tag.find("value=\"")? + 7;
    let end = tag[v..].find('"')?;
    Some(html_escape::decode_html_entities(&tag[v..v + end]).into_owned())
}

/// Fetches the login form at `form_path` (sending `jar`'s cookies, if any), then posts it as
/// `user` with the form's CSRF token and `next` when given. Both responses' cookies go into `jar`;
/// the POST's response is returned for the caller to check.
pub async fn submit_login(
    h: &Harness,
    jar: &mut Jar,
    form_path: &str,
    user: &str,
    password: &str,
    next: Option<&str>,
) -> reqwest::Response {
    let c = client();
    let mut get = c.get(h.url(form_path));
    if !jar.cookies.is_empty() {
        get = get.header("cookie", jar.header());
    }
    let form = get.send().await.unwrap();
    assert_eq!(form.status(), 200);
    jar.absorb(&form);
    let html = form.text().await.unwrap();
    let csrf = hidden_field(&html, "csrf").expect("csrf field");
    let mut fields = vec![
        ("username", user),
        ("password", password),
        ("csrf", csrf.as_str()),
    ];
    if let Some(next) = next {
        fields.push(("next", next));
    }
    let resp = c
        .post(h.url("/_auth/login"))
        .header("cookie", jar.header())
        .form(&fields)
        .send()
        .await
        .unwrap();
    jar.absorb(&resp);
    resp
}

/// Logs in through the form as `user`; returns the jar holding the session cookie.
pub async fn login(h: &Harness, user: &str, password: &str) -> Jar {
    let mut jar = Jar::default();
    let resp = submit_login(
        h,
        &mut jar,
        "/_auth/login?next=/app",
        user,
        password,
        Some("/app"),
    )
    .await;
    assert_eq!(resp.status(), 303, "login as {user} failed");
    jar
}

/// An HTTP client that never follows redirects and keeps no cookies.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// A hyper client (HTTP/1.1, or HTTP/2 with prior knowledge) for bodies `B`.
pub fn hyper_client<B>(
    http2: bool,
) -> hyper_util::client::legacy::Client<hyper_util::client::legacy::connect::HttpConnector, B>
where
    B: hyper::body::Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(http2)
        .build_http()
}

/// `Basic` header value for `user:password`.
pub fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// Sends `request` raw over TCP and returns the whole response as text (the request should
/// carry `Connection: close`).
pub async fn raw(addr: SocketAddr, request: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// The status code of a raw response.
pub fn raw_status(response: &str) -> u16 {
    response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

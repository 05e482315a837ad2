//! The configuration as operators write it (`../shared/gateway.reference.yaml` is the
//! contract). Every struct refuses unknown keys. Values that later checks must point at are
//! `Spanned`, so their errors carry `file:line:col`.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use auth_core::{Duration, OnError, OnReject, Provision, Secret};
use http::HeaderName;
use ipnet::IpNet;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;
use url::Url;

use crate::config::schema as sch;
use crate::config::typed::{Parsed, Scalar};

/// The whole file.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Listener settings.
    #[serde(default)]
    pub server: ServerConfig,
    /// The admin listener (`/metrics`, `/healthz`, `/readyz`); absent: disabled.
    #[serde(default)]
    pub admin: Option<AdminConfig>,
    /// The legacy app.
    pub upstream: UpstreamConfig,
    /// Headers set on forwarded requests (and stripped from incoming ones).
    #[serde(default)]
    pub identity_headers: IdentityHeadersConfig,
    /// Sessions.
    #[serde(default)]
    pub session: SessionConfig,
    /// The login endpoints.
    #[serde(default)]
    pub login: LoginConfig,
    /// Brute-force protection.
    #[serde(default)]
    pub protection: ProtectionConfig,
    /// Credential cache.
    #[serde(default)]
    pub cache: CacheConfig,
    /// The local user store URL (`sqlite://PATH`, `postgres://...`, `mysql://...`).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub users_db: Option<Spanned<Parsed<auth_storage::SqlUrl>>>,
    /// Directory for generated state (quickstart secret, default SQLite files).
    #[serde(default)]
    pub data_dir: Option<String>,
    /// The backends, in order. Each entry's `options` is parsed by its backend type's
    /// registration (see `config::load_str`); deserializing `Config` directly leaves them `None`.
    #[serde(default, deserialize_with = "crate::config::chain::deserialize_chain")]
    #[schemars(with = "Vec<sch::ChainEntrySchema>")]
    pub chain: Vec<ChainEntryConfig>,
    /// Access rules, first match wins; no match means `authenticated`.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// How request paths meet `routes:` (an addition to the contract).
    #[serde(default)]
    pub route_matching: RouteMatchingConfig,
    /// Logging.
    #[serde(default)]
    pub log: LogConfig,
    /// The audit trail (an addition to the contract); absent: no audit trail.
    #[serde(default)]
    pub audit: Option<AuditConfig>,
}

/// One address or a list.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    /// A single value.
    One(T),
    /// Several.
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    /// The values as a slice-like vec.
    pub fn to_vec(&self) -> Vec<&T> {
        match self {
            OneOrMany::One(t) => vec![t],
            OneOrMany::Many(v) => v.iter().collect(),
        }
    }
}

/// One string or a list of strings, each parsed and keeping its location (an untagged enum
/// would lose them: serde buffers its input).
fn one_or_many_spanned<'de, D: serde::Deserializer<'de>, T: Scalar>(
    d: D,
) -> Result<OneOrMany<Spanned<Parsed<T>>>, D::Error> {
    struct V<T>(std::marker::PhantomData<T>);
    impl<'de, T: Scalar> serde::de::Visitor<'de> for V<T> {
        type Value = OneOrMany<Spanned<Parsed<T>>>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an address or a list of addresses")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(OneOrMany::One(spanned(Parsed::new(v))))
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut all = Vec::new();
            while let Some(s) = seq.next_element::<Spanned<Parsed<T>>>()? {
                all.push(s);
            }
            Ok(OneOrMany::Many(all))
        }
    }
    struct Any<T>(OneOrMany<Spanned<Parsed<T>>>);
    impl<'de, T: Scalar> Deserialize<'de> for Any<T> {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(V(std::marker::PhantomData)).map(Any)
        }
    }
    let outer = Spanned::<Any<T>>::deserialize(d)?;
    Ok(match outer.value.0 {
        OneOrMany::One(mut s) => {
            s.referenced = outer.referenced;
            s.defined = outer.defined;
            OneOrMany::One(s)
        }
        many => many,
    })
}

/// `server:`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Listen address(es), e.g. `127.0.0.1:8080`.
    #[serde(deserialize_with = "one_or_many_spanned")]
    #[schemars(schema_with = "sch::one_or_many_strings")]
    pub listen: OneOrMany<Spanned<Parsed<SocketAddr>>>,
    /// Optional TLS.
    pub tls: Option<TlsConfig>,
    /// Our public origin; redirects are built from it, never from `Host`.
    #[schemars(with = "String")]
    pub public_url: Spanned<Parsed<Url>>,
    /// CIDRs whose `X-Forwarded-For` is believed.
    #[schemars(with = "Vec<String>")]
    pub trusted_proxies: Vec<Spanned<Parsed<IpNet>>>,
    /// Time allowed to read the request head.
    #[schemars(with = "String")]
    pub header_read_timeout: Duration,
    /// Largest request head.
    pub max_header_bytes: usize,
    /// Largest login form body.
    pub max_login_body_bytes: usize,
    /// Time allowed for in-flight requests on shutdown.
    #[schemars(with = "String")]
    pub shutdown_grace: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: OneOrMany::One(spanned(Parsed::new("127.0.0.1:8080"))),
            tls: None,
            public_url: spanned(Parsed::new("http://127.0.0.1:8080")),
            trusted_proxies: Vec::new(),
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 65536,
            max_login_body_bytes: 16384,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// A value with an unknown location (for defaults).
pub fn spanned<T>(value: T) -> Spanned<T> {
    Spanned {
        value,
        referenced: serde_saphyr::Location::UNKNOWN,
        defined: serde_saphyr::Location::UNKNOWN,
    }
}

/// `server.tls:`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain.
    #[schemars(with = "String")]
    pub cert: Spanned<String>,
    /// PEM private key.
    #[schemars(with = "String")]
    pub key: Spanned<String>,
}

/// `admin:`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Admin listen address.
    #[schemars(with = "String")]
    pub listen: Spanned<Parsed<SocketAddr>>,
}

/// `upstream:`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// Base URL of the legacy app (`http://host:port`). Required unless `demo` is true; empty
    /// when absent.
    #[serde(default = "empty")]
    #[schemars(with = "Option<String>")]
    pub url: Spanned<Parsed<Url>>,
    /// Serve the built-in demo app and proxy to it (quickstart); `url` is then ignored.
    #[serde(default)]
    pub demo: bool,
    /// TCP connect timeout.
    #[serde(default = "d5s")]
    #[schemars(with = "String")]
    pub connect_timeout: Duration,
    /// Whole-response timeout (until the response head arrives).
    #[serde(default = "d60s")]
    #[schemars(with = "String")]
    pub timeout: Duration,
    /// Send the client's `Host` upstream.
    #[serde(default = "yes")]
    pub preserve_host: bool,
    /// Forward the client's `Authorization` header. Off by default: the header is removed before
    /// forwarding, whatever its scheme and whatever identified the request, so the app and its
    /// logs never receive a password or token. Turn on only for an app that needs the header
    /// itself (its own Basic, NTLM or Negotiate).
    #[serde(default)]
    pub pass_authorization: bool,
}

fn d5s() -> Duration {
    Duration::from_secs(5)
}
fn d60s() -> Duration {
    Duration::from_secs(60)
}
fn yes() -> bool {
    true
}
fn empty() -> Spanned<Parsed<Url>> {
    spanned(Parsed::new(""))
}

/// `identity_headers:`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityHeadersConfig {
    /// Username header.
    #[schemars(with = "String")]
    pub user: Spanned<Parsed<HeaderName>>,
    /// Email header.
    #[schemars(with = "Option<String>")]
    pub email: Option<Spanned<Parsed<HeaderName>>>,
    /// Display name header.
    #[schemars(with = "Option<String>")]
    pub name: Option<Spanned<Parsed<HeaderName>>>,
    /// Groups header.
    #[schemars(with = "Option<String>")]
    pub groups: Option<Spanned<Parsed<HeaderName>>>,
    /// Separator between groups.
    pub groups_separator: String,
    /// Header naming the chain entry that authenticated the user.
    #[schemars(with = "Option<String>")]
    pub backend: Option<Spanned<Parsed<HeaderName>>>,
    /// Header name -> user attribute. The keys' locations are in the file's key index.
    #[schemars(with = "BTreeMap<String, String>")]
    pub extra: BTreeMap<Parsed<HeaderName>, Spanned<String>>,
    /// How non-ASCII values are sent.
    pub encoding: HeaderEncoding,
    /// A signed identity assertion (a short-lived JWT) sent with the identity headers, so the
    /// app can check that a request came through the gateway (an addition to the contract).
    /// Absent: none.
    pub assertion: Option<AssertionConfig>,
}

/// `identity_headers.assertion:` a JWT the gateway signs per user and sends upstream (and in
/// forward-auth answers), verifiable with the public keys at `{login.prefix}/jwks.json`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AssertionConfig {
    /// The header carrying the token.
    #[schemars(with = "String")]
    pub header: Spanned<Parsed<HeaderName>>,
    /// `EdDSA` (Ed25519) or `ES256` (P-256).
    pub algorithm: AssertionAlgorithm,
    /// PKCS#8 PEM private key of `algorithm` (`openssl genpkey -algorithm ed25519`), relative to
    /// the config file. Absent: generated into `data_dir` (mode 0600) on first start; replicas
    /// must then share a key file instead.
    #[schemars(with = "Option<String>")]
    pub key_file: Option<Spanned<String>>,
    /// Token lifetime (`exp - iat`).
    #[schemars(with = "String")]
    pub ttl: Duration,
    /// The `aud` claim. Absent: `upstream.url`.
    pub audience: Option<String>,
    /// The `iss` claim. Absent: `server.public_url`.
    pub issuer: Option<String>,
}

impl Default for AssertionConfig {
    fn default() -> Self {
        AssertionConfig {
            header: spanned(Parsed::new("X-Authgate-Assertion")),
            algorithm: AssertionAlgorithm::EdDSA,
            key_file: None,
            ttl: Duration::from_secs(60),
            audience: None,
            issuer: None,
        }
    }
}

/// The signature algorithm of the identity assertion.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
pub enum AssertionAlgorithm {
    /// Ed25519 (RFC 8037).
    #[default]
    EdDSA,
    /// ECDSA on P-256 with SHA-256.
    ES256,
}

impl Default for IdentityHeadersConfig {
    fn default() -> Self {
        IdentityHeadersConfig {
            user: spanned(Parsed::new("X-Remote-User")),
            email: Some(spanned(Parsed::new("X-Remote-Email"))),
            name: Some(spanned(Parsed::new("X-Remote-Name"))),
            groups: Some(spanned(Parsed::new("X-Remote-Groups"))),
            groups_separator: ",".into(),
            backend: Some(spanned(Parsed::new("X-Remote-Backend"))),
            extra: BTreeMap::new(),
            encoding: HeaderEncoding::Percent,
            assertion: None,
        }
    }
}

/// Non-ASCII identity values: percent-encoded UTF-8, or refuse the request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum HeaderEncoding {
    /// Percent-encode UTF-8.
    #[default]
    Percent,
    /// Refuse the request (500 to the client, logged).
    Reject,
}

/// `session:`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// `memory`, `sqlite://PATH`, `postgres://...`, `mysql://...`, `redis://...`,
    /// `rediss://...` (Redis over TLS) or `cookie`.
    #[schemars(with = "String")]
    pub store: Spanned<Parsed<StoreSetting>>,
    /// PEM CA certificate(s) a `rediss://` store's server certificate must chain to, for a
    /// private CA (an addition to the contract). Absent: the system's trusted roots.
    #[schemars(with = "Option<String>")]
    pub redis_ca_file: Option<Spanned<String>>,
    /// At least 32 bytes; signs and encrypts. Absent: generated into `data_dir` (quickstart).
    #[schemars(with = "Option<String>")]
    pub secret: Option<Spanned<Secret>>,
    /// Cookie name; the CSRF cookie of the login form is this name + `_csrf`. Absent:
    /// `__Host-gw_session` when the cookie is Secure (browsers then refuse a cookie of that name
    /// set by a sibling subdomain, or without `Secure`), else `gw_session`.
    pub cookie_name: Option<String>,
    /// Absolute lifetime.
    #[schemars(with = "String")]
    pub ttl: Duration,
    /// Idle timeout.
    #[schemars(with = "String")]
    pub idle_timeout: Duration,
    /// How often the user is re-read through `get_user`.
    #[schemars(with = "String")]
    pub revalidate: Duration,
    /// `auto`, `true` or `false`.
    #[schemars(schema_with = "sch::secure_setting")]
    pub secure: SecureSetting,
    /// `lax` or `strict`.
    pub same_site: SameSiteSetting,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            store: spanned(Parsed::new("memory")),
            redis_ca_file: None,
            secret: None,
            cookie_name: None,
            ttl: Duration::from_secs(8 * 3600),
            idle_timeout: Duration::from_secs(3600),
            revalidate: Duration::from_secs(300),
            secure: SecureSetting::Auto,
            same_site: SameSiteSetting::Lax,
        }
    }
}

/// A `session.store` or `protection.store` value, parsed (see its [`Scalar`] impl): a word, or a
/// store URL (SQL or Redis) parsed by the one storage layer. Equal values name the same store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSetting {
    /// `memory`: this process only.
    Memory,
    /// `cookie`: the session in the cookie itself (sessions only).
    Cookie,
    /// A SQL database or a Redis server.
    Url(auth_storage::StoreUrl),
}

/// The session cookie name without a prefix (plain HTTP, or `secure: false`).
pub(crate) const DEFAULT_COOKIE_NAME: &str = "gw_session";

/// The session cookie name when the cookie is Secure: the `__Host-` prefix makes browsers
/// refuse it from a sibling subdomain (cookie tossing) and over plain HTTP.
pub(crate) const DEFAULT_SECURE_COOKIE_NAME: &str = "__Host-gw_session";

impl SessionConfig {
    /// The session cookie's name for a cookie that is Secure (`secure`) or not: `cookie_name`,
    /// else [`DEFAULT_SECURE_COOKIE_NAME`] or [`DEFAULT_COOKIE_NAME`].
    pub fn cookie_name_for(&self, secure: bool) -> &str {
        match &self.cookie_name {
            Some(name) => name,
            None if secure => DEFAULT_SECURE_COOKIE_NAME,
            None => DEFAULT_COOKIE_NAME,
        }
    }
}

impl Config {
    /// Whether the session cookies carry `Secure`: `session.secure` resolved against
    /// `server.public_url` ([`cookie_secure`]).
    pub fn secure_cookies(&self) -> bool {
        cookie_secure(self.session.secure, self.server.public_url.value.get())
    }

    /// The credential kinds the request path reads under this config: `Authorization: Basic`
    /// and the login form (passwords), `Authorization: Bearer`, redirect logins (single
    /// sign-on, through the login endpoints), and API keys when `login.api_key_headers` names
    /// a header. A chain entry accepting none of them is skipped for every request: `authgate
    /// check` warns about it.
    pub fn produced_credentials(&self) -> Vec<auth_core::CredentialKind> {
        use auth_core::CredentialKind;
        let mut kinds = vec![
            CredentialKind::Password,
            CredentialKind::Bearer,
            CredentialKind::Redirect,
        ];
        if !self.login.api_key_headers.is_empty() {
            kinds.push(CredentialKind::ApiKey);
        }
        kinds
    }
}

/// Whether cookies get the `Secure` flag: `session.secure` resolved against `public_url`
/// (`auto`: secure unless `public_url` is plain HTTP on `localhost` or a loopback address; a
/// missing URL counts as secure).
pub(crate) fn cookie_secure(setting: SecureSetting, public_url: Option<&url::Url>) -> bool {
    match setting {
        SecureSetting::Always => true,
        SecureSetting::Never => false,
        SecureSetting::Auto => {
            let Some(url) = public_url else {
                return true;
            };
            let loopback = match url.host() {
                Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            };
            !(url.scheme() == "http" && loopback)
        }
    }
}

/// The cookie's `Secure` flag.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SecureSetting {
    /// Secure unless `public_url` is plain HTTP on 127.0.0.1 / localhost.
    #[default]
    Auto,
    /// Always.
    Always,
    /// Never (plain-HTTP development only).
    Never,
}

impl<'de> Deserialize<'de> for SecureSetting {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            B(bool),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::B(true) => Ok(SecureSetting::Always),
            Raw::B(false) => Ok(SecureSetting::Never),
            Raw::S(s) if s == "auto" => Ok(SecureSetting::Auto),
            Raw::S(s) => Err(serde::de::Error::custom(format!(
                "invalid `secure` value `{s}`; expected auto, true or false"
            ))),
        }
    }
}

/// The cookie's `SameSite`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SameSiteSetting {
    /// `SameSite=Lax`.
    #[default]
    Lax,
    /// `SameSite=Strict`.
    Strict,
}

/// `login:`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LoginConfig {
    /// Reserved path prefix for login, logout, whoami, check.
    #[schemars(with = "String")]
    pub prefix: Spanned<String>,
    /// Login page title.
    pub title: String,
    /// Template overriding the login page.
    #[schemars(with = "Option<String>")]
    pub template: Option<Spanned<String>>,
    /// Template overriding the error pages (502, 503, 504, 404 under the prefix, ...) that
    /// browsers get; placeholders `{{status}}`, `{{title}}`, `{{message}}`.
    #[schemars(with = "Option<String>")]
    pub error_template: Option<Spanned<String>>,
    /// Accept `Authorization: Basic` on protected routes.
    pub basic_auth: bool,
    /// Basic realm.
    pub realm: String,
    /// Hosts an absolute `next` may point at besides our own origin.
    pub allowed_redirect_hosts: Vec<String>,
    /// Headers an API key may come in (`X-Api-Key`), for the backends that accept `api_key`;
    /// always removed before forwarding. Default none.
    #[schemars(with = "Vec<String>")]
    pub api_key_headers: Vec<Spanned<Parsed<HeaderName>>>,
}

impl Default for LoginConfig {
    fn default() -> Self {
        LoginConfig {
            prefix: spanned("/_auth".into()),
            title: "Sign in".into(),
            template: None,
            error_template: None,
            basic_auth: true,
            realm: "Restricted".into(),
            allowed_redirect_hosts: Vec::new(),
            api_key_headers: Vec::new(),
        }
    }
}

/// `protection:`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ProtectionConfig {
    /// Failures per (username, client IP) within `window` before a lockout.
    pub max_failures: u32,
    /// Failures per client IP (IPv6: per /64), whatever the usernames, within `window` before
    /// that client is locked out for `lockout` (an addition to the contract). Absent: 10 x
    /// `max_failures`.
    pub max_failures_per_ip: Option<u32>,
    /// Counting window.
    #[schemars(with = "String")]
    pub window: Duration,
    /// Lockout duration.
    #[schemars(with = "String")]
    pub lockout: Duration,
    /// `memory`, `redis://...` or `rediss://...` (Redis over TLS).
    #[schemars(with = "String")]
    pub store: Spanned<Parsed<StoreSetting>>,
    /// As `session.redis_ca_file`, for a `rediss://` store here (an addition to the contract).
    #[schemars(with = "Option<String>")]
    pub redis_ca_file: Option<Spanned<String>>,
}

impl Default for ProtectionConfig {
    fn default() -> Self {
        ProtectionConfig {
            max_failures: 10,
            max_failures_per_ip: None,
            window: Duration::from_secs(900),
            lockout: Duration::from_secs(900),
            store: spanned(Parsed::new("memory")),
            redis_ca_file: None,
        }
    }
}

impl ProtectionConfig {
    /// `max_failures_per_ip`, or its default of 10 x `max_failures`.
    pub fn max_failures_per_ip(&self) -> u32 {
        self.max_failures_per_ip
            .unwrap_or_else(|| self.max_failures.saturating_mul(10))
    }
}

/// `cache:`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// Lifetime of a successful Basic/bearer check; 0 disables.
    #[schemars(with = "String")]
    pub credentials_ttl: Duration,
    /// Lifetime of a failed one; 0 disables.
    #[schemars(with = "String")]
    pub negative_ttl: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            credentials_ttl: Duration::from_secs(60),
            negative_ttl: Duration::default(),
        }
    }
}

/// `log:` (an addition to the contract).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: LogFormat,
    /// `tracing` filter, e.g. `info` or `gateway=debug`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

/// `audit:` (an addition to the contract): one line per login, lockout, logout, ended session
/// and reload, separate from the access log. Applied on reload (the file is reopened).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// `json` (default) or `text`.
    pub format: AuditFormat,
    /// `stdout`, `stderr` (default) or a file path (appended to; relative to `data_dir`).
    #[schemars(with = "String")]
    pub to: Spanned<String>,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            format: AuditFormat::Json,
            to: spanned("stderr".into()),
        }
    }
}

/// Audit line format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AuditFormat {
    /// One JSON object per line.
    #[default]
    Json,
    /// `timestamp event key=value ...`.
    Text,
}

/// Log line format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// One chain entry. `options` is parsed by the backend type's registration (see `config::load`),
/// so its errors carry locations inside the options too.
#[derive(Debug)]
pub struct ChainEntryConfig {
    /// Unique name.
    pub name: Spanned<String>,
    /// Registered backend type.
    pub type_name: Spanned<String>,
    /// Policy on `Rejected`.
    pub on_reject: OnReject,
    /// Policy on `Unavailable`.
    pub on_error: OnError,
    /// Time budget per call.
    pub timeout: Duration,
    /// Provisioning into the local store.
    pub provision: Provision,
    /// The parsed options, ready to build (filled by the loader's second pass).
    pub options: Option<Box<dyn auth_core::registry::BackendFactory>>,
    /// Where `options` (or the entry, without options) starts.
    pub options_location: serde_saphyr::Location,
}

/// `route_matching:`
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RouteMatchingConfig {
    /// For a case-insensitive upstream (IIS, Windows file systems, some Java/PHP setups): match
    /// `routes:` paths with ASCII case folding, and refuse (400) path segments ending in `.` or a
    /// space, which Windows strips. The path is forwarded as sent.
    pub case_insensitive: bool,
}

/// One route.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// What the route matches.
    #[serde(rename = "match")]
    pub matcher: RouteMatch,
    /// What it allows.
    #[schemars(schema_with = "sch::access")]
    pub access: Spanned<Access>,
}

/// `match:` of a route; all given fields must match.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteMatch {
    /// Exact host (case-insensitive, port ignored).
    #[serde(default)]
    pub host: Option<String>,
    /// Path prefix on the normalized path (segment-aware: `/admin/` or `/admin`).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub path: Option<Spanned<String>>,
    /// Regular expression on the normalized path (an addition to the contract).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub path_regex: Option<Spanned<String>>,
    /// Methods (upper case); empty means all.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub methods: Vec<Parsed<http::Method>>,
}

/// Who may reach a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Anyone, no identity needed (identity headers still stripped).
    Public,
    /// Any authenticated user.
    Authenticated,
    /// Members of any of these groups.
    Groups(Vec<String>),
    /// These usernames.
    Users(Vec<String>),
    /// Nobody.
    Deny,
}

impl<'de> Deserialize<'de> for Access {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Lists {
            #[serde(default)]
            groups: Option<Vec<String>>,
            #[serde(default)]
            users: Option<Vec<String>>,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Word(String),
            Lists(Lists),
        }
        let raw = Raw::deserialize(d).map_err(|_| {
            serde::de::Error::custom(
                "invalid `access`; expected public, authenticated, deny, {groups: [...]} or {users: [...]}",
            )
        })?;
        match raw {
            Raw::Word(w) => match w.as_str() {
                "public" => Ok(Access::Public),
                "authenticated" => Ok(Access::Authenticated),
                "deny" => Ok(Access::Deny),
                other => Err(serde::de::Error::custom(format!(
                    "invalid `access` `{other}`; expected public, authenticated, deny, {{groups: [...]}} or {{users: [...]}}"
                ))),
            },
            Raw::Lists(Lists {
                groups: Some(g),
                users: None,
            }) => Ok(Access::Groups(g)),
            Raw::Lists(Lists {
                groups: None,
                users: Some(u),
            }) => Ok(Access::Users(u)),
            Raw::Lists(_) => Err(serde::de::Error::custom(
                "`access` takes exactly one of `groups` or `users`",
            )),
        }
    }
}

#[cfg(test)]
mod cookie_secure_tests {
    use super::SecureSetting::{Always, Auto, Never};
    use super::cookie_secure;

    #[test]
    fn secure_flag_resolution() {
        assert!(cookie_secure(
            Auto,
            url::Url::parse("https://app.example.org").ok().as_ref()
        ));
        assert!(cookie_secure(
            Auto,
            url::Url::parse("http://app.example.org").ok().as_ref()
        ));
        assert!(!cookie_secure(
            Auto,
            url::Url::parse("http://127.0.0.1:8080").ok().as_ref()
        ));
        assert!(!cookie_secure(
            Auto,
            url::Url::parse("http://localhost:8080/").ok().as_ref()
        ));
        assert!(!cookie_secure(
            Auto,
            url::Url::parse("http://[::1]:8080").ok().as_ref()
        ));
        assert!(cookie_secure(
            Auto,
            url::Url::parse("https://localhost").ok().as_ref()
        ));
        assert!(cookie_secure(
            Auto,
            url::Url::parse("not a url").ok().as_ref()
        ));
        assert!(cookie_secure(
            Always,
            url::Url::parse("http://127.0.0.1").ok().as_ref()
        ));
        assert!(!cookie_secure(
            Never,
            url::Url::parse("https://app.example.org").ok().as_ref()
        ));
    }
}

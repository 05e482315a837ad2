//! One config version, compiled for the request path: routes, the identity header plan, the
//! chain, the shared services (sessions, lockout, credential cache) and the upstream settings.
//! Requests take one `Arc<Runtime>` when they start and keep it to the end, so a reload never
//! changes the rules under a request in flight.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use auth_core::Chain;
use ipnet::IpNet;
use sha2::{Digest, Sha256};

use crate::assertion::{Asserter, AssertionKeys};
use crate::credential_cache::CredentialCache;
use crate::login::Template;
use crate::protection::Lockout;
use crate::session::{SessionManager, resolve_secret};

use crate::config::reload_scope::StartOnly;
use crate::config::{
    AssertionConfig, CacheConfig, Config, IdentityHeadersConfig, LogConfig, LoginConfig, Parsed,
    ProtectionConfig, ServerConfig, SessionConfig, StoreSetting, UpstreamConfig,
};
use crate::request::forward::{HeaderPlan, UpstreamTarget};
use crate::request::route::RouteTable;
use crate::request::sanitize::{CredentialHeaders, Reserved};

/// Building a runtime from a config failed; the message names the offending key.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RuntimeError(String);

/// The parts of [`Config`] the request path reads (the chain entries' factories are consumed
/// when the chain is built, and routes are compiled).
#[derive(Debug)]
pub struct Settings {
    /// `server:`
    pub server: ServerConfig,
    /// `upstream:`
    pub upstream: UpstreamConfig,
    /// `identity_headers:`
    pub identity_headers: IdentityHeadersConfig,
    /// `session:`
    pub session: SessionConfig,
    /// `login:`
    pub login: LoginConfig,
    /// `protection:`
    pub protection: ProtectionConfig,
    /// `cache:`
    pub cache: CacheConfig,
    /// `log:`
    pub log: LogConfig,
    /// `admin.listen`, if any.
    pub admin_listen: Option<Parsed<SocketAddr>>,
    /// `data_dir`.
    pub data_dir: Option<String>,
}

/// One config version, ready to serve.
#[derive(Debug)]
pub struct Runtime {
    pub(crate) version: u64,
    pub(crate) config: Settings,
    pub(crate) chain: Chain,
    pub(crate) routes: RouteTable,
    pub(crate) reserved: Reserved,
    /// `Authorization` and `login.api_key_headers`.
    pub(crate) credentials: CredentialHeaders,
    pub(crate) headers: HeaderPlan,
    pub(crate) upstream: UpstreamTarget,
    pub(crate) trusted_proxies: Vec<IpNet>,
    pub(crate) public_url: url::Url,
    /// `login.prefix` without a trailing `/`.
    pub(crate) prefix: String,
    pub(crate) services: Services,
    /// Whether cookies get `Secure` (`session.secure` resolved against `public_url`).
    pub(crate) secure_cookies: bool,
    /// `login.allowed_redirect_hosts`, normalized.
    pub(crate) allowed_redirect_hosts: Vec<String>,
    /// The values of the keys a reload cannot change.
    pub(crate) start_only: StartOnly,
}

/// The parts of a config the services are built from (`Config` itself is not `Sync`).
struct ServiceSettings<'a> {
    session: &'a SessionConfig,
    /// The resolved `session.secure` (it picks the default cookie name).
    secure_cookies: bool,
    protection: &'a ProtectionConfig,
    cache: &'a CacheConfig,
    login: &'a LoginConfig,
    audit: Option<&'a crate::config::AuditConfig>,
    assertion: Option<&'a AssertionConfig>,
}

impl<'a> ServiceSettings<'a> {
    fn of(config: &'a Config) -> Self {
        ServiceSettings {
            session: &config.session,
            secure_cookies: config.secure_cookies(),
            protection: &config.protection,
            cache: &config.cache,
            login: &config.login,
            audit: config.audit.as_ref(),
            assertion: config.identity_headers.assertion.as_ref(),
        }
    }
}

/// The stateful services a runtime uses. On reload the session manager and the lockout are
/// carried over when their settings did not change (so sessions in the memory store survive);
/// the credential cache is always new (the chain may decide differently now), and the audit
/// sink is reopened (so a rotated audit file is let go on SIGHUP).
#[derive(Clone)]
pub struct Services {
    /// Sessions.
    pub sessions: Arc<SessionManager>,
    /// Brute-force lockout.
    pub lockout: Arc<Lockout>,
    /// Successful Basic checks.
    pub cache: Arc<CredentialCache>,
    /// The operator's login template, if any.
    pub template: Option<Arc<Template>>,
    /// The operator's error page template, if any.
    pub error_template: Option<Arc<Template>>,
    /// The local user store, for provisioning (entries with `provision: create | update`).
    pub users: Option<Arc<auth_backends::UserStore>>,
    /// The audit trail (`audit:`), opened anew for each config version.
    pub audit: Arc<crate::audit::Audit>,
    /// The identity assertion keys (`identity_headers.assertion`), carried over reloads so the
    /// JWK set keeps a replaced key.
    pub assertion_keys: Option<Arc<AssertionKeys>>,
    /// Whether the session secret is the one generated into `data_dir` (no `session.secret`).
    generated_secret: bool,
    session_settings: Arc<SessionSettings>,
    lockout_settings: Arc<LockoutSettings>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("sessions", &self.sessions)
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

/// What the session manager is built from, typed: a reload that leaves it equal keeps the
/// manager (so sessions in the memory store survive). The secret enters as a digest.
#[derive(PartialEq)]
struct SessionSettings {
    store: Option<StoreSetting>,
    redis_ca_file: Option<String>,
    cookie_name: String,
    ttl: std::time::Duration,
    idle_timeout: std::time::Duration,
    revalidate: std::time::Duration,
    secure: crate::config::SecureSetting,
    same_site: crate::config::SameSiteSetting,
    secret: [u8; 32],
}

impl SessionSettings {
    fn of(cfg: &SessionConfig, secure_cookies: bool, secret: &[u8]) -> Self {
        SessionSettings {
            store: cfg.store.value.get().cloned(),
            redis_ca_file: cfg.redis_ca_file.as_ref().map(|f| f.value.clone()),
            cookie_name: cfg.cookie_name_for(secure_cookies).to_string(),
            ttl: cfg.ttl.get(),
            idle_timeout: cfg.idle_timeout.get(),
            revalidate: cfg.revalidate.get(),
            secure: cfg.secure,
            same_site: cfg.same_site,
            secret: Sha256::digest(secret).into(),
        }
    }
}

/// What the lockout is built from, typed: a reload that leaves it equal keeps the lockout (and
/// the failures it counted in memory).
#[derive(PartialEq)]
struct LockoutSettings {
    max_failures: u32,
    max_failures_per_ip: u32,
    window: std::time::Duration,
    lockout: std::time::Duration,
    store: Option<StoreSetting>,
    redis_ca_file: Option<String>,
}

impl LockoutSettings {
    fn of(cfg: &ProtectionConfig) -> Self {
        LockoutSettings {
            max_failures: cfg.max_failures,
            max_failures_per_ip: cfg.max_failures_per_ip(),
            window: cfg.window.get(),
            lockout: cfg.lockout.get(),
            store: cfg.store.value.get().cloned(),
            redis_ca_file: cfg.redis_ca_file.as_ref().map(|f| f.value.clone()),
        }
    }
}

impl Services {
    /// Builds every service for `config`. Relative paths (SQLite sessions, the generated
    /// secret) live under `data_dir`; `login.template` is resolved against `base_dir`.
    pub fn from_config<'a>(
        config: &'a Config,
        data_dir: &'a Path,
        base_dir: &'a Path,
    ) -> impl Future<Output = Result<Services, RuntimeError>> + Send + 'a {
        Services::build(ServiceSettings::of(config), data_dir, base_dir, None)
    }

    /// As [`from_config`](Self::from_config), reusing `previous`'s session manager and lockout
    /// when their settings (and the session secret) are unchanged.
    pub fn carry_over<'a>(
        previous: &'a Services,
        config: &'a Config,
        data_dir: &'a Path,
        base_dir: &'a Path,
    ) -> impl Future<Output = Result<Services, RuntimeError>> + Send + 'a {
        Services::build(
            ServiceSettings::of(config),
            data_dir,
            base_dir,
            Some(previous),
        )
    }

    /// Sets the local user store provisioning writes to.
    pub fn with_user_store(mut self, users: Option<Arc<auth_backends::UserStore>>) -> Services {
        self.users = users;
        self
    }

    async fn build(
        config: ServiceSettings<'_>,
        data_dir: &Path,
        base_dir: &Path,
        previous: Option<&Services>,
    ) -> Result<Services, RuntimeError> {
        let secret =
            resolve_secret(config.session, data_dir).map_err(|e| RuntimeError(e.to_string()))?;
        let generated_secret = config.session.secret.is_none();
        // Once per process (and again only if a reload drops `session.secret`), not per reload.
        if generated_secret && !previous.is_some_and(|p| p.generated_secret) {
            tracing::warn!(
                path = %crate::session::generated_secret_path(data_dir).display(),
                "session.secret is not set: sessions are signed with a secret generated into this file; \
                 set session.secret from env: or file: before running more than one replica"
            );
        }
        let session_settings = SessionSettings::of(config.session, config.secure_cookies, &secret);
        let sessions = match previous {
            Some(p) if *p.session_settings == session_settings => p.sessions.clone(),
            _ => Arc::new(
                SessionManager::new(config.session, config.secure_cookies, &secret, data_dir)
                    .await
                    .map_err(|e| RuntimeError(e.to_string()))?,
            ),
        };
        let lockout_settings = LockoutSettings::of(config.protection);
        let lockout = match previous {
            Some(p) if *p.lockout_settings == lockout_settings => p.lockout.clone(),
            _ => Arc::new(
                Lockout::from_config(config.protection).map_err(|e| RuntimeError(e.to_string()))?,
            ),
        };
        let template = match &config.login.template {
            Some(path) => {
                let path = base_dir.join(&path.value);
                Some(Arc::new(
                    crate::login::load_template(&path)
                        .map_err(|e| RuntimeError(format!("login.template: {e}")))?,
                ))
            }
            None => None,
        };
        let error_template = match &config.login.error_template {
            Some(path) => {
                let path = base_dir.join(&path.value);
                Some(Arc::new(crate::login::load_error_template(&path).map_err(
                    |e| RuntimeError(format!("login.error_template: {e}")),
                )?))
            }
            None => None,
        };
        let audit = Arc::new(
            crate::audit::Audit::open(config.audit, data_dir)
                .map_err(|e| RuntimeError(e.to_string()))?,
        );
        let assertion_keys = match config.assertion {
            Some(cfg) => Some(Arc::new(
                AssertionKeys::load(
                    cfg,
                    data_dir,
                    base_dir,
                    previous.and_then(|p| p.assertion_keys.as_deref()),
                )
                .map_err(|e| RuntimeError(e.to_string()))?,
            )),
            None => None,
        };
        Ok(Services {
            sessions,
            lockout,
            cache: Arc::new(CredentialCache::from_config(config.cache)),
            template,
            error_template,
            users: None,
            audit,
            assertion_keys,
            generated_secret,
            session_settings: Arc::new(session_settings),
            lockout_settings: Arc::new(lockout_settings),
        })
    }
}

impl Runtime {
    /// Compiles `config` with its built `chain`. `version` numbers config versions (1 for the
    /// first, +1 per successful reload); it appears in logs and metrics.
    pub fn new(
        config: Config,
        chain: Chain,
        services: Services,
        version: u64,
    ) -> Result<Runtime, RuntimeError> {
        let routes = RouteTable::compile_with(&config.routes, &config.route_matching)
            .map_err(|e| RuntimeError(e.to_string()))?;
        let asserter = match (&config.identity_headers.assertion, &services.assertion_keys) {
            (Some(cfg), Some(keys)) => Some(Arc::new(
                Asserter::new(
                    cfg,
                    keys.clone(),
                    config.upstream.url.value.written(),
                    config.server.public_url.value.written(),
                )
                .map_err(|e| RuntimeError(e.to_string()))?,
            )),
            (Some(_), None) => {
                return Err(RuntimeError(
                    "identity_headers.assertion: the services were built without its keys".into(),
                ));
            }
            (None, _) => None,
        };
        let headers = HeaderPlan::new(&config.identity_headers)
            .map_err(|e| RuntimeError(e.to_string()))?
            .with_asserter(asserter);
        let api_keys = config
            .login
            .api_key_headers
            .iter()
            .map(|h| {
                h.value.get().cloned().ok_or_else(|| {
                    RuntimeError(format!(
                        "login.api_key_headers: `{}` is not a valid header name",
                        h.value
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let reserved = Reserved::with_api_keys(headers.names(), &api_keys);
        let credentials = CredentialHeaders::new(api_keys, config.upstream.pass_authorization);
        let upstream = UpstreamTarget::new(
            config.upstream.url.value.written(),
            config.upstream.timeout.get(),
            config.upstream.connect_timeout.get(),
            config.upstream.preserve_host,
        )
        .map_err(RuntimeError)?
        .credential_headers(credentials.clone());
        let trusted_proxies = config
            .server
            .trusted_proxies
            .iter()
            .map(|s| {
                s.value.get().copied().ok_or_else(|| {
                    RuntimeError(format!(
                        "server.trusted_proxies: `{}` is not a CIDR or address",
                        s.value
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let public_url = config
            .server
            .public_url
            .value
            .get()
            .cloned()
            .ok_or_else(|| {
                RuntimeError(format!(
                    "server.public_url `{}` is not a URL",
                    config.server.public_url.value
                ))
            })?;
        let prefix = crate::request::route::normalize_path(&config.login.prefix.value)
            .map_err(|e| {
                RuntimeError(format!("login.prefix `{}`: {e}", config.login.prefix.value))
            })?
            .trim_end_matches('/')
            .to_string();
        if prefix.is_empty() {
            return Err(RuntimeError("login.prefix must not be `/`".into()));
        }
        let secure_cookies = config.secure_cookies();
        let start_only = StartOnly::of(&config);
        let allowed_redirect_hosts = config
            .login
            .allowed_redirect_hosts
            .iter()
            .map(|h| {
                crate::login::normalize_allowed_host(h)
                    .map_err(|e| RuntimeError(format!("login.allowed_redirect_hosts: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let config = Settings {
            server: config.server,
            upstream: config.upstream,
            identity_headers: config.identity_headers,
            session: config.session,
            login: config.login,
            protection: config.protection,
            cache: config.cache,
            log: config.log,
            admin_listen: config.admin.map(|a| a.listen.value),
            data_dir: config.data_dir,
        };
        Ok(Runtime {
            version,
            config,
            chain,
            routes,
            reserved,
            credentials,
            headers,
            upstream,
            trusted_proxies,
            public_url,
            prefix,
            services,
            secure_cookies,
            allowed_redirect_hosts,
            start_only,
        })
    }

    /// This version's number.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The settings this runtime was built from.
    pub fn settings(&self) -> &Settings {
        &self.config
    }

    /// The services of this version.
    pub fn services(&self) -> &Services {
        &self.services
    }

    /// The chain of this version.
    pub fn chain(&self) -> &Chain {
        &self.chain
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::spanned;

    fn session(store: &str, ca: Option<&str>) -> SessionConfig {
        SessionConfig {
            store: spanned(store.into()),
            redis_ca_file: ca.map(|c| spanned(c.to_string())),
            ..SessionConfig::default()
        }
    }

    #[test]
    fn session_settings_compare_the_typed_store_and_the_secret() {
        let of = |cfg: &SessionConfig, secret: &[u8]| SessionSettings::of(cfg, false, secret);
        let base = session("rediss://h:6380", Some("/ca.pem"));
        assert!(of(&base, b"s") == of(&session(" rediss://h:6380 ", Some("/ca.pem")), b"s"));
        // A new CA file must reconnect: the manager is rebuilt.
        assert!(of(&base, b"s") != of(&session("rediss://h:6380", Some("/ca2.pem")), b"s"));
        assert!(of(&base, b"s") != of(&session("rediss://h:6380", None), b"s"));
        assert!(of(&base, b"s") != of(&session("rediss://h:6381", Some("/ca.pem")), b"s"));
        assert!(of(&base, b"s") != of(&base, b"t"), "a new secret rebuilds");
        let mut shorter = session("rediss://h:6380", Some("/ca.pem"));
        shorter.ttl = auth_core::Duration(std::time::Duration::from_secs(60));
        assert!(of(&base, b"s") != of(&shorter, b"s"));
    }

    #[test]
    fn lockout_settings_compare_the_typed_store() {
        let cfg = |store: &str, ca: Option<&str>| ProtectionConfig {
            store: spanned(store.into()),
            redis_ca_file: ca.map(|c| spanned(c.to_string())),
            ..ProtectionConfig::default()
        };
        let base = LockoutSettings::of(&cfg("rediss://h", Some("/ca.pem")));
        assert!(base == LockoutSettings::of(&cfg("rediss://h", Some("/ca.pem"))));
        assert!(base != LockoutSettings::of(&cfg("rediss://h", Some("/other.pem"))));
        assert!(base != LockoutSettings::of(&cfg("memory", None)));
        let mut stricter = cfg("rediss://h", Some("/ca.pem"));
        stricter.max_failures = 3;
        assert!(base != LockoutSettings::of(&stricter));
    }
}

//! One config version, compiled for the request path: routes, the identity header plan, the
//! chain, the shared services (sessions, lockout, credential cache) and the upstream settings.
//! Requests take one `Arc<Runtime>` when they start and keep it to the end, so a reload never
//! changes the rules under a request in flight.

use std::sync::Arc;

use auth_core::Chain;
use ipnet::IpNet;

use crate::config::{
    CacheConfig, Config, IdentityHeadersConfig, LogConfig, LoginConfig, ProtectionConfig,
    ServerConfig, SessionConfig, UpstreamConfig,
};
use crate::request::forward::{HeaderPlan, UpstreamTarget};
use crate::request::route::RouteTable;
use crate::request::sanitize::Reserved;

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
    pub admin_listen: Option<String>,
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
    pub(crate) headers: HeaderPlan,
    pub(crate) upstream: UpstreamTarget,
    pub(crate) trusted_proxies: Vec<IpNet>,
    pub(crate) public_url: url::Url,
    /// `login.prefix` without a trailing `/`.
    pub(crate) prefix: String,
}

impl Runtime {
    /// Compiles `config` with its built `chain`. `version` numbers config versions (1 for the
    /// first, +1 per successful reload); it appears in logs and metrics.
    pub fn new(config: Config, chain: Chain, version: u64) -> Result<Runtime, RuntimeError> {
        let routes =
            RouteTable::compile(&config.routes).map_err(|e| RuntimeError(e.to_string()))?;
        let headers =
            HeaderPlan::new(&config.identity_headers).map_err(|e| RuntimeError(e.to_string()))?;
        let reserved = Reserved::new(headers.names());
        let upstream = UpstreamTarget::new(
            &config.upstream.url.value,
            config.upstream.timeout.get(),
            config.upstream.preserve_host,
        )
        .map_err(RuntimeError)?;
        let trusted_proxies = config
            .server
            .trusted_proxies
            .iter()
            .map(|s| parse_net(&s.value))
            .collect::<Result<Vec<_>, _>>()?;
        let public_url = url::Url::parse(&config.server.public_url.value).map_err(|e| {
            RuntimeError(format!(
                "server.public_url `{}`: {e}",
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
            headers,
            upstream,
            trusted_proxies,
            public_url,
            prefix,
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

    /// The chain of this version.
    pub fn chain(&self) -> &Chain {
        &self.chain
    }
}

fn parse_net(s: &str) -> Result<IpNet, RuntimeError> {
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| {
            RuntimeError(format!(
                "server.trusted_proxies: `{s}` is not a CIDR or address"
            ))
        })
}

/// A shared handle to the current runtime.
pub type SharedRuntime = Arc<arc_swap::ArcSwap<Runtime>>;

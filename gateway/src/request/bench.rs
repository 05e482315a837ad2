//! Not public API: entry points into the request path's pure phases for `benches/` (header
//! sanitizing, path normalization, route matching) and the config and session types they build
//! on. Re-exported as `gateway::__bench`.

use http::HeaderMap;

use super::forward::HeaderPlan;
use super::route::RouteTable;
use super::sanitize::{Reserved, sanitize_headers};
use crate::config::IdentityHeadersConfig;
pub use crate::config::{Access, CacheConfig, Config, RouteConfig, SessionConfig};
pub use crate::credential_cache::{CacheHit, CredentialCache};
pub use crate::session::SessionManager;

/// The sanitize phase's header filter for one `identity_headers:` config.
#[derive(Debug)]
pub struct Sanitizer(Reserved);

impl Sanitizer {
    /// Builds the filter; `None` when a configured header name is invalid.
    pub fn new(identity: &IdentityHeadersConfig) -> Option<Sanitizer> {
        let plan = HeaderPlan::new(identity).ok()?;
        Some(Sanitizer(Reserved::new(plan.names())))
    }

    /// Drops reserved and hop-by-hop headers; returns how many reserved ones were dropped.
    pub fn sanitize(&self, headers: &mut HeaderMap) -> usize {
        sanitize_headers(headers, &self.0)
    }
}

/// The normalized path, or `None` when it is refused with 400.
pub fn normalize_path(path: &str) -> Option<String> {
    super::route::normalize_path(path).ok()
}

/// Compiled `routes:`.
#[derive(Debug)]
pub struct Routes(RouteTable);

impl Routes {
    /// Compiles the routes.
    pub fn compile(routes: &[RouteConfig]) -> Result<Routes, String> {
        RouteTable::compile(routes)
            .map(Routes)
            .map_err(|e| e.to_string())
    }

    /// The matching rule's index (`None`: the default) and its access.
    pub fn decide(&self, host: Option<&str>, method: &str, path: &str) -> (Option<usize>, Access) {
        let d = self.0.decide(host, method, path);
        (d.index, d.access)
    }
}

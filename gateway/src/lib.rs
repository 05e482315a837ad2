//! The gateway library: config, request path, sessions, login, reload.

mod access_log;
pub mod config;
pub mod credential_cache;
pub(crate) mod endpoints;
pub mod metrics;
pub mod protection;
pub(crate) mod request;
pub mod runtime;
pub mod server;
pub mod session;

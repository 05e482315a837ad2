//! The gateway library: config, request path, sessions, login, reload.

mod access_log;
pub mod config;
pub(crate) mod endpoints;
pub mod metrics;
pub(crate) mod request;
pub mod runtime;
pub mod server;

//! The gateway library: config, request path, sessions, login, reload.

pub mod config;
pub mod credential_cache;
pub mod protection;
pub mod session;

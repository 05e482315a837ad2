//! The gateway library: config, request path, sessions, login, reload.

pub mod config;
pub mod demo_upstream;
pub mod login;

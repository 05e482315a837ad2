//! The gateway library: config, request path, sessions, login, reload.

pub mod config;

//! The gateway library: config, request path, sessions, login, reload.

pub mod cli;
pub mod config;

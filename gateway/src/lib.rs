//! The gateway library: config, request path, sessions, login, reload.

#[doc(hidden)]
pub mod __fuzz;
mod access_log;
mod activity;
pub mod admin;
pub mod assertion;
pub mod audit;
pub mod cli;
pub mod config;
pub mod credential_cache;
pub mod demo_upstream;
pub(crate) mod endpoints;
pub mod error_chain;
pub mod launch;
pub mod login;
pub mod metrics;
pub mod protection;
pub mod reload;
pub(crate) mod request;
pub mod runtime;
pub mod server;
pub(crate) mod service;
pub mod session;
mod sso;
pub mod state;

#[doc(hidden)]
pub use request::bench as __bench;

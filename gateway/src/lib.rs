//! The gateway library: config, request path, sessions, login, reload.
//!
//! # Embedding API
//!
//! A team ships its own gateway binary to link in its own backends (see
//! `examples/custom-gateway`): it depends on this crate, on the backend crates it wants (each one
//! named once, `use my_backend as _;`, so the linker keeps its registration) and hands over to
//! the stock CLI. What such a binary may call, and all that is public:
//!
//! - [`cli::Cli`] and [`cli::execute`]: parse the command line and run a subcommand (`run`,
//!   `check`, `explain`, ...), as the `authgate` binary does.
//! - [`error_chain::Chain`]: shows an error with its causes, as the `authgate` binary prints
//!   what [`cli::execute`] returns.
//! - [`launch`]: run the gateway from a config file without the CLI: [`launch::run`] until a
//!   signal, [`launch::run_with`] with a custom shutdown trigger, or [`launch::start`], which
//!   returns a [`launch::Started`] to reload and stop it. Their chain builder is
//!   [`launch::default_chain_builder`].
//!
//! Everything else (the config model, the request path, sessions, login, the stores) is internal
//! and changes without notice; the config *file* is the stable interface. Three `#[doc(hidden)]`
//! modules are not API either: `__fuzz` (the fuzz targets' bodies), `__bench` (the benches'
//! entry points) and `__test` (what the integration tests under `tests/` reach).

#![warn(unreachable_pub)]

#[doc(hidden)]
pub mod __fuzz;
mod access_log;
mod activity;
pub(crate) mod admin;
pub(crate) mod assertion;
pub(crate) mod audit;
pub mod cli;
pub(crate) mod config;
pub(crate) mod credential_cache;
pub(crate) mod demo_upstream;
pub(crate) mod endpoints;
pub mod error_chain;
pub mod launch;
pub(crate) mod login;
pub(crate) mod metrics;
pub(crate) mod protection;
pub(crate) mod reload;
pub(crate) mod request;
pub(crate) mod runtime;
pub(crate) mod server;
pub(crate) mod service;
pub(crate) mod session;
mod sso;
pub(crate) mod state;

#[doc(hidden)]
pub use request::bench as __bench;

/// Not API: what the integration tests under `tests/` reach inside the gateway (starting a
/// server in-process, building a runtime from a config, the stores against real services, the
/// login pages rendered for a browser). Changes without notice.
#[doc(hidden)]
pub mod __test {
    pub use crate::config::schema::config_schema;
    pub use crate::config::{
        Config, ProtectionConfig, SameSiteSetting, SecureSetting, SessionConfig, build_chain, load,
        load_str, spanned,
    };
    /// The demo upstream `authgate demo` starts.
    pub mod demo_upstream {
        pub use crate::demo_upstream::*;
    }
    pub use crate::login::{
        ErrorPage, LoginPage, builtin_csp, parse_login_form, render_error, render_forbidden,
        render_logged_out, render_login, render_logout_confirm,
    };
    pub use crate::metrics::Metrics;
    pub use crate::protection::{LockRecord, Lockout};
    pub use crate::reload::{Reloader, build_runtime};
    pub use crate::runtime::{Runtime, Services};
    pub use crate::server::{Gateway, Running, shutdown_signal, tls_acceptor};
    pub use crate::session::{SessionError, SessionManager};
}

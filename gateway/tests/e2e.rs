//! End-to-end tests: one binary, one module per area (`tests/e2e/*.rs`): the gateway in-process
//! or as the `authgate` binary, against real upstreams, backends, nginx, Django and an OpenID provider. Tests that
//! need the process to themselves are their own binaries: `e2e_logging.rs` (a subscriber),
//! `e2e_signals.rs` (signals), `e2e_streaming.rs` (the process's memory).

mod support;

#[path = "support/browser.rs"]
mod browser;

#[path = "support/oidc.rs"]
mod oidc;

#[path = "fault_support/mod.rs"]
mod fault_support;

#[path = "../../auth-backends/tests/support/mod.rs"]
mod backend_support;

mod e2e {
    mod auth;
    mod binary;
    mod chain;
    mod nginx;
    mod proxy;
    mod recipe_django;
    mod reload;
    mod replicas;
    mod sso;
    mod tunnel_shutdown;
    mod upstream_pool;
    mod websocket_h2;
}

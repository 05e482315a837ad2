//! A gateway started from a config file, as `authgate run` starts it: the runtime built from
//! the file, every `server.listen` address and the admin listener (`crate::server`), and hot
//! reload (`crate::reload`) following the file. The one module that needs both the listener
//! and the reloader, so neither imports the other.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use crate::metrics::Metrics;
use crate::reload::{self, Reloader};
pub use crate::reload::{ChainBuilder, ReloadError, default_chain_builder};
pub use crate::server::ServerError;
use crate::server::{Listeners, Wanted, flush_logging, init_logging, shutdown_signal};
use crate::state::Gateway;

/// Why a gateway could not be started from its config file.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The config file could not be loaded into a runtime (`authgate run` exits with 2).
    #[error(transparent)]
    Config(#[from] Box<ReloadError>),
    /// A listener could not be started.
    #[error(transparent)]
    Server(#[from] ServerError),
}

/// Runs the gateway from the config file at `config_path` until SIGTERM/SIGINT: loads and
/// validates it, builds the chain and the runtime, starts every `server.listen` address (TLS
/// when `server.tls` is set), the admin listener, and hot reload (SIGHUP and file changes).
/// On a signal, stops accepting and lets in-flight requests finish within
/// `server.shutdown_grace`, then writes out the queued log lines (`flush_logging`).
pub async fn run(config_path: &Path) -> Result<(), LaunchError> {
    let result = run_with(
        config_path,
        reload::default_chain_builder(),
        shutdown_signal(),
    )
    .await;
    flush_logging();
    result
}

/// As [`run`], with a custom chain builder and shutdown trigger (embedders, tests).
pub async fn run_with(
    config_path: &Path,
    chain_builder: ChainBuilder,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), LaunchError> {
    let started = start(config_path, chain_builder).await?;
    shutdown.await;
    tracing::info!("shutdown requested");
    started.stop().await;
    Ok(())
}

/// A gateway started from a config file: its listeners, admin listener and reloader.
#[derive(Debug)]
pub struct Started {
    /// The `server.listen` addresses bound at start (useful with port 0); a reload may change
    /// them, see [`listening`](Self::listening).
    pub addrs: Vec<SocketAddr>,
    /// The admin address bound at start, when `admin.listen` is set.
    pub admin_addr: Option<SocketAddr>,
    gw: Arc<Gateway>,
    listeners: Arc<Listeners>,
    reloader: Arc<Reloader>,
    reload_task: tokio::task::JoinHandle<()>,
}

impl Started {
    /// The gateway (current runtime, metrics).
    pub fn gateway(&self) -> &Arc<Gateway> {
        &self.gw
    }

    /// The `server.listen` addresses bound now, in config order.
    pub fn listening(&self) -> Vec<SocketAddr> {
        self.listeners.listening()
    }

    /// The admin address bound now.
    pub fn admin_listening(&self) -> Option<SocketAddr> {
        self.listeners.admin()
    }

    /// Reloads the config file now, as SIGHUP does (see [`Reloader::reload`]).
    pub async fn reload(&self) -> Result<u64, ReloadError> {
        self.reloader.reload().await
    }

    /// Stops reloading and accepting, and waits for in-flight requests (within
    /// `server.shutdown_grace`).
    pub async fn stop(self) {
        self.reload_task.abort();
        self.listeners.stop().await;
    }
}

/// Loads the config at `config_path` and starts everything [`run`] starts, returning once the
/// listeners are bound.
pub async fn start(
    config_path: &Path,
    chain_builder: ChainBuilder,
) -> Result<Started, LaunchError> {
    let runtime = reload::build_runtime(config_path, 1, None, &chain_builder)
        .await
        .map_err(Box::new)?;
    init_logging(&runtime.config.log);
    let wanted = Wanted::of(&runtime.config, &crate::config::base_dir_of(config_path))?;
    let gw = Gateway::new(runtime, Arc::new(Metrics::new()));
    let listeners = Arc::new(Listeners::new(gw.clone())?);
    // Before binding: once the port answers, SIGHUP is handled (it would otherwise kill us).
    // A reload that runs first binds the same listeners; the update below then keeps them.
    let reloader = Arc::new(
        Reloader::new(gw.clone(), config_path, chain_builder).with_listeners(listeners.clone()),
    );
    let reload_task = reloader.clone().spawn();
    if let Err(e) = listeners.update(wanted, || ()) {
        reload_task.abort();
        listeners.stop().await;
        return Err(e.into());
    }
    Ok(Started {
        addrs: listeners.listening(),
        admin_addr: listeners.admin(),
        gw,
        listeners,
        reloader,
        reload_task,
    })
}

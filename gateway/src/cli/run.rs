//! `gateway run`: serve until SIGTERM / SIGINT, reloading on SIGHUP and file changes.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};

use auth_backends::UserStore;
use auth_core::BuildContext;

use super::check::INVALID_CONFIG;
use super::services::{needs_store, open_store, runtime};
use crate::config::{self, ConfigErrors, LoadedConfig, spanned};
use crate::reload::ChainBuilder;

/// Validates the config (errors as `file:line:col: message`, exit 2), starts the built-in demo
/// app when `upstream.demo` is true, and runs the server. The chain builder hands `local`
/// entries and provisioning the store named by `users_db`, reopened when a reload changes it.
pub(crate) fn run(path: &Path) -> Result<u8, super::CliError> {
    let loaded = match config::load(path) {
        Ok(loaded) => loaded,
        Err(errors) => {
            eprintln!("{errors}");
            return Ok(INVALID_CONFIG);
        }
    };
    for w in &loaded.warnings {
        eprintln!("{w}");
    }
    let runtime = runtime()?;
    runtime.block_on(async {
        let demo = if loaded.config.upstream.demo {
            let any_port = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
            let (addr, _task) = crate::demo_upstream::spawn_with_prefix(
                any_port,
                &loaded.config.login.prefix.value,
            )
            .await?;
            Some(addr)
        } else {
            None
        };
        drop(loaded);
        match crate::server::run_with(path, chain_builder(demo), crate::server::shutdown_signal())
            .await
        {
            Ok(()) => Ok(0),
            Err(crate::server::ServerError::Config(message)) => {
                eprintln!("{message}");
                Ok(INVALID_CONFIG)
            }
            Err(e) => Err(super::CliError::Message(e.to_string())),
        }
    })
}

type OpenStore = Mutex<Option<(String, Arc<UserStore>)>>;

fn chain_builder(demo: Option<SocketAddr>) -> ChainBuilder {
    let store: Arc<OpenStore> = Arc::new(Mutex::new(None));
    Arc::new(move |loaded: &mut LoadedConfig| {
        if let Some(addr) = demo
            && loaded.config.upstream.demo
        {
            loaded.config.upstream.url = spanned(format!("http://{addr}"));
        }
        let mut ctx = BuildContext::default();
        if needs_store(loaded) {
            ctx.provide(store_for(&store, loaded)?);
        }
        config::build_chain(loaded, &ctx)
    })
}

/// The store for `loaded`'s `users_db`, opened once per URL. Called on a runtime worker (at
/// start and on reload), so opening blocks only that worker.
fn store_for(cache: &OpenStore, loaded: &LoadedConfig) -> Result<Arc<UserStore>, ConfigErrors> {
    let url = loaded.users_db_url();
    let mut cached = cache.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((u, store)) = cached.as_ref()
        && *u == url
    {
        return Ok(store.clone());
    }
    let store = tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current().block_on(open_store(loaded))
    })?;
    *cached = Some((url, store.clone()));
    Ok(store)
}

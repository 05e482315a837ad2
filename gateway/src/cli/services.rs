//! What the CLI hands backends when it builds the chain: the local user store, opened only when
//! the chain uses it (a backend type that declares `needs = [user_store]`, or provisioning).

use std::sync::Arc;

use auth_backends::UserStore;
use auth_core::{BuildContext, Provision, Service};
use serde_saphyr::Location;

use crate::config::{ConfigErrors, Diagnostic, LoadedConfig};

/// A small runtime for the CLI's async work (database, backends).
pub(crate) fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

/// Whether the chain needs the local user store.
pub(crate) fn needs_store(loaded: &LoadedConfig) -> bool {
    loaded
        .config
        .chain
        .iter()
        .any(|e| e.provision != Provision::None)
        || loaded.chain_needs(Service::UserStore)
}

/// Opens the local user store at `users_db` (creating a SQLite file and its table if missing).
/// Failures are config errors located at `users_db`.
pub(crate) async fn open_store(loaded: &LoadedConfig) -> Result<Arc<UserStore>, ConfigErrors> {
    let url = loaded.users_db_url();
    UserStore::connect(&url).await.map(Arc::new).map_err(|e| {
        let at = loaded
            .config
            .users_db
            .as_ref()
            .map_or(Location::UNKNOWN, |u| u.referenced);
        ConfigErrors(vec![Diagnostic::error(
            &loaded.source,
            at,
            format!("cannot open the local user store: {e}"),
        )])
    })
}

/// For the commands that manage the local store (`users`, `keys`): the config at `path`, a CLI
/// runtime and the store the config names. `Ok(None)` when the config or the store fails: the
/// errors are printed, and the command exits 2.
pub(crate) fn store_for_cli(
    path: &std::path::Path,
) -> std::io::Result<Option<(LoadedConfig, tokio::runtime::Runtime, Arc<UserStore>)>> {
    let loaded = match crate::config::load(path) {
        Ok(loaded) => loaded,
        Err(errors) => {
            eprintln!("{errors}");
            return Ok(None);
        }
    };
    let runtime = runtime()?;
    match runtime.block_on(open_store(&loaded)) {
        Ok(store) => Ok(Some((loaded, runtime, store))),
        Err(errors) => {
            eprintln!("{errors}");
            Ok(None)
        }
    }
}

/// The build context for `loaded`'s chain, with the user store when the chain needs it.
pub(crate) async fn build_context(loaded: &LoadedConfig) -> Result<BuildContext, ConfigErrors> {
    let mut ctx = BuildContext::default();
    if needs_store(loaded) {
        ctx.provide(open_store(loaded).await?);
    }
    Ok(ctx)
}

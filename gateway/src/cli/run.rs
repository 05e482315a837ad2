//! `authgate run`: serve until SIGTERM / SIGINT, reloading on SIGHUP and file changes.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use auth_backends::UserStore;
use auth_core::BuildContext;

use super::check::{INVALID_CONFIG, loaded_privately};
use super::services::needs_store;
use crate::config::{self, ConfigErrors, LoadedConfig, Parsed, spanned};
use crate::reload::{BuiltChain, ChainBuilder, open_user_store};

/// Validates the config (errors as `file:line:col: message`, exit 2), starts the built-in demo
/// app when `upstream.demo` is true, and runs the server. Secrets written in a file other users
/// can read stop it (exit 2) unless `allow_insecure`. The chain builder hands `local`
/// entries and provisioning the store named by `users_db`, reopened when a reload changes it.
/// `log_level` (`--log-level`) overrides `RUST_LOG` and `log.level`.
pub(crate) fn run(
    path: &Path,
    allow_insecure: bool,
    log_level: Option<&str>,
) -> Result<u8, super::CliError> {
    let loaded = match config::load(path) {
        Ok(loaded) => loaded,
        Err(errors) => {
            eprintln!("{errors}");
            if !path.exists() {
                eprintln!(
                    "`authgate init --output {}` writes a starter config there",
                    path.display()
                );
            }
            return Ok(INVALID_CONFIG);
        }
    };
    if !loaded_privately(&loaded, path, allow_insecure) {
        return Ok(INVALID_CONFIG);
    }
    crate::server::init_logging_with(&loaded.config.log, log_level);
    // The server gets a full multi-threaded runtime (one worker per core), not the CLI's small one.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = serve(&runtime, path, loaded);
    drop(runtime);
    // The last lines (shutdown, the final access lines) are still queued for stderr.
    crate::server::flush_logging();
    result
}

/// Serves on `runtime` until SIGTERM / SIGINT (the body of [`run`]).
fn serve(
    runtime: &tokio::runtime::Runtime,
    path: &Path,
    loaded: LoadedConfig,
) -> Result<u8, super::CliError> {
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
        let public_url = loaded.config.server.public_url.value.written().to_string();
        let inline_users = inline_users(path);
        drop(loaded);
        // Installed before the listeners accept anything, so an early SIGTERM is a clean stop.
        let shutdown = crate::server::shutdown_signal();
        let started = match crate::launch::start(path, chain_builder(demo)).await {
            Ok(started) => started,
            Err(crate::launch::LaunchError::Config(e)) => {
                eprintln!("{}", crate::error_chain::Chain(&*e));
                return Ok(INVALID_CONFIG);
            }
            Err(crate::launch::LaunchError::Server(e)) => return Err(super::CliError::Server(e)),
        };
        print_banner(&public_url, &started, demo, &inline_users);
        tokio::spawn(crate::admin::warn_down_backends(started.gateway().clone()));
        shutdown.await;
        tracing::info!("shutdown requested");
        started.stop().await;
        Ok(0)
    })
}

/// What a newcomer needs on start-up: where to point the browser, and who can sign in.
fn print_banner(
    public_url: &str,
    started: &crate::launch::Started,
    demo: Option<SocketAddr>,
    inline_users: &[(String, Vec<String>)],
) {
    let bound: Vec<String> = started.addrs.iter().map(ToString::to_string).collect();
    println!(
        "authgate ready: open {public_url}  (listening on {})",
        bound.join(", ")
    );
    if let Some(admin) = started.admin_addr {
        println!("  admin: http://{admin}/metrics, /healthz, /readyz");
    }
    if let Some(addr) = demo {
        println!("  upstream: the built-in demo app on http://{addr}");
    }
    for (entry, users) in inline_users {
        println!(
            "  users of chain entry `{entry}` (static): {}",
            users.join(", ")
        );
    }
    if !inline_users.is_empty() {
        println!(
            "  (their passwords are in the comments of the config file, if you wrote them there)"
        );
    }
}

/// The usernames of `static` entries, read loosely from the file for the banner only (the
/// loader has already validated it; a failure here just prints no users).
fn inline_users(path: &Path) -> Vec<(String, Vec<String>)> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let Ok(doc) = serde_saphyr::from_str::<serde_json::Value>(&text) else {
        return Vec::new();
    };
    let Some(chain) = doc.get("chain").and_then(|c| c.as_array()) else {
        return Vec::new();
    };
    chain
        .iter()
        .filter(|e| e.get("type").and_then(|t| t.as_str()) == Some("static"))
        .filter_map(|e| {
            let name = e.get("name")?.as_str()?.to_string();
            let users = e.get("options")?.get("users")?.as_object()?;
            Some((name, users.keys().cloned().collect()))
        })
        .collect()
}

type OpenStore = tokio::sync::Mutex<Option<(String, Arc<UserStore>)>>;

fn chain_builder(demo: Option<SocketAddr>) -> ChainBuilder {
    let store: Arc<OpenStore> = Arc::new(tokio::sync::Mutex::new(None));
    Arc::new(move |loaded: &mut LoadedConfig| {
        if let Some(addr) = demo
            && loaded.config.upstream.demo
        {
            loaded.config.upstream.url = spanned(Parsed::new(format!("http://{addr}")));
        }
        let wanted = needs_store(loaded).then(|| (loaded.users_db_url(), open_user_store(loaded)));
        let store = store.clone();
        crate::request::boxed(|| async move {
            let mut ctx = BuildContext::default();
            let users = match wanted {
                Some((url, open)) => {
                    let users = store_for(&store, url, open).await?;
                    ctx.provide(users.clone());
                    Some(users)
                }
                None => None,
            };
            let chain = config::build_chain(loaded, &ctx)?;
            Ok(BuiltChain { chain, users })
        })
    })
}

/// The store for `url`, opened once per URL (a reload that keeps `users_db` reuses it).
async fn store_for(
    cache: &OpenStore,
    url: String,
    open: impl Future<Output = Result<Arc<UserStore>, ConfigErrors>>,
) -> Result<Arc<UserStore>, ConfigErrors> {
    let mut cached = cache.lock().await;
    if let Some((u, store)) = cached.as_ref()
        && *u == url
    {
        return Ok(store.clone());
    }
    let store = open.await?;
    *cached = Some((url, store.clone()));
    Ok(store)
}

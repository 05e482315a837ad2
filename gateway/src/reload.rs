//! Hot reload: on SIGHUP and when the config file changes (debounced), load and validate the
//! file, build the chain and a new [`Runtime`], and swap it in atomically. On any failure the
//! old runtime keeps serving; the failure is logged and counted. Requests in flight finish on
//! the runtime they started with; the session manager and the lockout are carried over when
//! their settings are unchanged (so the memory store's sessions survive); the credential cache
//! starts empty.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use auth_core::{BuildContext, Chain};
use notify::Watcher as _;

use crate::config::{ConfigErrors, LoadedConfig};
use crate::runtime::{Runtime, Services};
use crate::server::Gateway;

/// How long the file must be quiet before a change is acted on.
pub const DEBOUNCE: Duration = Duration::from_millis(300);
/// The longest a trigger waits for the debounce to settle.
pub const MAX_DEBOUNCE: Duration = Duration::from_secs(2);

/// A built chain and the local user store its entries use (for `type: local` and
/// provisioning), if the config needs one.
pub struct BuiltChain {
    /// The chain.
    pub chain: Chain,
    /// The local user store, when the chain uses it.
    pub users: Option<Arc<auth_backends::UserStore>>,
}

impl std::fmt::Debug for BuiltChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuiltChain")
            .field("chain", &self.chain)
            .field("users", &self.users.is_some())
            .finish()
    }
}

/// Builds the chain of a freshly loaded config. The default ([`default_chain_builder`]) opens
/// the local user store when the chain needs it (as `authgate check` does) and calls
/// [`crate::config::build_chain`]; embedders and tests may supply their own.
pub type ChainBuilder = Arc<
    dyn for<'a> Fn(
            &'a mut LoadedConfig,
        ) -> futures_util::future::BoxFuture<'a, Result<BuiltChain, ConfigErrors>>
        + Send
        + Sync,
>;

/// Why a reload was refused (the old config keeps serving).
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The file did not load or validate.
    #[error("{0}")]
    Config(ConfigErrors),
    /// The services or runtime could not be built.
    #[error("{0}")]
    Build(String),
}

/// Loads `path` into a runtime numbered `version`, carrying `previous`'s services over.
pub async fn build_runtime(
    path: &Path,
    version: u64,
    previous: Option<&Services>,
    chain_builder: &ChainBuilder,
) -> Result<Runtime, ReloadError> {
    let mut loaded = crate::config::load(path).map_err(ReloadError::Config)?;
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    let built = chain_builder(&mut loaded)
        .await
        .map_err(ReloadError::Config)?;
    let data_dir = loaded.data_dir();
    let base_dir = loaded.base_dir.clone();
    let services = match previous {
        Some(p) => Services::carry_over(p, &loaded.config, &data_dir, &base_dir).await,
        None => Services::from_config(&loaded.config, &data_dir, &base_dir).await,
    }
    .map_err(|e| ReloadError::Build(e.to_string()))?
    .with_user_store(built.users);
    Runtime::new(loaded.config, built.chain, services, version)
        .map_err(|e| ReloadError::Build(e.to_string()))
}

/// Opens the local user store named by `loaded`'s `users_db`. Everything needed is taken from
/// `loaded` now, so the future does not borrow it (`LoadedConfig` is not `Sync`). Errors are
/// config errors located at `users_db`.
pub(crate) fn open_user_store(
    loaded: &LoadedConfig,
) -> impl Future<Output = Result<Arc<auth_backends::UserStore>, ConfigErrors>> + Send + use<> {
    let url = loaded.users_db_url();
    let source = loaded.source.clone();
    let at = loaded
        .config
        .users_db
        .as_ref()
        .map_or(serde_saphyr::Location::UNKNOWN, |u| u.referenced);
    async move {
        auth_backends::UserStore::connect(&url)
            .await
            .map(Arc::new)
            .map_err(|e| {
                ConfigErrors(vec![crate::config::Diagnostic::error(
                    &source,
                    at,
                    format!("cannot open the local user store: {e}"),
                )])
            })
    }
}

/// The default chain builder: opens the local user store when the chain needs it (a `local`
/// entry or provisioning), then builds the chain.
pub fn default_chain_builder() -> ChainBuilder {
    Arc::new(|loaded: &mut LoadedConfig| {
        let open = crate::cli::services::needs_store(loaded).then(|| open_user_store(loaded));
        Box::pin(async move {
            let mut ctx = BuildContext::default();
            let users = match open {
                Some(open) => {
                    let store = open.await?;
                    ctx.provide(store.clone());
                    Some(store)
                }
                None => None,
            };
            let chain = crate::config::build_chain(loaded, &ctx)?;
            Ok(BuiltChain { chain, users })
        })
    })
}

/// Reloads one gateway from one file.
pub struct Reloader {
    gw: Arc<Gateway>,
    path: PathBuf,
    chain_builder: ChainBuilder,
    running: tokio::sync::Mutex<()>,
    /// Digest of the file content last seen by the watcher.
    last_digest: std::sync::Mutex<Option<[u8; 32]>>,
}

/// What asked for a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    /// SIGHUP: always reload.
    Signal,
    /// Something changed in the config's directory: reload when the file's content changed.
    File,
}

fn file_digest(path: &Path) -> Option<[u8; 32]> {
    use sha2::Digest;
    std::fs::read(path)
        .ok()
        .map(|b| sha2::Sha256::digest(&b).into())
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Reloader {
    /// A reloader of `gw` from `path`, building chains with `chain_builder`.
    pub fn new(gw: Arc<Gateway>, path: impl Into<PathBuf>, chain_builder: ChainBuilder) -> Self {
        let path = path.into();
        Reloader {
            gw,
            last_digest: std::sync::Mutex::new(file_digest(&path)),
            path,
            chain_builder,
            running: tokio::sync::Mutex::new(()),
        }
    }

    /// Reloads now. On success returns the new version; on failure the old runtime keeps
    /// serving. Either way the outcome is logged and counted.
    pub async fn reload(&self) -> Result<u64, ReloadError> {
        let _one_at_a_time = self.running.lock().await;
        let current = self.gw.current();
        let version = current.version() + 1;
        let result = match build_runtime(
            &self.path,
            version,
            Some(&current.services),
            &self.chain_builder,
        )
        .await
        {
            Ok(rt) => {
                self.gw.install(rt);
                self.gw.metrics.reload("ok");
                tracing::info!(version, path = %self.path.display(), "config reloaded");
                Ok(version)
            }
            Err(e) => {
                self.gw.metrics.reload("error");
                tracing::error!(
                    version = current.version(),
                    path = %self.path.display(),
                    "config reload failed; keeping the current config:\n{e}"
                );
                Err(e)
            }
        };
        crate::audit::reload(&self.gw, current.version(), &self.path, &result);
        result
    }

    /// Reloads on SIGHUP and when the file's content changes (debounced by [`DEBOUNCE`]) until
    /// the task is aborted.
    /// The SIGHUP handler is installed before this returns; call it within a Tokio runtime.
    pub fn spawn(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Trigger>();
        let dir = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let watcher_tx = tx.clone();
        // The directory is watched, not the file: editors rename over the file, and Kubernetes
        // swaps a `..data` symlink. Only events naming the file or a `..` entry count: others
        // (a log file written beside the config, say) would keep the debounce from ever
        // settling. The content digest decides. The watch is set up before this returns, so no
        // change after it is missed.
        let file_name = self.path.file_name().map(|n| n.to_os_string());
        let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            let Ok(event) = res else { return };
            let ours = event.paths.is_empty()
                || event.paths.iter().any(|p| {
                    p.file_name().is_some_and(|n| {
                        Some(n) == file_name.as_deref() || n.to_string_lossy().starts_with("..")
                    })
                });
            if ours && !event.kind.is_access() {
                let _ = watcher_tx.send(Trigger::File);
            }
        });
        let watcher = match watcher {
            Ok(mut w) => match w.watch(&dir, notify::RecursiveMode::NonRecursive) {
                Ok(()) => Some(w),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot watch the config file; SIGHUP only");
                    None
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch the config file; SIGHUP only");
                None
            }
        };
        #[cfg(unix)]
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(mut hup) => {
                let tx = tx.clone();
                tokio::spawn(async move {
                    while hup.recv().await.is_some() {
                        if tx.send(Trigger::Signal).is_err() {
                            break;
                        }
                    }
                });
            }
            Err(e) => tracing::warn!(error = %e, "cannot handle SIGHUP"),
        }
        drop(tx);
        tokio::spawn(async move {
            let _watcher = watcher;
            while let Some(first) = rx.recv().await {
                // Debounce: wait until things have been quiet for DEBOUNCE, but no longer than
                // MAX_DEBOUNCE in all (a steady stream of triggers must not defer reloads).
                let mut signalled = first == Trigger::Signal;
                let give_up = tokio::time::Instant::now() + MAX_DEBOUNCE;
                loop {
                    let wait = DEBOUNCE
                        .min(give_up.saturating_duration_since(tokio::time::Instant::now()));
                    if wait.is_zero() {
                        break;
                    }
                    match tokio::time::timeout(wait, rx.recv()).await {
                        Ok(Some(t)) => signalled |= t == Trigger::Signal,
                        Ok(None) => return,
                        Err(_) => break,
                    }
                }
                let digest = file_digest(&self.path);
                let changed = {
                    let mut last = self.last_digest.lock().unwrap_or_else(|p| p.into_inner());
                    let changed = *last != digest;
                    *last = digest;
                    changed
                };
                if signalled || changed {
                    let _ = self.reload().await;
                }
            }
        })
    }
}

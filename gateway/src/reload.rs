//! Hot reload: on SIGHUP and when the config file changes (debounced), load and validate the
//! file, build the chain and a new [`Runtime`], and swap it in atomically. On any failure the
//! old runtime keeps serving; the failure is logged and counted. Requests in flight finish on
//! the runtime they started with; the session manager and the lockout are carried over when
//! their settings are unchanged (so the memory store's sessions survive); the credential cache
//! starts empty. The listeners follow (see [`crate::server`]'s `listeners` module): new
//! addresses are bound, removed ones drain, the TLS certificate is re-read; a certificate that
//! does not load or an address that cannot be bound fails the reload with nothing applied.
//! Keys a reload cannot change ([`crate::config::reload_scope`]) are each named in a WARN, and
//! the `config reloaded` line lists the keys applied.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use auth_core::{BuildContext, Chain};
use notify::Watcher as _;

use crate::config::reload_scope::{Change, changed_keys, plain_value};
use crate::config::{ConfigErrors, LoadedConfig};
use crate::runtime::{Runtime, Services};
use crate::server::{Changes, Listeners, Wanted};
use crate::state::Gateway;

/// How long the file must be quiet before a change is acted on.
pub(crate) const DEBOUNCE: Duration = Duration::from_millis(300);
/// The longest a trigger waits for the debounce to settle.
pub(crate) const MAX_DEBOUNCE: Duration = Duration::from_secs(2);

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
    Build(#[source] crate::runtime::RuntimeError),
    /// A new listener could not be bound, or the TLS certificate or key is unusable.
    #[error("{0}")]
    Listeners(#[source] crate::server::ServerError),
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
    .map_err(ReloadError::Build)?
    .with_user_store(built.users);
    Runtime::new(loaded.config, built.chain, services, version).map_err(ReloadError::Build)
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
        crate::request::boxed(|| async move {
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
    /// Digest of the watched files' content last seen by the watcher.
    last_digest: std::sync::Mutex<[u8; 32]>,
    /// The listeners to update, when this reloader owns them.
    listeners: Option<Arc<Listeners>>,
    /// The file as last applied (plain YAML), to name the keys a reload changes.
    applied_file: std::sync::Mutex<serde_json::Value>,
}

/// What a successful reload applied.
struct Applied {
    version: u64,
    /// The keys written differently from the last applied file.
    changed: Vec<Change>,
    /// The restart keys whose value differs from the one the process started with.
    restart: Vec<(&'static str, String, String)>,
    listeners: Option<Changes>,
}

fn read_plain(path: &Path) -> serde_json::Value {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| plain_value(&t))
        .unwrap_or(serde_json::Value::Null)
}

/// What asked for a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    /// SIGHUP: always reload.
    Signal,
    /// Something changed beside a watched file: reload when the watched files' content changed.
    File,
}

/// One digest of the content of `files` (a missing file counts as such).
fn files_digest(files: &[PathBuf]) -> [u8; 32] {
    use sha2::Digest;
    let mut all = sha2::Sha256::new();
    for f in files {
        match std::fs::read(f) {
            Ok(b) => all.update(sha2::Sha256::digest(&b)),
            Err(_) => all.update([0u8; 32]),
        }
    }
    all.finalize().into()
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Reloader {
    /// A reloader of `gw` from `path`, building chains with `chain_builder`. It swaps the
    /// runtime only: the listeners are the caller's (`launch::start` hands its own to
    /// the reloader it makes, so they follow `server.listen`, `server.tls` and `admin.listen`).
    pub fn new(gw: Arc<Gateway>, path: impl Into<PathBuf>, chain_builder: ChainBuilder) -> Self {
        let path = path.into();
        Reloader {
            gw,
            last_digest: std::sync::Mutex::new(files_digest(std::slice::from_ref(&path))),
            applied_file: std::sync::Mutex::new(read_plain(&path)),
            path,
            chain_builder,
            running: tokio::sync::Mutex::new(()),
            listeners: None,
        }
    }

    /// Also brings `listeners` in line with each new config.
    pub(crate) fn with_listeners(mut self, listeners: Arc<Listeners>) -> Self {
        self.listeners = Some(listeners);
        *self
            .last_digest
            .get_mut()
            .unwrap_or_else(|p| p.into_inner()) = files_digest(&self.watched_files());
        self
    }

    /// The files whose change triggers a reload: the config file, and the TLS certificate and
    /// key of the current config when this reloader owns the listeners.
    fn watched_files(&self) -> Vec<PathBuf> {
        let mut files = vec![self.path.clone()];
        if self.listeners.is_some()
            && let Some(tls) = &self.gw.current().config.server.tls
        {
            let base = crate::config::base_dir_of(&self.path);
            files.push(base.join(&tls.cert.value));
            files.push(base.join(&tls.key.value));
        }
        files
    }

    /// Builds the new version and installs it with its listeners; nothing is applied on error.
    async fn apply(&self, current: &Runtime, version: u64) -> Result<Applied, ReloadError> {
        let file = read_plain(&self.path);
        let rt = build_runtime(
            &self.path,
            version,
            Some(&current.services),
            &self.chain_builder,
        )
        .await?;
        let restart = self
            .gw
            .started_with
            .differing(&rt.start_only)
            .map(|(key, running, file)| (key, running.to_string(), file.to_string()))
            .collect();
        let listeners = match &self.listeners {
            Some(l) => {
                let wanted = Wanted::of(rt.settings(), &crate::config::base_dir_of(&self.path))
                    .map_err(ReloadError::Listeners)?;
                Some(
                    l.update(wanted, || self.gw.install(rt))
                        .map_err(ReloadError::Listeners)?,
                )
            }
            None => {
                self.gw.install(rt);
                None
            }
        };
        let changed = {
            let mut applied = self.applied_file.lock().unwrap_or_else(|p| p.into_inner());
            let changed = changed_keys(&applied, &file);
            *applied = file;
            changed
        };
        Ok(Applied {
            version,
            changed,
            restart,
            listeners,
        })
    }

    /// Reloads now. On success returns the new version; on failure the old runtime keeps
    /// serving. Either way the outcome is logged and counted.
    pub async fn reload(&self) -> Result<u64, ReloadError> {
        let _one_at_a_time = self.running.lock().await;
        let current = self.gw.current();
        let version = current.version() + 1;
        let result = match self.apply(&current, version).await {
            Ok(applied) => {
                self.gw.metrics.reload("ok");
                for (key, running, file) in &applied.restart {
                    tracing::warn!(
                        key,
                        running = %running,
                        file = %file,
                        "{key} requires a restart; the running value is kept"
                    );
                }
                let list = |keys: Vec<&str>| {
                    if keys.is_empty() {
                        "none".to_string()
                    } else {
                        keys.join(", ")
                    }
                };
                let changed = applied.changed.iter().filter(|c| c.applied);
                let restart = applied.restart.iter().map(|(key, _, _)| *key);
                tracing::info!(
                    version,
                    path = %self.path.display(),
                    applied = %list(changed.map(|c| c.key.as_str()).collect()),
                    restart_needed = %list(restart.collect()),
                    listeners = applied.listeners.as_ref().map(|l| tracing::field::display(l.listeners())),
                    tls = applied.listeners.as_ref().map(|l| tracing::field::display(l.tls)),
                    "config reloaded"
                );
                Ok(applied.version)
            }
            Err(e) => {
                self.gw.metrics.reload("error");
                tracing::error!(
                    version = current.version(),
                    path = %self.path.display(),
                    "config reload failed; keeping the current config:\n{}",
                    crate::error_chain::Chain(&e)
                );
                Err(e)
            }
        };
        crate::audit::reload(
            &self.gw,
            current.version(),
            &self.path,
            result
                .as_ref()
                .map(|_| ())
                .map_err(|e| e as &dyn std::fmt::Display),
        );
        result
    }

    /// Reloads on SIGHUP and when the content of the file (or of the TLS certificate or key it
    /// names, when this reloader owns the listeners) changes, debounced by [`DEBOUNCE`], until
    /// the task is aborted.
    /// The SIGHUP handler is installed before this returns; call it within a Tokio runtime.
    pub fn spawn(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Trigger>();
        let watcher_tx = tx.clone();
        // The directories are watched, not the files: editors rename over a file, certbot
        // swaps a symlink and Kubernetes swaps a `..data` symlink. Only events naming a watched
        // file or a `..` entry count: others (a log file written beside the config, say) would
        // keep the debounce from ever settling. The content digest decides. The watch is set up
        // before this returns, so no change after it is missed.
        let files = self.watched_files();
        let names: Arc<std::sync::Mutex<Vec<std::ffi::OsString>>> =
            Arc::new(std::sync::Mutex::new(Vec::new()));
        let ours_names = names.clone();
        let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            let Ok(event) = res else { return };
            let names = ours_names.lock().unwrap_or_else(|p| p.into_inner());
            let ours = event.paths.is_empty()
                || event.paths.iter().any(|p| {
                    p.file_name().is_some_and(|n| {
                        names.iter().any(|w| w == n) || n.to_string_lossy().starts_with("..")
                    })
                });
            if ours && !event.kind.is_access() {
                let _ = watcher_tx.send(Trigger::File);
            }
        });
        let mut watcher = match watcher {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(error = %crate::error_chain::Chain(&e), "cannot watch the config file; SIGHUP only");
                None
            }
        };
        let mut watched_dirs = std::collections::HashSet::new();
        watch(&mut watcher, &names, &mut watched_dirs, &files);
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
            Err(e) => {
                tracing::warn!(error = %crate::error_chain::Chain(&e), "cannot handle SIGHUP")
            }
        }
        drop(tx);
        tokio::spawn(async move {
            let mut watcher = watcher;
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
                let files = self.watched_files();
                let digest = files_digest(&files);
                let changed = {
                    let mut last = self.last_digest.lock().unwrap_or_else(|p| p.into_inner());
                    let changed = *last != digest;
                    *last = digest;
                    changed
                };
                if signalled || changed {
                    let _ = self.reload().await;
                    // The new config may name other certificate files.
                    let files = self.watched_files();
                    watch(&mut watcher, &names, &mut watched_dirs, &files);
                }
            }
        })
    }
}

/// Watches the directories of `files` not watched yet, and makes `names` their file names.
fn watch(
    watcher: &mut Option<notify::RecommendedWatcher>,
    names: &std::sync::Mutex<Vec<std::ffi::OsString>>,
    watched_dirs: &mut std::collections::HashSet<PathBuf>,
    files: &[PathBuf],
) {
    *names.lock().unwrap_or_else(|p| p.into_inner()) = files
        .iter()
        .filter_map(|f| f.file_name().map(|n| n.to_os_string()))
        .collect();
    let Some(w) = watcher.as_mut() else { return };
    for dir in files.iter().map(|f| crate::config::base_dir_of(f)) {
        if watched_dirs.contains(&dir) {
            continue;
        }
        match w.watch(&dir, notify::RecursiveMode::NonRecursive) {
            Ok(()) => {
                watched_dirs.insert(dir);
            }
            Err(e) => tracing::warn!(
                dir = %dir.display(),
                error = %crate::error_chain::Chain(&e),
                "cannot watch for changes; SIGHUP reloads"
            ),
        }
    }
}

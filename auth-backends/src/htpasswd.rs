//! `type: htpasswd`: an Apache password file, with an optional Apache `AuthGroupFile`.
//!
//! Both files are re-read when they change: on an access at least `check_interval` after the last
//! look, the files' modification time, size and inode are compared with those of the copy in
//! memory (one `stat` each), so an editor's atomic rename and an in-place rewrite are both seen.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Instant, SystemTime};

use auth_core::password::{self, HashFormat, VerifyPolicy};
use auth_core::{
    Backend, BackendError, BuildContext, BuildError, Context, Credentials, Duration, Outcome, User,
    async_trait, auth_backend,
};

/// Users from an Apache htpasswd file (`htpasswd -B`, `-m`, `-s`, `-2`, `-5`; `-d` and `-p`
/// only when allowed), with groups from an optional Apache group file (`group: user1 user2`).
/// A user whose line has a refused or unknown hash format is `Rejected` (a rate-limited WARN
/// names them); the other users log in.
#[auth_backend(type = "htpasswd", build = Self::build)]
pub struct Htpasswd {
    /// The htpasswd file; relative to the config file's directory.
    path: PathBuf,
    /// An Apache `AuthGroupFile` (`group: user1 user2` per line); relative to the config file.
    groups_file: Option<PathBuf>,
    /// Accept traditional DES crypt (`htpasswd -d`), which reads only 8 characters (a longer
    /// password never matches).
    #[option(default)]
    allow_des_crypt: bool,
    /// Accept plaintext passwords (`htpasswd -p`).
    #[option(default)]
    allow_plaintext: bool,
    /// How often, at most, the files are checked for changes.
    #[option(default = "1s")]
    check_interval: Duration,
}

impl Htpasswd {
    /// Resolves the paths against the config file's directory and builds the backend. The files
    /// are read on first use: a missing file makes the backend unavailable, not the config
    /// invalid.
    pub fn build(self, ctx: &BuildContext) -> Result<Arc<dyn Backend>, BuildError> {
        Ok(Arc::new(HtpasswdBackend::new(
            ctx.resolve_path(&self.path),
            self.groups_file.map(|g| ctx.resolve_path(g)),
            VerifyPolicy {
                allow_des_crypt: self.allow_des_crypt,
                allow_plaintext: self.allow_plaintext,
                ..VerifyPolicy::STRICT
            },
            self.check_interval.get(),
        )))
    }
}

/// What identifies one version of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Stamp {
        use std::os::unix::fs::MetadataExt;
        Stamp {
            modified: meta.modified().ok(),
            len: meta.len(),
            inode: meta.ino(),
        }
    }
}

/// The files as last read.
struct Snapshot {
    users: HashMap<String, String>,
    groups: HashMap<String, BTreeSet<String>>,
    passwd_stamp: Stamp,
    groups_stamp: Option<Stamp>,
    /// A hash of the file's usual format and cost, for unknown users.
    dummy: String,
}

struct State {
    snapshot: Option<Arc<Snapshot>>,
    checked_at: Option<Instant>,
}

/// The built `htpasswd` backend.
pub(crate) struct HtpasswdBackend {
    path: PathBuf,
    groups_file: Option<PathBuf>,
    policy: VerifyPolicy,
    check_interval: std::time::Duration,
    state: RwLock<State>,
    reload: tokio::sync::Mutex<()>,
}

fn unreadable(what: &str, path: &Path, e: &std::io::Error) -> BackendError {
    BackendError::new(format!("cannot read {what} `{}`: {e}", path.display()))
}

async fn stamp(what: &str, path: &Path) -> Result<Stamp, BackendError> {
    tokio::fs::metadata(path)
        .await
        .map(|m| Stamp::of(&m))
        .map_err(|e| unreadable(what, path, &e))
}

async fn read(what: &str, path: &Path) -> Result<(String, Stamp), BackendError> {
    // Stamp first: a change racing with the read is seen at the next check.
    let stamp = stamp(what, path).await?;
    let text = tokio::fs::read_to_string(path)
        .await
        .map_err(|e| unreadable(what, path, &e))?;
    Ok((text, stamp))
}

/// `user:hash` lines; blank lines and `#` comments skipped; the first line for a user wins, as
/// in Apache.
fn parse_passwd(text: &str, path: &Path) -> HashMap<String, String> {
    let mut users = HashMap::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        match line.split_once(':') {
            Some((user, hash)) if !user.is_empty() => {
                users
                    .entry(user.to_string())
                    .or_insert_with(|| hash.trim().to_string());
            }
            _ => tracing::warn!(
                file = %path.display(),
                line = number + 1,
                "htpasswd line without `user:` ignored"
            ),
        }
    }
    users
}

/// `group: user1 user2` lines -> each user's groups.
fn parse_groups(text: &str, path: &Path) -> HashMap<String, BTreeSet<String>> {
    let mut groups: HashMap<String, BTreeSet<String>> = HashMap::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((group, members)) = line.split_once(':') else {
            tracing::warn!(
                file = %path.display(),
                line = number + 1,
                "group file line without `group:` ignored"
            );
            continue;
        };
        let group = group.trim();
        for member in members.split_whitespace() {
            groups
                .entry(member.to_string())
                .or_default()
                .insert(group.to_string());
        }
    }
    groups
}

impl HtpasswdBackend {
    pub(crate) fn new(
        path: PathBuf,
        groups_file: Option<PathBuf>,
        policy: VerifyPolicy,
        check_interval: std::time::Duration,
    ) -> Self {
        HtpasswdBackend {
            path,
            groups_file,
            policy,
            check_interval,
            state: RwLock::new(State {
                snapshot: None,
                checked_at: None,
            }),
            reload: tokio::sync::Mutex::new(()),
        }
    }

    fn cached(&self) -> Option<Arc<Snapshot>> {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        match (&state.snapshot, state.checked_at) {
            (Some(snapshot), Some(at)) if at.elapsed() < self.check_interval => {
                Some(Arc::clone(snapshot))
            }
            _ => None,
        }
    }

    /// The files' current contents, re-read when they changed.
    async fn current(&self) -> Result<Arc<Snapshot>, BackendError> {
        if let Some(snapshot) = self.cached() {
            return Ok(snapshot);
        }
        let _reloading = self.reload.lock().await;
        if let Some(snapshot) = self.cached() {
            return Ok(snapshot);
        }
        let previous = self
            .state
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .snapshot
            .clone();
        let result = self.refresh(previous).await;
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        match &result {
            Ok(snapshot) => {
                state.snapshot = Some(Arc::clone(snapshot));
                state.checked_at = Some(Instant::now());
            }
            Err(_) => {
                // Fail closed, and look again at the next access.
                state.snapshot = None;
                state.checked_at = None;
            }
        }
        result
    }

    async fn refresh(
        &self,
        previous: Option<Arc<Snapshot>>,
    ) -> Result<Arc<Snapshot>, BackendError> {
        let passwd_stamp = stamp("htpasswd file", &self.path).await?;
        let groups_stamp = match &self.groups_file {
            Some(path) => Some(stamp("group file", path).await?),
            None => None,
        };
        if let Some(previous) = previous
            && previous.passwd_stamp == passwd_stamp
            && previous.groups_stamp == groups_stamp
        {
            return Ok(previous);
        }
        let (text, passwd_stamp) = read("htpasswd file", &self.path).await?;
        let users = parse_passwd(&text, &self.path);
        let (groups, groups_stamp) = match &self.groups_file {
            Some(path) => {
                let (text, stamp) = read("group file", path).await?;
                (parse_groups(&text, path), Some(stamp))
            }
            None => (HashMap::new(), None),
        };
        let usable = users
            .values()
            .filter(|h| password::identify(h, HashFormat::Auto, &self.policy).is_ok())
            .count();
        if usable < users.len() {
            tracing::warn!(
                file = %self.path.display(),
                refused = users.len() - usable,
                "htpasswd users with a refused or unknown hash format cannot log in"
            );
        }
        let mut hashes: Vec<&str> = users.values().map(String::as_str).collect();
        hashes.sort_unstable();
        let dummy = password::representative_hash(hashes, HashFormat::Auto, &self.policy)
            .unwrap_or_else(|| password::dummy_hash())
            .to_string();
        tracing::info!(file = %self.path.display(), users = users.len(), "htpasswd file loaded");
        Ok(Arc::new(Snapshot {
            users,
            groups,
            passwd_stamp,
            groups_stamp,
            dummy,
        }))
    }

    fn user(snapshot: &Snapshot, username: &str, hash: &str) -> User {
        let mut user = User::new(username);
        if let Some(groups) = snapshot.groups.get(username) {
            user.groups = groups.clone();
        }
        user.credential_version = Some(password::credential_version(hash));
        user
    }
}

#[async_trait]
impl Backend for HtpasswdBackend {
    async fn authenticate(&self, credentials: &Credentials, context: &Context) -> Outcome {
        let Credentials::Password { username, password } = credentials else {
            return Outcome::NotFound;
        };
        let snapshot = match self.current().await {
            Ok(s) => s,
            Err(e) => return Outcome::Unavailable(e),
        };
        let hash = snapshot.users.get(username);
        let account = password::Account {
            entry: &context.entry,
            username,
            stored: hash.map(String::as_str),
            cost_like: &snapshot.dummy,
        };
        let verified =
            password::verify_stored(account, password, HashFormat::Auto, &self.policy).await;
        if let Some(refusal) = verified.refusal() {
            return refusal;
        }
        match hash {
            Some(hash) => Outcome::Authenticated(Self::user(&snapshot, username, hash)),
            None => Outcome::NotFound,
        }
    }

    async fn get_user(&self, id: &str) -> Result<Option<User>, BackendError> {
        let snapshot = self.current().await?;
        Ok(snapshot
            .users
            .get(id)
            .map(|hash| Self::user(&snapshot, id, hash)))
    }

    async fn health(&self) -> Result<(), BackendError> {
        self.current().await.map(|_| ())
    }
}

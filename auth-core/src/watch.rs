//! A file a backend reads and keeps current: [`WatchedFile`].
//!
//! On an access at least `check_interval` after the last look, the file's modification time,
//! size and inode are compared with those of the copy in memory (one `stat`), so an editor's
//! atomic rename and an in-place rewrite are both seen; only a changed file is read and parsed
//! again. One reload runs at a time; the others wait for it. A file that cannot be read or
//! parsed fails closed: the backend is unavailable until the file is good again.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Instant, SystemTime};

use crate::BackendError;

/// What identifies one version of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Stamp {
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(meta);
        #[cfg(not(unix))]
        let inode = 0;
        Stamp {
            modified: meta.modified().ok(),
            len: meta.len(),
            inode,
        }
    }
}

type Parse<T> = dyn Fn(&str, &Path) -> Result<T, String> + Send + Sync;

struct State<T> {
    loaded: Option<(Arc<T>, Stamp)>,
    checked_at: Option<Instant>,
}

/// A file parsed into a `T`, re-read when it changes. Build it in the backend's build function
/// (nothing is read then: a missing file makes the backend unavailable, not the config invalid)
/// and call [`WatchedFile::current`] on each use.
pub struct WatchedFile<T> {
    what: &'static str,
    path: PathBuf,
    check_interval: std::time::Duration,
    parse: Box<Parse<T>>,
    state: RwLock<State<T>>,
    reload: tokio::sync::Mutex<()>,
}

impl<T> std::fmt::Debug for WatchedFile<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchedFile")
            .field("what", &self.what)
            .field("path", &self.path)
            .field("check_interval", &self.check_interval)
            .finish_non_exhaustive()
    }
}

impl<T: Send + Sync + 'static> WatchedFile<T> {
    /// Watches `path` (already resolved, e.g. with [`crate::ConfigPath::resolve`]), looking for
    /// changes at most every `check_interval`. `what` names the file in errors ("htpasswd
    /// file"); `parse` turns its text into a `T` (derive whatever the backend needs here, it
    /// runs once per version of the file) or says why it cannot (never quote a secret).
    pub fn new(
        what: &'static str,
        path: impl Into<PathBuf>,
        check_interval: std::time::Duration,
        parse: impl Fn(&str, &Path) -> Result<T, String> + Send + Sync + 'static,
    ) -> Self {
        WatchedFile {
            what,
            path: path.into(),
            check_interval,
            parse: Box::new(parse),
            state: RwLock::new(State {
                loaded: None,
                checked_at: None,
            }),
            reload: tokio::sync::Mutex::new(()),
        }
    }

    /// The file being watched.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's current contents, parsed; read again when it changed since the last look.
    pub async fn current(&self) -> Result<Arc<T>, BackendError> {
        if let Some(value) = self.fresh() {
            return Ok(value);
        }
        let _reloading = self.reload.lock().await;
        if let Some(value) = self.fresh() {
            return Ok(value);
        }
        let previous = self
            .state
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .loaded
            .clone();
        let result = self.refresh(previous).await;
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok((value, stamp)) => {
                state.loaded = Some((Arc::clone(&value), stamp));
                state.checked_at = Some(Instant::now());
                Ok(value)
            }
            Err(e) => {
                // Fail closed, and look again at the next access.
                state.loaded = None;
                state.checked_at = None;
                Err(e)
            }
        }
    }

    fn fresh(&self) -> Option<Arc<T>> {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        match (&state.loaded, state.checked_at) {
            (Some((value, _)), Some(at)) if at.elapsed() < self.check_interval => {
                Some(Arc::clone(value))
            }
            _ => None,
        }
    }

    async fn refresh(
        &self,
        previous: Option<(Arc<T>, Stamp)>,
    ) -> Result<(Arc<T>, Stamp), BackendError> {
        let stamp = self.stamp().await?;
        if let Some((value, old)) = previous
            && old == stamp
        {
            return Ok((value, stamp));
        }
        // Stamp before reading: a change racing with the read is seen at the next check.
        let text = tokio::fs::read_to_string(&self.path)
            .await
            .map_err(|e| self.unreadable(&e))?;
        let value = (self.parse)(&text, &self.path).map_err(|message| {
            BackendError::new(format!(
                "cannot use {} `{}`: {message}",
                self.what,
                self.path.display()
            ))
        })?;
        Ok((Arc::new(value), stamp))
    }

    async fn stamp(&self) -> Result<Stamp, BackendError> {
        tokio::fs::metadata(&self.path)
            .await
            .map(|m| Stamp::of(&m))
            .map_err(|e| self.unreadable(&e))
    }

    fn unreadable(&self, e: &std::io::Error) -> BackendError {
        BackendError::new(format!(
            "cannot read {} `{}`: {e}",
            self.what,
            self.path.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("auth-core-watch-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn lines(parses: Arc<AtomicUsize>) -> impl Fn(&str, &Path) -> Result<Vec<String>, String> {
        move |text, _| {
            parses.fetch_add(1, Ordering::SeqCst);
            if text.contains("bad") {
                return Err("a line says bad".into());
            }
            Ok(text.lines().map(str::to_string).collect())
        }
    }

    #[tokio::test]
    async fn changes_are_seen_and_unchanged_files_are_not_parsed_again() {
        let dir = dir("changes");
        let path = dir.join("users");
        std::fs::write(&path, "alice\n").unwrap();
        let parses = Arc::new(AtomicUsize::new(0));
        let file = WatchedFile::new(
            "user file",
            &path,
            std::time::Duration::ZERO,
            lines(parses.clone()),
        );

        assert_eq!(*file.current().await.unwrap(), ["alice"]);
        assert_eq!(*file.current().await.unwrap(), ["alice"]);
        assert_eq!(
            parses.load(Ordering::SeqCst),
            1,
            "an unchanged file is not parsed again"
        );

        // An in-place rewrite (another size).
        std::fs::write(&path, "alice\nbob\n").unwrap();
        assert_eq!(*file.current().await.unwrap(), ["alice", "bob"]);

        // An editor's atomic rename, same size: another inode.
        let tmp = dir.join("users.tmp");
        std::fs::write(&tmp, "carol\nbob\n").unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        assert_eq!(*file.current().await.unwrap(), ["carol", "bob"]);
        assert_eq!(parses.load(Ordering::SeqCst), 3);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_missing_or_bad_file_fails_closed_until_it_is_good_again() {
        let dir = dir("closed");
        let path = dir.join("users");
        let file = WatchedFile::new(
            "user file",
            &path,
            std::time::Duration::ZERO,
            lines(Arc::default()),
        );
        let err = file.current().await.unwrap_err().to_string();
        assert!(
            err.starts_with("cannot read user file `") && err.contains("users`"),
            "{err}"
        );

        std::fs::write(&path, "alice\n").unwrap();
        assert_eq!(*file.current().await.unwrap(), ["alice"]);
        std::fs::write(&path, "alice\nbad\n").unwrap();
        let err = file.current().await.unwrap_err().to_string();
        assert!(err.ends_with("users`: a line says bad"), "{err}");
        std::fs::write(&path, "dora\n").unwrap();
        assert_eq!(*file.current().await.unwrap(), ["dora"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn within_the_interval_the_copy_in_memory_is_used() {
        let dir = dir("interval");
        let path = dir.join("users");
        std::fs::write(&path, "alice\n").unwrap();
        let file = WatchedFile::new(
            "user file",
            &path,
            std::time::Duration::from_secs(3600),
            lines(Arc::default()),
        );
        assert_eq!(*file.current().await.unwrap(), ["alice"]);
        std::fs::write(&path, "alice\nbob\n").unwrap();
        assert_eq!(
            *file.current().await.unwrap(),
            ["alice"],
            "no stat within the interval"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

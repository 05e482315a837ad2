//! Cache of Basic/bearer credential checks, so a client sending the same credentials on every
//! request does not hit the backend (or a slow password hash) each time. It cannot change a
//! decision: entries are keyed by an HMAC of (username, password) under a per-process random key
//! (never the password itself), successes live `credentials_ttl`, failures only `negative_ttl`
//! (0: never cached), and the whole cache is cleared on reload.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use auth_core::User;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use crate::config::model::CacheConfig;

/// Default cap on cached credentials.
pub(crate) const DEFAULT_CAPACITY: usize = 10_000;
const SHARDS: usize = 16;

type Key = [u8; 32];

fn capped(ttl: Duration, max: Option<Duration>) -> Duration {
    max.map_or(ttl, |max| ttl.min(max))
}

/// A cached successful check: what the chain answered for these credentials.
#[derive(Debug)]
pub struct CachedSuccess {
    /// Name of the chain entry that accepted the credentials.
    pub entry: String,
    /// The user it produced (shared with the requests it identifies).
    pub user: Arc<User>,
    /// The user's credential version at that time.
    pub credential_version: Option<String>,
}

/// What the cache knows about a (username, password) pair.
#[derive(Debug, Clone)]
pub enum CacheHit {
    /// These credentials were accepted recently.
    Success(Arc<CachedSuccess>),
    /// These credentials were refused recently (only with a non-zero `negative_ttl`).
    Failure,
}

#[derive(Clone)]
struct Slot {
    hit: CacheHit,
    expires: Instant,
}

/// The credential cache. Look up with [`get`](Self::get) before running the chain; store the
/// chain's answer with [`insert_success`](Self::insert_success) or
/// [`insert_failure`](Self::insert_failure).
pub struct CredentialCache {
    mac: Hmac<Sha256>,
    ttl: Duration,
    negative_ttl: Duration,
    shards: Vec<RwLock<HashMap<Key, Slot>>>,
    per_shard: usize,
}

impl fmt::Debug for CredentialCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialCache")
            .field("ttl", &self.ttl)
            .field("negative_ttl", &self.negative_ttl)
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl CredentialCache {
    /// A cache for `cache:`, holding at most [`DEFAULT_CAPACITY`] entries.
    pub fn from_config(cfg: &CacheConfig) -> CredentialCache {
        Self::with_capacity(cfg, DEFAULT_CAPACITY)
    }

    /// A cache for `cache:` holding at most `capacity` entries (16 at least).
    pub fn with_capacity(cfg: &CacheConfig, capacity: usize) -> CredentialCache {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        CredentialCache {
            mac: Hmac::new_from_slice(&key).expect("HMAC accepts any key length"),
            ttl: cfg.credentials_ttl.get(),
            negative_ttl: cfg.negative_ttl.get(),
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            per_shard: (capacity / SHARDS).max(1),
        }
    }

    /// Whether the cache stores anything (`credentials_ttl` > 0).
    pub fn is_enabled(&self) -> bool {
        !self.ttl.is_zero()
    }

    fn key(&self, username: &str, password: &[u8]) -> Key {
        // Length-prefixed, so no (username, password) split of the same bytes collides even
        // when a username contains NUL.
        let mut mac = self.mac.clone();
        mac.update(&(username.len() as u64).to_be_bytes());
        mac.update(username.as_bytes());
        mac.update(password);
        mac.finalize().into_bytes().into()
    }

    fn shard(&self, key: &Key) -> &RwLock<HashMap<Key, Slot>> {
        &self.shards[key[0] as usize % SHARDS]
    }

    /// The cached answer for (`username`, `password`), if still fresh (for a bearer token:
    /// an empty username and the token as password).
    pub fn get(&self, username: &str, password: &[u8]) -> Option<CacheHit> {
        if !self.is_enabled() {
            return None;
        }
        let key = self.key(username, password);
        let shard = self.shard(&key).read().unwrap_or_else(|p| p.into_inner());
        let slot = shard.get(&key)?;
        (slot.expires > Instant::now()).then(|| slot.hit.clone())
    }

    /// Caches that the chain accepted (`username`, `password`) as `user` from `entry`.
    pub fn insert_success(
        &self,
        username: &str,
        password: &[u8],
        entry: &str,
        user: &User,
        credential_version: Option<&str>,
    ) {
        self.insert_success_within(username, password, entry, user, credential_version, None);
    }

    /// [`insert_success`](Self::insert_success) for at most `max_ttl` (when given) even when
    /// `credentials_ttl` is longer: for credentials whose revocation must show quickly.
    pub fn insert_success_within(
        &self,
        username: &str,
        password: &[u8],
        entry: &str,
        user: &User,
        credential_version: Option<&str>,
        max_ttl: Option<Duration>,
    ) {
        let hit = CacheHit::Success(Arc::new(CachedSuccess {
            entry: entry.to_string(),
            user: Arc::new(user.clone()),
            credential_version: credential_version.map(str::to_string),
        }));
        self.insert(username, password, hit, capped(self.ttl, max_ttl));
    }

    /// Caches that the chain refused (`username`, `password`); a no-op when `negative_ttl` is 0.
    pub fn insert_failure(&self, username: &str, password: &[u8]) {
        self.insert_failure_within(username, password, None);
    }

    /// [`insert_failure`](Self::insert_failure) for at most `max_ttl` (when given).
    pub fn insert_failure_within(
        &self,
        username: &str,
        password: &[u8],
        max_ttl: Option<Duration>,
    ) {
        self.insert(
            username,
            password,
            CacheHit::Failure,
            capped(self.negative_ttl, max_ttl),
        );
    }

    fn insert(&self, username: &str, password: &[u8], hit: CacheHit, ttl: Duration) {
        if ttl.is_zero() || !self.is_enabled() {
            return;
        }
        let key = self.key(username, password);
        let now = Instant::now();
        let mut shard = self.shard(&key).write().unwrap_or_else(|p| p.into_inner());
        if shard.len() >= self.per_shard && !shard.contains_key(&key) {
            shard.retain(|_, s| s.expires > now);
            if shard.len() >= self.per_shard {
                // Full of fresh entries: drop the one expiring first.
                if let Some(victim) = shard.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| *k) {
                    shard.remove(&victim);
                }
            }
        }
        shard.insert(
            key,
            Slot {
                hit,
                expires: now + ttl,
            },
        );
    }

    /// Empties the cache (on reload: the chain may decide differently now).
    pub fn clear(&self) {
        for shard in &self.shards {
            shard.write().unwrap_or_else(|p| p.into_inner()).clear();
        }
    }

    /// Drops every success cached for user `user_id` of chain entry `entry` (its credential
    /// version changed, or it was disabled).
    pub fn invalidate_user(&self, entry: &str, user_id: &str) {
        for shard in &self.shards {
            shard
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .retain(|_, s| match &s.hit {
                    CacheHit::Success(ok) => !(ok.entry == entry && ok.user.id == user_id),
                    CacheHit::Failure => true,
                });
        }
    }

    /// Number of entries held (fresh or not yet swept).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use auth_core::User;

    fn alice() -> User {
        let mut u = User::new("alice")
            .with_email("alice@example.org")
            .with_display_name("Alice Liddell")
            .with_groups(["staff", "admins"]);
        u.id = "uid-42".into();
        u.backend = "ldap-main".into();
        u.attributes
            .insert("department".into(), vec!["Wonderland".into()]);
        u
    }

    // The credential cache: successes for `credentials_ttl`, failures only for `negative_ttl`.

    use std::time::{Duration, Instant};

    use crate::config::model::CacheConfig;
    use crate::credential_cache::{CacheHit, CredentialCache};

    fn cache(ttl: Duration, negative: Duration) -> CredentialCache {
        CredentialCache::from_config(&CacheConfig {
            credentials_ttl: auth_core::Duration(ttl),
            negative_ttl: auth_core::Duration(negative),
        })
    }

    fn success(hit: Option<CacheHit>) -> std::sync::Arc<crate::credential_cache::CachedSuccess> {
        match hit {
            Some(CacheHit::Success(ok)) => ok,
            other => panic!("expected a cached success, got {other:?}"),
        }
    }

    #[test]
    fn hit_returns_what_the_chain_answered() {
        let c = cache(Duration::from_secs(60), Duration::ZERO);
        assert!(c.get("alice", b"s3cret").is_none());
        c.insert_success("alice", b"s3cret", "ldap-main", &alice(), Some("v7"));
        let ok = success(c.get("alice", b"s3cret"));
        assert_eq!(ok.entry, "ldap-main");
        assert_eq!(*ok.user, alice());
        assert_eq!(ok.credential_version.as_deref(), Some("v7"));
    }

    #[test]
    fn different_password_or_username_misses() {
        let c = cache(Duration::from_secs(60), Duration::ZERO);
        c.insert_success("alice", b"s3cret", "ldap-main", &alice(), None);
        assert!(c.get("alice", b"s3cret!").is_none());
        assert!(c.get("alice", b"S3cret").is_none());
        assert!(c.get("alice", b"").is_none());
        assert!(c.get("bob", b"s3cret").is_none());
        // Splitting the same bytes differently is another pair, NUL bytes included.
        c.insert_success("ab", b"c", "e", &alice(), None);
        assert!(c.get("a", b"bc").is_none());
        c.insert_success("alice", b"x\0y", "e", &alice(), None);
        assert!(c.get("alice\0x", b"y").is_none());
        assert!(c.get("alice", b"x\0y").is_some());
    }

    #[test]
    fn entries_expire() {
        let c = cache(Duration::from_millis(200), Duration::ZERO);
        c.insert_success("alice", b"pw", "e", &alice(), None);
        assert!(c.get("alice", b"pw").is_some());
        std::thread::sleep(Duration::from_millis(250));
        assert!(c.get("alice", b"pw").is_none());
    }

    #[test]
    fn failures_are_never_cached_with_negative_ttl_zero() {
        let c = cache(Duration::from_secs(60), Duration::ZERO);
        c.insert_failure("alice", b"wrong");
        assert!(c.get("alice", b"wrong").is_none());
        assert!(c.is_empty());
    }

    #[test]
    fn failures_are_cached_for_negative_ttl() {
        let c = cache(Duration::from_secs(60), Duration::from_millis(200));
        c.insert_failure("alice", b"wrong");
        assert!(matches!(c.get("alice", b"wrong"), Some(CacheHit::Failure)));
        std::thread::sleep(Duration::from_millis(250));
        assert!(c.get("alice", b"wrong").is_none());
    }

    #[test]
    fn ttl_zero_disables_the_cache() {
        let c = cache(Duration::ZERO, Duration::from_secs(60));
        assert!(!c.is_enabled());
        c.insert_success("alice", b"pw", "e", &alice(), None);
        c.insert_failure("bob", b"pw");
        assert!(c.get("alice", b"pw").is_none());
        assert!(c.get("bob", b"pw").is_none());
        assert!(c.is_empty());
    }

    #[test]
    fn clear_empties_the_cache() {
        let c = cache(Duration::from_secs(60), Duration::from_secs(60));
        c.insert_success("alice", b"pw", "e", &alice(), None);
        c.insert_failure("bob", b"pw");
        c.clear();
        assert!(c.get("alice", b"pw").is_none());
        assert!(c.get("bob", b"pw").is_none());
    }

    #[test]
    fn invalidate_user_drops_only_that_user() {
        let c = cache(Duration::from_secs(60), Duration::ZERO);
        let mut bob = alice();
        bob.id = "uid-7".into();
        c.insert_success("alice", b"pw1", "ldap-main", &alice(), None);
        c.insert_success("alice@example.org", b"pw1", "ldap-main", &alice(), None);
        c.insert_success("bob", b"pw", "ldap-main", &bob, None);
        c.insert_success("alice", b"pw1", "local", &alice(), None);
        c.invalidate_user("ldap-main", "uid-42");
        assert!(c.get("alice@example.org", b"pw1").is_none());
        assert!(c.get("bob", b"pw").is_some());
        // Same user id in another entry is another user.
        assert_eq!(success(c.get("alice", b"pw1")).entry, "local");
    }

    #[test]
    fn size_is_bounded() {
        let cfg = CacheConfig {
            credentials_ttl: auth_core::Duration::from_secs(60),
            negative_ttl: auth_core::Duration::from_secs(60),
        };
        let c = CredentialCache::with_capacity(&cfg, 1000);
        for i in 0..20_000 {
            c.insert_failure(&format!("user{i}"), b"pw");
        }
        assert!(c.len() <= 1000, "{} entries", c.len());
        assert!(c.len() >= 500, "{} entries", c.len());
        c.insert_success("alice", b"pw", "e", &alice(), None);
        assert!(c.get("alice", b"pw").is_some(), "the newest entry is kept");
    }

    #[test]
    fn cache_is_keyed_without_the_password() {
        let c = cache(Duration::from_secs(60), Duration::ZERO);
        c.insert_success(
            "alice",
            b"correct horse battery staple",
            "e",
            &alice(),
            None,
        );
        let debug = format!("{c:?}");
        assert!(!debug.contains("correct horse"));
        // Two caches (two processes) derive different keys, yet each answers its own.
        let d = cache(Duration::from_secs(60), Duration::ZERO);
        assert!(d.get("alice", b"correct horse battery staple").is_none());
    }

    #[test]
    fn get_is_cheap() {
        let c = cache(Duration::from_secs(60), Duration::ZERO);
        for i in 0..1000 {
            c.insert_success(&format!("user{i}"), b"pw", "e", &alice(), None);
        }
        let names: Vec<String> = (0..1000).map(|i| format!("user{i}")).collect();
        let n = 200_000;
        let start = Instant::now();
        for i in 0..n {
            assert!(c.get(&names[i % names.len()], b"pw").is_some());
        }
        let per = start.elapsed() / n as u32;
        eprintln!("credential cache get: {per:?} per hit");
        assert!(per < Duration::from_micros(200), "get took {per:?}");
    }
}

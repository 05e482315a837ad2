//! Brute-force protection: after `max_failures` failed logins for one (username, client IP)
//! within `window`, that pair is locked out for `lockout`. Usernames are canonicalized (see
//! [`canonical_username`]) so case, accent and compatibility variants share one counter.
//!
//! Stores: `memory` (one process; bounded however many usernames are tried, oldest entries
//! evicted) and `redis://...` (INCR + expiry, shared by replicas).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ::redis::aio::ConnectionManager;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use sha2::{Digest, Sha256};
use unicode_normalization::UnicodeNormalization;

use crate::config::model::ProtectionConfig;

/// Default cap on tracked (username, IP) pairs in the memory store.
pub const DEFAULT_MEMORY_CAPACITY: usize = 100_000;
const SHARDS: usize = 16;
const KEY_PREFIX: &str = "gateway:lockout:";

/// Why the lockout store failed.
#[derive(Debug, thiserror::Error)]
pub enum ProtectionError {
    /// `protection.store` names no known store.
    #[error("unknown protection store `{0}`; expected `memory` or `redis://...`")]
    UnknownStore(String),
    /// `protection.max_failures` is 0.
    #[error("protection.max_failures must be at least 1")]
    InvalidConfig,
    /// The store is unreachable: the caller must refuse the login attempt (fail closed).
    #[error("lockout store unavailable: {0}")]
    Unavailable(String),
}

/// `username` as counters see it: trimmed, lower-cased, compatibility-decomposed (NFKD) with
/// the combining marks dropped, `ı` read as `i` and `ß` as `s`, then NFKC. Deliberately coarser
/// than any backend's own matching: MariaDB's `utf8mb4_general_ci` finds `alice` for `alicé`,
/// `ÀLICE` and `alıce`, LDAP ignores case, so each such spelling must count against — and be
/// locked with — the same account. Two distinct users that fold together merely share a
/// counter.
pub fn canonical_username(username: &str) -> String {
    let username = username.trim();
    if username.is_ascii() {
        // ASCII has no marks or compatibility forms.
        return username.to_ascii_lowercase();
    }
    let folded: String = username
        .to_lowercase()
        .nfkd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            '\u{0131}' => 'i',
            '\u{00DF}' => 's',
            c => c,
        })
        .collect();
    folded.nfkc().collect()
}

/// The counter key of (username, ip): a digest, so memory stays small and usernames never
/// reach the store in clear.
fn pair_key(username: &str, ip: IpAddr) -> [u8; 16] {
    let ip = match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    let mut h = Sha256::new();
    h.update(canonical_username(username).as_bytes());
    h.update([0]);
    match ip {
        IpAddr::V4(v4) => h.update(v4.octets()),
        IpAddr::V6(v6) => h.update(v6.octets()),
    }
    let digest = h.finalize();
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

/// The lockout policy and its counters. Check [`is_locked`](Lockout::is_locked) before trying
/// credentials, then record the outcome.
pub struct Lockout {
    max_failures: u32,
    window: Duration,
    lockout: Duration,
    store: Store,
}

impl fmt::Debug for Lockout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lockout")
            .field("max_failures", &self.max_failures)
            .field("window", &self.window)
            .field("lockout", &self.lockout)
            .finish_non_exhaustive()
    }
}

enum Store {
    Memory(MemoryStore),
    Redis(ConnectionManager),
}

#[derive(Clone, Copy)]
struct Counter {
    failures: u32,
    window_start: Instant,
    locked_until: Option<Instant>,
    /// Insertion stamp matching this key's live slot in `Shard::order`.
    seq: u64,
}

struct Shard {
    map: HashMap<[u8; 16], Counter>,
    /// Keys in insertion order with their stamps, for eviction of the oldest. A slot whose
    /// stamp no longer matches the map is stale and skipped.
    order: VecDeque<([u8; 16], u64)>,
    next_seq: u64,
}

struct MemoryStore {
    shards: Vec<Mutex<Shard>>,
    per_shard: usize,
}

impl MemoryStore {
    fn new(capacity: usize) -> Self {
        let per_shard = (capacity / SHARDS).max(1);
        MemoryStore {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        map: HashMap::new(),
                        order: VecDeque::new(),
                        next_seq: 0,
                    })
                })
                .collect(),
            per_shard,
        }
    }

    fn shard(&self, key: &[u8; 16]) -> std::sync::MutexGuard<'_, Shard> {
        let shard = &self.shards[key[0] as usize % SHARDS];
        shard.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).map.len())
            .sum()
    }
}

impl Shard {
    /// Makes room for one more key: drops the oldest entries, sparing a few that are locked
    /// right now so a flood of fresh usernames does not simply unlock a victim.
    fn make_room(&mut self, cap: usize, now: Instant) {
        let mut spared = 0;
        while self.map.len() >= cap {
            let Some((oldest, seq)) = self.order.pop_front() else {
                // Order and map disagree (cannot normally happen): start afresh.
                self.map.clear();
                return;
            };
            let Some(c) = self.map.get(&oldest).filter(|c| c.seq == seq) else {
                continue;
            };
            if c.locked_until.is_some_and(|t| t > now) && spared < 8 {
                spared += 1;
                self.order.push_back((oldest, seq));
            } else {
                self.map.remove(&oldest);
            }
        }
        if self.order.len() > 2 * cap {
            let map = &self.map;
            self.order
                .retain(|(k, seq)| map.get(k).is_some_and(|c| c.seq == *seq));
        }
    }

    /// The counter of `key`, inserted (making room first) when absent.
    fn counter(&mut self, key: [u8; 16], cap: usize, now: Instant) -> &mut Counter {
        if !self.map.contains_key(&key) {
            self.make_room(cap, now);
        }
        let seq = self.next_seq;
        let order = &mut self.order;
        let next_seq = &mut self.next_seq;
        self.map.entry(key).or_insert_with(|| {
            *next_seq += 1;
            order.push_back((key, seq));
            Counter {
                failures: 0,
                window_start: now,
                locked_until: None,
                seq,
            }
        })
    }
}

impl Lockout {
    /// Builds the lockout from `protection:`, with the memory store capped at
    /// [`DEFAULT_MEMORY_CAPACITY`] pairs.
    pub fn from_config(cfg: &ProtectionConfig) -> Result<Lockout, ProtectionError> {
        Self::with_capacity(cfg, DEFAULT_MEMORY_CAPACITY)
    }

    /// As [`from_config`](Self::from_config), tracking at most `capacity` pairs in memory (16
    /// at least).
    pub fn with_capacity(
        cfg: &ProtectionConfig,
        capacity: usize,
    ) -> Result<Lockout, ProtectionError> {
        if cfg.max_failures == 0 {
            return Err(ProtectionError::InvalidConfig);
        }
        let spec = cfg.store.value.trim();
        let store = if spec == "memory" {
            Store::Memory(MemoryStore::new(capacity))
        } else if spec.starts_with("redis://") || spec.starts_with("rediss://") {
            Store::Redis(
                crate::session::redis_manager(
                    spec,
                    cfg.redis_ca_file
                        .as_ref()
                        .map(|f| std::path::Path::new(&f.value)),
                )
                .map_err(ProtectionError::Unavailable)?,
            )
        } else {
            return Err(ProtectionError::UnknownStore(spec.to_string()));
        };
        Ok(Lockout {
            max_failures: cfg.max_failures,
            window: cfg.window.get(),
            lockout: cfg.lockout.get(),
            store,
        })
    }

    /// Whether (`username`, `ip`) is locked out now. `Err` when the store is unreachable: the
    /// caller must then refuse the attempt.
    pub async fn is_locked(&self, username: &str, ip: IpAddr) -> Result<bool, ProtectionError> {
        let key = pair_key(username, ip);
        match &self.store {
            Store::Memory(m) => {
                let now = Instant::now();
                let shard = m.shard(&key);
                Ok(shard
                    .map
                    .get(&key)
                    .and_then(|c| c.locked_until)
                    .is_some_and(|t| t > now))
            }
            Store::Redis(conn) => {
                let mut conn = conn.clone();
                let locked: bool = ::redis::cmd("EXISTS")
                    .arg(redis_key("lock", &key))
                    .query_async(&mut conn)
                    .await
                    .map_err(unavailable)?;
                Ok(locked)
            }
        }
    }

    /// Counts a failed login of (`username`, `ip`); the `max_failures`-th within `window`
    /// starts a lockout. Returns whether the pair is now locked.
    pub async fn record_failure(
        &self,
        username: &str,
        ip: IpAddr,
    ) -> Result<bool, ProtectionError> {
        let key = pair_key(username, ip);
        match &self.store {
            Store::Memory(m) => {
                let now = Instant::now();
                let mut shard = m.shard(&key);
                let c = shard.counter(key, m.per_shard, now);
                if c.locked_until.is_some_and(|t| t > now) {
                    return Ok(true);
                }
                if c.locked_until.is_some() || now.duration_since(c.window_start) >= self.window {
                    c.failures = 0;
                    c.window_start = now;
                    c.locked_until = None;
                }
                c.failures += 1;
                if c.failures >= self.max_failures {
                    c.locked_until = Some(now + self.lockout);
                    return Ok(true);
                }
                Ok(false)
            }
            Store::Redis(conn) => {
                let mut conn = conn.clone();
                let fails = redis_key("fail", &key);
                // SET NX then INCR in one transaction: the window starts at the first failure
                // and the counter can never be left without an expiry.
                let (count,): (u64,) = ::redis::pipe()
                    .atomic()
                    .cmd("SET")
                    .arg(&fails)
                    .arg(0)
                    .arg("PX")
                    .arg(millis(self.window))
                    .arg("NX")
                    .ignore()
                    .incr(&fails, 1)
                    .query_async(&mut conn)
                    .await
                    .map_err(unavailable)?;
                if count >= u64::from(self.max_failures) {
                    let _: () = ::redis::pipe()
                        .atomic()
                        .cmd("SET")
                        .arg(redis_key("lock", &key))
                        .arg(1)
                        .arg("PX")
                        .arg(millis(self.lockout))
                        .ignore()
                        .del(&fails)
                        .ignore()
                        .query_async(&mut conn)
                        .await
                        .map_err(unavailable)?;
                    return Ok(true);
                }
                Ok(false)
            }
        }
    }

    /// Clears the failures of (`username`, `ip`) after a successful login.
    pub async fn record_success(&self, username: &str, ip: IpAddr) -> Result<(), ProtectionError> {
        let key = pair_key(username, ip);
        match &self.store {
            Store::Memory(m) => {
                // Its slot in `order` goes stale and is skipped or compacted away.
                m.shard(&key).map.remove(&key);
                Ok(())
            }
            Store::Redis(conn) => {
                let mut conn = conn.clone();
                let _: () = ::redis::cmd("DEL")
                    .arg(redis_key("fail", &key))
                    .arg(redis_key("lock", &key))
                    .query_async(&mut conn)
                    .await
                    .map_err(unavailable)?;
                Ok(())
            }
        }
    }

    /// Number of (username, IP) pairs tracked in memory; `None` for shared stores.
    pub fn tracked(&self) -> Option<usize> {
        match &self.store {
            Store::Memory(m) => Some(m.len()),
            Store::Redis(_) => None,
        }
    }
}

fn redis_key(kind: &str, key: &[u8; 16]) -> String {
    format!("{KEY_PREFIX}{kind}:{}", B64.encode(key))
}

fn millis(d: Duration) -> u64 {
    (d.as_millis() as u64).max(1)
}

fn unavailable(e: ::redis::RedisError) -> ProtectionError {
    ProtectionError::Unavailable(e.to_string())
}

//! Brute-force protection, two budgets counted on every failed password login:
//! - per (username, client IP): after `max_failures` within `window`, that pair is locked out
//!   for `lockout`. Usernames are canonicalized (see [`canonical_username`]) so case, accent and
//!   compatibility variants share one counter;
//! - per client (`max_failures_per_ip`, default 10 x `max_failures`): a client spraying many
//!   usernames is locked out as a whole for `lockout` (an IPv6 client by its /64, which one
//!   subscriber usually holds entirely).
//!
//! While either is locked every password attempt from there is refused like a wrong password,
//! the right one included; a success clears only its pair's counter (one valid account must not
//! reset a spray's budget). [`Lockout::refusal_delay`] makes that refusal last as long as a
//! real one.
//!
//! Stores: `memory` (one process; bounded however many usernames and clients are tried, oldest
//! entries evicted) and `redis://...` (INCR + expiry, shared by replicas).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::Rng;

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
    /// `protection.max_failures` or `protection.max_failures_per_ip` is 0.
    #[error("protection.max_failures and protection.max_failures_per_ip must be at least 1")]
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
    let ip = canonical_ip(ip);
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

/// The counter key of a client: its IPv4 address, or its IPv6 /64.
fn client_key(ip: IpAddr) -> [u8; 16] {
    let mut h = Sha256::new();
    h.update(b"client\0");
    match canonical_ip(ip) {
        IpAddr::V4(v4) => h.update(v4.octets()),
        IpAddr::V6(v6) => h.update(&v6.octets()[..8]),
    }
    let digest = h.finalize();
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

/// An IPv4 client seen through an IPv6 socket is the same client.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// The lockout policy and its counters. Check [`is_locked`](Lockout::is_locked) before trying
/// credentials, then record the outcome.
pub struct Lockout {
    max_failures: u32,
    max_failures_per_ip: u32,
    window: Duration,
    lockout: Duration,
    store: Store,
    refusals: RefusalTimes,
}

impl fmt::Debug for Lockout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lockout")
            .field("max_failures", &self.max_failures)
            .field("max_failures_per_ip", &self.max_failures_per_ip)
            .field("window", &self.window)
            .field("lockout", &self.lockout)
            .finish_non_exhaustive()
    }
}

enum Store {
    /// Pairs and clients in two maps, each bounded on its own.
    Memory {
        pairs: MemoryStore,
        clients: MemoryStore,
    },
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

impl Counter {
    fn locked(&self, now: Instant) -> bool {
        self.locked_until.is_some_and(|t| t > now)
    }

    /// Counts one failure; returns whether the key is now locked.
    fn fail(&mut self, now: Instant, max: u32, window: Duration, lockout: Duration) -> bool {
        if self.locked(now) {
            return true;
        }
        if self.locked_until.is_some() || now.duration_since(self.window_start) >= window {
            self.failures = 0;
            self.window_start = now;
            self.locked_until = None;
        }
        self.failures += 1;
        if self.failures >= max {
            self.locked_until = Some(now + lockout);
            return true;
        }
        false
    }
}

impl MemoryStore {
    fn locked(&self, key: &[u8; 16], now: Instant) -> bool {
        self.shard(key).map.get(key).is_some_and(|c| c.locked(now))
    }

    fn fail(
        &self,
        key: [u8; 16],
        now: Instant,
        max: u32,
        window: Duration,
        lockout: Duration,
    ) -> bool {
        let mut shard = self.shard(&key);
        shard
            .counter(key, self.per_shard, now)
            .fail(now, max, window, lockout)
    }
}

/// How long recent refused chain runs took, so that a locked answer can take as long: a locked
/// pair answered in 0.1 ms against 38 ms for a wrong password tells an attacker which accounts
/// are locked. A ring of the last [`REFUSAL_SAMPLES`] durations; a locked answer sleeps for one
/// picked at random, which reproduces their spread as well as their typical value and burns no
/// CPU.
struct RefusalTimes {
    ring: Mutex<(Vec<Duration>, usize)>,
}

/// How many refused chain runs [`RefusalTimes`] remembers.
const REFUSAL_SAMPLES: usize = 64;

/// The delay of a locked answer before any refusal was timed (a replica that learns of a lock
/// through Redis before it has seen a wrong password itself): a typical password hash.
const DEFAULT_REFUSAL_DELAY: Duration = Duration::from_millis(50);

/// Longest delay a locked answer takes, whatever was measured (a backend timing out must not
/// make every locked answer hold a connection for seconds).
const MAX_REFUSAL_DELAY: Duration = Duration::from_secs(2);

impl RefusalTimes {
    fn new() -> Self {
        RefusalTimes {
            ring: Mutex::new((Vec::with_capacity(REFUSAL_SAMPLES), 0)),
        }
    }

    fn note(&self, took: Duration) {
        let mut guard = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        let (ring, next) = &mut *guard;
        if ring.len() < REFUSAL_SAMPLES {
            ring.push(took);
        } else {
            ring[*next] = took;
        }
        *next = (*next + 1) % REFUSAL_SAMPLES;
    }

    fn pick(&self) -> Duration {
        let guard = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        let ring = &guard.0;
        if ring.is_empty() {
            return DEFAULT_REFUSAL_DELAY;
        }
        ring[rand::thread_rng().gen_range(0..ring.len())].min(MAX_REFUSAL_DELAY)
    }
}

impl Lockout {
    /// Builds the lockout from `protection:`, with the memory store capped at
    /// [`DEFAULT_MEMORY_CAPACITY`] pairs.
    pub fn from_config(cfg: &ProtectionConfig) -> Result<Lockout, ProtectionError> {
        Self::with_capacity(cfg, DEFAULT_MEMORY_CAPACITY)
    }

    /// As [`from_config`](Self::from_config), tracking at most `capacity` pairs (and as many
    /// clients) in memory (16 at least).
    pub fn with_capacity(
        cfg: &ProtectionConfig,
        capacity: usize,
    ) -> Result<Lockout, ProtectionError> {
        let max_failures_per_ip = cfg.max_failures_per_ip();
        if cfg.max_failures == 0 || max_failures_per_ip == 0 {
            return Err(ProtectionError::InvalidConfig);
        }
        let spec = cfg.store.value.trim();
        let store = if spec == "memory" {
            Store::Memory {
                pairs: MemoryStore::new(capacity),
                clients: MemoryStore::new(capacity),
            }
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
            max_failures_per_ip,
            window: cfg.window.get(),
            lockout: cfg.lockout.get(),
            store,
            refusals: RefusalTimes::new(),
        })
    }

    /// Records how long a refused chain run took (a wrong password, an unknown user).
    pub fn note_refusal(&self, took: Duration) {
        self.refusals.note(took);
    }

    /// How long a locked answer should take: one of the recent refused chain runs' durations,
    /// picked at random. The caller must sleep that long before refusing, so the answer cannot
    /// be told apart by its timing.
    pub fn refusal_delay(&self) -> Duration {
        self.refusals.pick()
    }

    /// Whether (`username`, `ip`) is locked out now, or the client `ip` as a whole. `Err` when
    /// the store is unreachable: the caller must then refuse the attempt.
    pub async fn is_locked(&self, username: &str, ip: IpAddr) -> Result<bool, ProtectionError> {
        let key = pair_key(username, ip);
        let client = client_key(ip);
        match &self.store {
            Store::Memory { pairs, clients } => {
                let now = Instant::now();
                Ok(pairs.locked(&key, now) || clients.locked(&client, now))
            }
            Store::Redis(conn) => {
                let mut conn = conn.clone();
                let locked: u32 = ::redis::cmd("EXISTS")
                    .arg(redis_key("lock", &key))
                    .arg(redis_key("iplock", &client))
                    .query_async(&mut conn)
                    .await
                    .map_err(unavailable)?;
                Ok(locked > 0)
            }
        }
    }

    /// Counts a failed login of (`username`, `ip`) against the pair and against the client:
    /// the `max_failures`-th of the pair or the `max_failures_per_ip`-th of the client within
    /// `window` starts a lockout. Returns whether the attempt's pair or client is now locked.
    pub async fn record_failure(
        &self,
        username: &str,
        ip: IpAddr,
    ) -> Result<bool, ProtectionError> {
        let key = pair_key(username, ip);
        let client = client_key(ip);
        let (window, lockout) = (self.window, self.lockout);
        match &self.store {
            Store::Memory { pairs, clients } => {
                let now = Instant::now();
                let pair = pairs.fail(key, now, self.max_failures, window, lockout);
                let whole = clients.fail(client, now, self.max_failures_per_ip, window, lockout);
                Ok(pair || whole)
            }
            Store::Redis(conn) => {
                let mut conn = conn.clone();
                let fails = redis_key("fail", &key);
                let ip_fails = redis_key("ipfail", &client);
                // SET NX then INCR in one transaction: the window starts at the first failure
                // and the counters can never be left without an expiry.
                let (count, ip_count): (u64, u64) = ::redis::pipe()
                    .atomic()
                    .cmd("SET")
                    .arg(&fails)
                    .arg(0)
                    .arg("PX")
                    .arg(millis(window))
                    .arg("NX")
                    .ignore()
                    .incr(&fails, 1)
                    .cmd("SET")
                    .arg(&ip_fails)
                    .arg(0)
                    .arg("PX")
                    .arg(millis(window))
                    .arg("NX")
                    .ignore()
                    .incr(&ip_fails, 1)
                    .query_async(&mut conn)
                    .await
                    .map_err(unavailable)?;
                let mut locked = false;
                for (reached, lock, counter) in [
                    (
                        count >= u64::from(self.max_failures),
                        redis_key("lock", &key),
                        fails,
                    ),
                    (
                        ip_count >= u64::from(self.max_failures_per_ip),
                        redis_key("iplock", &client),
                        ip_fails,
                    ),
                ] {
                    if !reached {
                        continue;
                    }
                    locked = true;
                    let _: () = ::redis::pipe()
                        .atomic()
                        .cmd("SET")
                        .arg(lock)
                        .arg(1)
                        .arg("PX")
                        .arg(millis(lockout))
                        .ignore()
                        .del(&counter)
                        .ignore()
                        .query_async(&mut conn)
                        .await
                        .map_err(unavailable)?;
                }
                Ok(locked)
            }
        }
    }

    /// Clears the failures of (`username`, `ip`) after a successful login. The client's own
    /// count stays: one valid account must not reset a spray's budget.
    pub async fn record_success(&self, username: &str, ip: IpAddr) -> Result<(), ProtectionError> {
        let key = pair_key(username, ip);
        match &self.store {
            Store::Memory { pairs, .. } => {
                // Its slot in `order` goes stale and is skipped or compacted away.
                pairs.shard(&key).map.remove(&key);
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
            Store::Memory { pairs, .. } => Some(pairs.len()),
            Store::Redis(_) => None,
        }
    }

    /// Number of clients tracked in memory; `None` for shared stores.
    pub fn tracked_clients(&self) -> Option<usize> {
        match &self.store {
            Store::Memory { clients, .. } => Some(clients.len()),
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

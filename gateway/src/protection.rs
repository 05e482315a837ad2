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
//!
//! Counters are keyed by digests: a username reaches the store in clear only in the record of
//! a lockout in force (canonical, at most [`MAX_LABEL_CHARS`] characters), so that an operator
//! can list and clear lockouts ([`Lockout::list`], [`Lockout::clear_user`]).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::Rng;

use ::redis::aio::ConnectionManager;
use auth_storage::StoreUrl;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use sha2::{Digest, Sha256};
use unicode_normalization::UnicodeNormalization;

use crate::config::model::{ProtectionConfig, StoreSetting};

/// Longest username kept in a lockout's record, in characters.
pub(crate) const MAX_LABEL_CHARS: usize = 128;

/// A lockout in force, as `authgate lockouts list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LockRecord {
    /// The canonical username; `None` for a whole-client lockout (a password spray).
    pub user: Option<String>,
    /// The client: an address, or an IPv6 client's /64.
    pub client: String,
    /// Seconds until it ends.
    pub remaining_secs: u64,
}

/// A lockout that a failure just started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockStarted {
    /// The canonical username; `None` when the client as a whole is locked.
    pub user: Option<String>,
    /// The client as [`LockRecord::client`] shows it.
    pub client: String,
    /// How long it lasts.
    pub lasts: Duration,
    /// Its counter.
    key: [u8; 16],
}

/// What [`Lockout::record_failure_detail`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FailureRecord {
    /// Whether the pair or the client is now locked.
    pub locked: bool,
    /// The lockouts this failure started (pair, client, both or neither).
    pub started: Vec<LockStarted>,
}

/// Default cap on tracked (username, IP) pairs in the memory store.
pub(crate) const DEFAULT_MEMORY_CAPACITY: usize = 100_000;
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
pub(crate) fn canonical_username(username: &str) -> String {
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
    let ip = ip.to_canonical();
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
    match ip.to_canonical() {
        IpAddr::V4(v4) => h.update(v4.octets()),
        IpAddr::V6(v6) => h.update(&v6.octets()[..8]),
    }
    let digest = h.finalize();
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

/// The record's username: canonical, capped.
fn label_user(username: &str) -> String {
    canonical_username(username)
        .chars()
        .take(MAX_LABEL_CHARS)
        .collect()
}

/// The client as records show it: its address, or an IPv6 client's /64.
fn label_client(ip: IpAddr, whole_client: bool) -> String {
    match ip.to_canonical() {
        IpAddr::V6(v6) if whole_client => {
            let net = ipnet::Ipv6Net::new(v6, 64).map(|n| n.trunc());
            net.map(|n| n.to_string())
                .unwrap_or_else(|_| v6.to_string())
        }
        ip => ip.to_string(),
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

struct Counter {
    failures: u32,
    window_start: Instant,
    locked_until: Option<Instant>,
    /// Insertion stamp matching this key's live slot in `Shard::order`.
    seq: u64,
    /// Who is locked, set when a lockout starts.
    label: Option<Box<(Option<String>, String)>>,
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
                label: None,
            }
        })
    }
}

impl Counter {
    fn locked(&self, now: Instant) -> bool {
        self.locked_until.is_some_and(|t| t > now)
    }

    /// Counts one failure; returns whether the key is now locked, and whether this failure
    /// started the lockout.
    fn fail(
        &mut self,
        now: Instant,
        max: u32,
        window: Duration,
        lockout: Duration,
    ) -> (bool, bool) {
        if self.locked(now) {
            return (true, false);
        }
        if self.locked_until.is_some() || now.duration_since(self.window_start) >= window {
            self.failures = 0;
            self.window_start = now;
            self.locked_until = None;
            self.label = None;
        }
        self.failures += 1;
        if self.failures >= max {
            self.locked_until = Some(now + lockout);
            return (true, true);
        }
        (false, false)
    }
}

impl MemoryStore {
    fn locked(&self, key: &[u8; 16], now: Instant) -> bool {
        self.shard(key).map.get(key).is_some_and(|c| c.locked(now))
    }

    /// Counts a failure of `key`; a lockout it starts is recorded under `label`.
    fn fail(
        &self,
        key: [u8; 16],
        now: Instant,
        limits: (u32, Duration, Duration),
        label: impl FnOnce() -> (Option<String>, String),
    ) -> (bool, bool) {
        let (max, window, lockout) = limits;
        let mut shard = self.shard(&key);
        let counter = shard.counter(key, self.per_shard, now);
        let (locked, started) = counter.fail(now, max, window, lockout);
        if started {
            counter.label = Some(Box::new(label()));
        }
        (locked, started)
    }

    /// The lockouts in force.
    fn list(&self, now: Instant, out: &mut Vec<LockRecord>) {
        for shard in &self.shards {
            let shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            for c in shard.map.values() {
                if let (Some(until), Some(label)) = (c.locked_until, &c.label)
                    && until > now
                {
                    out.push(LockRecord {
                        user: label.0.clone(),
                        client: label.1.clone(),
                        remaining_secs: until.duration_since(now).as_secs().max(1),
                    });
                }
            }
        }
    }

    /// Removes the lockouts in force of `user` (canonical); returns the clients they held.
    fn clear_user(&self, user: &str, now: Instant) -> Vec<String> {
        let mut cleared = Vec::new();
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            shard.map.retain(|_, c| {
                let hit = c.locked(now)
                    && c.label
                        .as_ref()
                        .is_some_and(|l| l.0.as_deref() == Some(user));
                if hit && let Some(label) = &c.label {
                    cleared.push(label.1.clone());
                }
                !hit
            });
        }
        cleared
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
        let store = match cfg.store.value.get() {
            Some(StoreSetting::Memory) => Store::Memory {
                pairs: MemoryStore::new(capacity),
                clients: MemoryStore::new(capacity),
            },
            Some(StoreSetting::Url(StoreUrl::Redis(url))) => Store::Redis(
                auth_storage::redis::lazy_manager(
                    url,
                    cfg.redis_ca_file
                        .as_ref()
                        .map(|f| std::path::Path::new(&f.value)),
                )
                .map_err(ProtectionError::Unavailable)?,
            ),
            _ => {
                let shown = auth_storage::redact(cfg.store.value.written().trim());
                return Err(ProtectionError::UnknownStore(shown));
            }
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
        Ok(self.record_failure_detail(username, ip).await?.locked)
    }

    /// As [`record_failure`](Self::record_failure), also saying which lockouts this failure
    /// started (for the audit trail).
    pub async fn record_failure_detail(
        &self,
        username: &str,
        ip: IpAddr,
    ) -> Result<FailureRecord, ProtectionError> {
        let key = pair_key(username, ip);
        let client = client_key(ip);
        let (window, lockout) = (self.window, self.lockout);
        let pair_label = || (Some(label_user(username)), label_client(ip, false));
        let client_label = || (None, label_client(ip, true));
        let mut record = FailureRecord::default();
        match &self.store {
            Store::Memory { pairs, clients } => {
                let now = Instant::now();
                let pair = pairs.fail(key, now, (self.max_failures, window, lockout), pair_label);
                let whole = clients.fail(
                    client,
                    now,
                    (self.max_failures_per_ip, window, lockout),
                    client_label,
                );
                record.locked = pair.0 || whole.0;
                for (started, label, key) in [
                    (pair.1, pair_label(), key),
                    (whole.1, client_label(), client),
                ] {
                    if started {
                        record.started.push(LockStarted {
                            user: label.0,
                            client: label.1,
                            lasts: lockout,
                            key,
                        });
                    }
                }
                Ok(record)
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
                for (reached, lock, counter, label, key) in [
                    (
                        count >= u64::from(self.max_failures),
                        redis_key("lock", &key),
                        fails,
                        pair_label(),
                        key,
                    ),
                    (
                        ip_count >= u64::from(self.max_failures_per_ip),
                        redis_key("iplock", &client),
                        ip_fails,
                        client_label(),
                        client,
                    ),
                ] {
                    if !reached {
                        continue;
                    }
                    record.locked = true;
                    let value = serde_json::json!({"user": label.0, "client": label.1}).to_string();
                    record.started.push(LockStarted {
                        user: label.0,
                        client: label.1,
                        lasts: lockout,
                        key,
                    });
                    let _: () = ::redis::pipe()
                        .atomic()
                        .cmd("SET")
                        .arg(lock)
                        .arg(value)
                        .arg("PX")
                        .arg(millis(lockout))
                        .ignore()
                        .del(&counter)
                        .ignore()
                        .query_async(&mut conn)
                        .await
                        .map_err(unavailable)?;
                }
                Ok(record)
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

    /// The lockouts in force (pairs and clients), for `authgate lockouts list` and the
    /// `gateway_lockouts_active` gauge. Redis: a `SCAN` of the lockout keys.
    pub async fn list(&self) -> Result<Vec<LockRecord>, ProtectionError> {
        let mut out = Vec::new();
        match &self.store {
            Store::Memory { pairs, clients } => {
                let now = Instant::now();
                pairs.list(now, &mut out);
                clients.list(now, &mut out);
            }
            Store::Redis(conn) => {
                let mut conn = conn.clone();
                for key in redis_lock_keys(&mut conn).await? {
                    let (value, ttl): (Option<String>, i64) = ::redis::pipe()
                        .get(&key)
                        .pttl(&key)
                        .query_async(&mut conn)
                        .await
                        .map_err(unavailable)?;
                    let Some(value) = value else { continue };
                    if ttl <= 0 {
                        continue;
                    }
                    let v: serde_json::Value = serde_json::from_str(&value).unwrap_or_default();
                    out.push(LockRecord {
                        user: v["user"].as_str().map(str::to_string),
                        client: v["client"].as_str().unwrap_or("?").to_string(),
                        remaining_secs: (ttl as u64).div_ceil(1000),
                    });
                }
            }
        }
        out.sort_by(|a, b| (&a.user, &a.client).cmp(&(&b.user, &b.client)));
        Ok(out)
    }

    /// Ends the lockouts in force of `username` (canonicalized), from every client, with their
    /// failure counts. Returns the ones it ended. Whole-client lockouts stay.
    pub async fn clear_user(&self, username: &str) -> Result<Vec<LockRecord>, ProtectionError> {
        let user = label_user(username);
        match &self.store {
            Store::Memory { pairs, .. } => Ok(pairs
                .clear_user(&user, Instant::now())
                .into_iter()
                .map(|client| LockRecord {
                    user: Some(user.clone()),
                    client,
                    remaining_secs: 0,
                })
                .collect()),
            Store::Redis(conn) => {
                let mut conn = conn.clone();
                let mut cleared = Vec::new();
                for key in redis_lock_keys(&mut conn).await? {
                    let Some(digest) = key.strip_prefix(&format!("{KEY_PREFIX}lock:")) else {
                        continue;
                    };
                    let value: Option<String> = ::redis::cmd("GET")
                        .arg(&key)
                        .query_async(&mut conn)
                        .await
                        .map_err(unavailable)?;
                    let v: serde_json::Value =
                        serde_json::from_str(value.as_deref().unwrap_or("")).unwrap_or_default();
                    if v["user"].as_str() != Some(user.as_str()) {
                        continue;
                    }
                    let _: () = ::redis::cmd("DEL")
                        .arg(&key)
                        .arg(format!("{KEY_PREFIX}fail:{digest}"))
                        .query_async(&mut conn)
                        .await
                        .map_err(unavailable)?;
                    cleared.push(LockRecord {
                        user: Some(user.clone()),
                        client: v["client"].as_str().unwrap_or("?").to_string(),
                        remaining_secs: 0,
                    });
                }
                Ok(cleared)
            }
        }
    }

    /// Whether the lockout `started`, now past its time, ran out rather than being cleared by
    /// an operator (or evicted): the memory store knows; a shared store is assumed to have.
    pub fn ran_out(&self, started: &LockStarted) -> bool {
        match &self.store {
            Store::Memory { pairs, clients } => {
                let store = if started.user.is_some() {
                    pairs
                } else {
                    clients
                };
                let now = Instant::now();
                store
                    .shard(&started.key)
                    .map
                    .get(&started.key)
                    .is_some_and(|c| c.label.is_some() && c.locked_until.is_some_and(|t| t <= now))
            }
            Store::Redis(_) => true,
        }
    }

    /// Whether the store is the process's memory (`authgate lockouts` must then ask the running
    /// gateway through its admin listener).
    pub fn is_memory(&self) -> bool {
        matches!(self.store, Store::Memory { .. })
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

/// Every lockout key in force (`lock:` and `iplock:`), by `SCAN`.
async fn redis_lock_keys(conn: &mut ConnectionManager) -> Result<Vec<String>, ProtectionError> {
    let mut keys = Vec::new();
    for pattern in [
        format!("{KEY_PREFIX}lock:*"),
        format!("{KEY_PREFIX}iplock:*"),
    ] {
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<String>) = ::redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(conn)
                .await
                .map_err(unavailable)?;
            keys.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
    }
    keys.sort();
    keys.dedup();
    Ok(keys)
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

#[cfg(test)]
mod tests {
    //! The memory store's lockout logic; the scenarios every store must pass, run against memory
    //! and Redis alike, are in `tests/session/protection.rs`.

    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    use std::time::{Duration, Instant};

    use super::{Lockout, canonical_username};
    use crate::config::model::{ProtectionConfig, spanned};

    const IP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));
    const OTHER_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 11));

    fn config(store: &str, max: u32, window: Duration, lockout: Duration) -> ProtectionConfig {
        ProtectionConfig {
            max_failures: max,
            max_failures_per_ip: Some(u32::MAX),
            window: auth_core::Duration(window),
            lockout: auth_core::Duration(lockout),
            store: spanned(crate::config::Parsed::new(store)),
            redis_ca_file: None,
        }
    }

    /// Pairs lock after 5 failures, a client after `per_client`.
    fn per_ip(store: &str, per_client: u32) -> ProtectionConfig {
        ProtectionConfig {
            max_failures_per_ip: Some(per_client),
            ..config(store, 5, Duration::from_secs(60), Duration::from_secs(60))
        }
    }

    fn memory(max: u32, window: Duration, lockout: Duration) -> Lockout {
        Lockout::from_config(&config("memory", max, window, lockout)).expect("lockout")
    }

    async fn fail(l: &Lockout, user: &str, ip: IpAddr, times: u32) -> bool {
        let mut locked = false;
        for _ in 0..times {
            locked = l.record_failure(user, ip).await.expect("record");
        }
        locked
    }

    #[tokio::test]
    async fn failures_outside_the_window_do_not_count() {
        let l = memory(3, Duration::from_millis(400), Duration::from_secs(60));
        fail(&l, "alice", IP, 2).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(!fail(&l, "alice", IP, 2).await, "the window restarted");
        assert!(fail(&l, "alice", IP, 1).await);
    }

    #[tokio::test]
    async fn success_resets_the_counter() {
        let l = memory(3, Duration::from_secs(60), Duration::from_secs(60));
        fail(&l, "alice", IP, 2).await;
        l.record_success("alice", IP).await.expect("success");
        assert!(!fail(&l, "alice", IP, 2).await);
        assert!(fail(&l, "alice", IP, 1).await);
    }

    #[tokio::test]
    async fn distinct_ips_and_users_count_separately() {
        let l = memory(2, Duration::from_secs(60), Duration::from_secs(60));
        fail(&l, "alice", IP, 1).await;
        fail(&l, "alice", OTHER_IP, 1).await;
        fail(&l, "bob", IP, 1).await;
        assert!(!l.is_locked("alice", IP).await.expect("check"));
        assert!(fail(&l, "alice", IP, 1).await);
        assert!(!l.is_locked("alice", OTHER_IP).await.expect("check"));
        assert!(!l.is_locked("bob", IP).await.expect("check"));
    }

    #[tokio::test]
    async fn look_alike_usernames_share_a_counter() {
        assert_eq!(canonical_username(" Alice "), "alice");
        // Fullwidth letters (NFKC) and case.
        assert_eq!(canonical_username("ＡＬＩＣＥ"), "alice");
        let l = memory(3, Duration::from_secs(60), Duration::from_secs(60));
        fail(&l, "alice", IP, 1).await;
        fail(&l, "ALICE", IP, 1).await;
        assert!(fail(&l, "ａｌｉｃｅ", IP, 1).await);
        assert!(l.is_locked("Alice", IP).await.expect("check"));
        // An IPv4 client seen through an IPv6 socket is the same client.
        let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 10).to_ipv6_mapped());
        assert!(l.is_locked("alice", mapped).await.expect("check"));
        assert!(
            !l.is_locked("alice", IpAddr::V6(Ipv6Addr::LOCALHOST))
                .await
                .expect("check")
        );
    }

    #[tokio::test]
    async fn memory_stays_bounded_under_a_million_usernames() {
        let cap = 10_000;
        let l = Lockout::with_capacity(
            &config(
                "memory",
                5,
                Duration::from_secs(60),
                Duration::from_secs(60),
            ),
            cap,
        )
        .expect("lockout");
        // A victim locked before the flood stays locked through it.
        assert!(fail(&l, "victim", IP, 5).await);
        let start = Instant::now();
        for i in 0..1_000_000u32 {
            l.record_failure(&format!("user{i}"), IP)
                .await
                .expect("record");
        }
        let elapsed = start.elapsed();
        let tracked = l.tracked().expect("memory store");
        eprintln!(
            "1e6 distinct usernames recorded in {elapsed:?}; {tracked} pairs tracked (cap {cap})"
        );
        assert!(tracked <= cap, "tracked {tracked} > cap {cap}");
        assert!(tracked >= cap / 2, "eviction is too eager: {tracked}");
        assert!(
            l.is_locked("victim", IP).await.expect("check"),
            "flood unlocked the victim"
        );
        // Recent entries are kept (oldest evicted first).
        assert!(fail(&l, "user999999", IP, 4).await);
    }

    #[tokio::test]
    async fn client_budget_defaults_to_ten_times_max_failures() {
        let cfg = ProtectionConfig {
            max_failures_per_ip: None,
            ..config(
                "memory",
                3,
                Duration::from_secs(60),
                Duration::from_secs(60),
            )
        };
        assert_eq!(cfg.max_failures_per_ip(), 30);
        let l = Lockout::from_config(&cfg).expect("lockout");
        for i in 0..29 {
            assert!(!fail(&l, &format!("user{i}"), IP, 1).await);
        }
        assert!(fail(&l, "user29", IP, 1).await);
    }

    #[tokio::test]
    async fn an_ipv6_client_is_its_slash_64() {
        let l = Lockout::from_config(&per_ip("memory", 3)).expect("lockout");
        let host = |last: u16| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, last));
        fail(&l, "a", host(1), 1).await;
        fail(&l, "b", host(2), 1).await;
        assert!(
            fail(&l, "c", host(3), 1).await,
            "three addresses of one /64"
        );
        assert!(l.is_locked("d", host(0xffff)).await.expect("check"));
        let next_net = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 2, 0, 0, 0, 1));
        assert!(!l.is_locked("d", next_net).await.expect("check"));
    }

    #[tokio::test]
    async fn memory_stays_bounded_under_a_million_clients() {
        let cap = 10_000;
        // A lockout that outlasts the flood on a slow, shared machine.
        let cfg = ProtectionConfig {
            lockout: auth_core::Duration(Duration::from_secs(3600)),
            ..per_ip("memory", 2)
        };
        let l = Lockout::with_capacity(&cfg, cap).expect("lockout");
        // A client locked before the flood stays locked through it.
        assert!(fail(&l, "a", IP, 1).await || fail(&l, "b", IP, 1).await);
        assert!(l.is_locked("anyone", IP).await.expect("check"));
        for i in 0..1_000_000u32 {
            let ip = IpAddr::V6(Ipv6Addr::new(
                0x2001,
                0xdb8,
                (i >> 16) as u16,
                i as u16,
                0,
                0,
                0,
                1,
            ));
            l.record_failure("user", ip).await.expect("record");
        }
        let clients = l.tracked_clients().expect("memory store");
        let pairs = l.tracked().expect("memory store");
        eprintln!("1e6 distinct clients: {clients} clients and {pairs} pairs tracked (cap {cap})");
        assert!(
            clients <= cap && pairs <= cap,
            "{clients} / {pairs} > cap {cap}"
        );
        assert!(clients >= cap / 2, "eviction is too eager: {clients}");
        assert!(
            l.is_locked("anyone", IP).await.expect("check"),
            "flood unlocked the client"
        );
    }

    #[tokio::test]
    async fn bad_configs_are_refused() {
        let d = Duration::from_secs(1);
        assert!(Lockout::from_config(&config("memory", 0, d, d)).is_err());
        assert!(Lockout::from_config(&per_ip("memory", 0)).is_err());
        assert!(Lockout::from_config(&config("memcached://x", 3, d, d)).is_err());
    }
}

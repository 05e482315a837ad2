//! Sessions with Django's semantics (DESIGN.md §4): a login creates a session under a fresh random
//! id that records the chain entry, the user, a keyed digest of the credential version and a
//! snapshot of the [`User`], so the hot path needs no backend call until `revalidate` has passed.
//! Idle and absolute timeouts apply in every store; logout ends the session in every store (the
//! stateless `cookie` store keeps a revocation list).
//!
//! Stores: `memory`, `sqlite://PATH` / `postgres://...` / `mysql://...` (sqlx), `redis://...`
//! and `cookie` (the session itself, XChaCha20-Poly1305-encrypted in the cookie).

mod cookie_store;
mod memory;
mod redis_store;
mod sql;

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use auth_core::{ProviderTokens, User};
use auth_storage::StoreUrl;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use smallvec::SmallVec;
use subtle::ConstantTimeEq;

use crate::config::model::{SameSiteSetting, SecureSetting, SessionConfig, StoreSetting};

type HmacSha256 = Hmac<Sha256>;

/// Length of a session id and of every derived key, in bytes.
const KEY_LEN: usize = 32;
/// Length of a signed session cookie value: base64url(id) `.` base64url(mac).
const SIGNED_COOKIE_LEN: usize = 43 + 1 + 43;
/// How long a pre-session (login form) CSRF pair stays valid at most (and never past
/// `session.ttl`).
const PRE_SESSION_CSRF_TTL: Duration = Duration::from_secs(2 * 3600);
/// Name of the file holding the generated secret inside `data_dir`.
const SECRET_FILE: &str = "session.secret";

/// A random session id (stateful stores) or revocation id (cookie store).
type SessionId = [u8; KEY_LEN];

/// Why a session operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// `session.secret` is shorter than 32 bytes.
    #[error("session.secret is {0} bytes long; at least 32 bytes are required")]
    SecretTooShort(usize),
    /// The generated secret file could not be read or written.
    #[error("session secret file `{path}`: {message}")]
    SecretFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// `session.store` names no known store.
    #[error(
        "unknown session store `{0}`; expected `memory`, `cookie`, `sqlite://PATH`, `postgres://...`, `mysql://...` or `redis://...`"
    )]
    UnknownStore(String),
    /// A timeout in the config cannot be used.
    #[error("invalid session config: {0}")]
    InvalidConfig(String),
    /// The store cannot be reached or refused the operation: the caller must fail closed (503).
    #[error("session store unavailable: {0}")]
    Unavailable(String),
    /// The session does not fit in a cookie (cookie store with a large user snapshot).
    #[error("session is {0} bytes once encrypted, too large for the cookie store")]
    TooLarge(usize),
}

impl SessionError {
    /// Whether the store was unreachable (answer 503, never "allowed").
    pub fn is_unavailable(&self) -> bool {
        matches!(self, SessionError::Unavailable(_))
    }
}

/// What a store keeps for one session.
#[derive(Clone, Serialize, Deserialize)]
struct Record {
    /// Chain entry that authenticated the user.
    e: Arc<str>,
    /// base64url HMAC of the credential version, if the backend gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    v: Option<Arc<str>>,
    /// Creation, last use and last revalidation, in Unix milliseconds.
    c: u64,
    l: u64,
    r: u64,
    /// Per-session CSRF secret, base64url.
    x: Arc<str>,
    /// The user snapshot.
    u: Arc<User>,
    /// What a single sign-on provider issued (refresh and ID token): secrets, never logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    p: Option<Arc<ProviderTokens>>,
}

/// A live session, as [`SessionManager::load`] returns it. Its `Debug` shows neither the id
/// nor the CSRF secret. Changing its fields changes nothing in the store: use
/// [`SessionManager::revalidated`] to record a new user snapshot.
pub struct Session {
    id: SessionId,
    /// The user snapshot taken at login or at the last revalidation (shared with the store's
    /// copy: loading a session from the memory store copies no string).
    pub user: Arc<User>,
    /// Name of the chain entry that authenticated the user (its `get_user` restores them).
    pub entry: Arc<str>,
    /// When the session was created (login).
    pub created_at: SystemTime,
    /// When the session was last recorded as used (updated at most every tenth of the idle
    /// timeout).
    pub last_seen: SystemTime,
    /// When the user snapshot was last refreshed through the backend.
    pub validated_at: SystemTime,
    version_digest: Option<Arc<str>>,
    csrf_secret: Arc<str>,
    created_ms: u64,
    last_seen_ms: u64,
    validated_ms: u64,
    provider_tokens: Option<Arc<ProviderTokens>>,
    reissued: Mutex<Option<String>>,
}

impl Session {
    fn from_record(id: SessionId, r: Record) -> Session {
        Session {
            id,
            user: r.u,
            entry: r.e,
            created_at: from_ms(r.c),
            last_seen: from_ms(r.l),
            validated_at: from_ms(r.r),
            version_digest: r.v,
            csrf_secret: r.x,
            created_ms: r.c,
            last_seen_ms: r.l,
            validated_ms: r.r,
            provider_tokens: r.p,
            reissued: Mutex::new(None),
        }
    }

    fn to_record(&self) -> Record {
        Record {
            e: self.entry.clone(),
            v: self.version_digest.clone(),
            c: self.created_ms,
            l: self.last_seen_ms,
            r: self.validated_ms,
            x: self.csrf_secret.clone(),
            u: self.user.clone(),
            p: self.provider_tokens.clone(),
        }
    }

    /// The user's id within [`Session::entry`].
    pub fn user_id(&self) -> &str {
        &self.user.id
    }

    /// The tokens a single sign-on provider issued for this session, if any (secrets).
    pub fn provider_tokens(&self) -> Option<&ProviderTokens> {
        self.provider_tokens.as_deref()
    }
}

impl Clone for Session {
    fn clone(&self) -> Self {
        Session {
            id: self.id,
            user: self.user.clone(),
            entry: self.entry.clone(),
            created_at: self.created_at,
            last_seen: self.last_seen,
            validated_at: self.validated_at,
            version_digest: self.version_digest.clone(),
            csrf_secret: self.csrf_secret.clone(),
            created_ms: self.created_ms,
            last_seen_ms: self.last_seen_ms,
            validated_ms: self.validated_ms,
            provider_tokens: self.provider_tokens.clone(),
            reissued: Mutex::new(self.reissued.lock().map(|g| g.clone()).unwrap_or(None)),
        }
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("entry", &self.entry)
            .field("user", &self.user.username)
            .field("created_at", &self.created_ms)
            .field("last_seen", &self.last_seen_ms)
            .field("validated_at", &self.validated_ms)
            .finish_non_exhaustive()
    }
}

enum Store {
    Memory(memory::MemoryStore),
    Sql(sql::SqlStore),
    Redis(redis_store::RedisStore),
    Cookie(cookie_store::CookieStore),
}

/// Most distinct values of the session cookie one request may carry: a genuine browser sends
/// one, two after cookie tossing; each is a store lookup.
pub(crate) const MAX_SESSION_COOKIES: usize = 4;

/// What [`SessionManager::lookup`] found in a request.
#[derive(Debug)]
pub enum CookieLookup {
    /// No session cookie.
    Absent,
    /// Session cookies, none of them a live session (clear it).
    Invalid,
    /// Exactly one value loads a live session.
    Valid {
        /// The cookie value that loaded.
        value: String,
        /// Its session.
        session: Box<Session>,
    },
    /// Several values load different sessions, or too many values: refuse the request.
    Ambiguous,
}

/// Every distinct value of cookie `name` in `headers`, in the order sent. Read pair by pair
/// over the raw bytes: a tossed cookie with a non-ASCII value shares the browser's one `Cookie`
/// header with the genuine cookie and must not hide it (only that pair is skipped).
pub(crate) fn cookie_values<'h>(
    headers: &'h http::HeaderMap,
    name: &str,
) -> SmallVec<[&'h str; 2]> {
    let mut out: SmallVec<[&'h str; 2]> = SmallVec::new();
    for (pair, pair_name) in cookie_pairs(headers) {
        if pair_name != name.as_bytes() {
            continue;
        }
        let Some(eq) = pair.iter().position(|b| *b == b'=') else {
            continue;
        };
        let Ok(value) = std::str::from_utf8(pair[eq + 1..].trim_ascii()) else {
            continue;
        };
        if value.is_ascii() && !out.contains(&value) {
            out.push(value);
        }
    }
    out
}

/// Every `;`-separated pair of the `Cookie` headers, trimmed, with its name (the part before
/// `=`, trimmed; the whole pair when it has none). Read over the raw bytes, so a pair with
/// non-ASCII bytes is one pair like any other. Empty pairs are included, as empty.
pub(crate) fn cookie_pairs(headers: &http::HeaderMap) -> impl Iterator<Item = (&[u8], &[u8])> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b';'))
        .map(|pair| {
            let pair = pair.trim_ascii();
            let name = pair
                .split(|b| *b == b'=')
                .next()
                .unwrap_or(pair)
                .trim_ascii();
            (pair, name)
        })
}

/// Keys derived from the session secret, one per purpose.
struct Keys {
    sign: HmacSha256,
    version: HmacSha256,
    csrf: HmacSha256,
}

/// Creates, loads, refreshes and ends sessions, and builds their cookies. One per config.
pub struct SessionManager {
    store: Store,
    keys: Keys,
    cookie_name: String,
    csrf_cookie_name: String,
    same_site: ::cookie::SameSite,
    ttl_ms: u64,
    idle_ms: u64,
    revalidate_ms: u64,
    touch_every_ms: u64,
    pre_csrf_ms: u64,
}

impl fmt::Debug for SessionManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let store = match &self.store {
            Store::Memory(_) => "memory",
            Store::Sql(_) => "sql",
            Store::Redis(_) => "redis",
            Store::Cookie(_) => "cookie",
        };
        f.debug_struct("SessionManager")
            .field("store", &store)
            .field("cookie_name", &self.cookie_name)
            .finish_non_exhaustive()
    }
}

/// The file [`resolve_secret`] generates the secret into when `session.secret` is absent.
pub fn generated_secret_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SECRET_FILE)
}

/// Returns the secret to sign and encrypt sessions with: `session.secret` when set (it must be
/// at least 32 bytes), else 32 random bytes generated into `data_dir/session.secret` (mode 0600)
/// on first start and read back on later starts. Call once at startup and on reload.
pub fn resolve_secret(cfg: &SessionConfig, data_dir: &Path) -> Result<Vec<u8>, SessionError> {
    if let Some(secret) = &cfg.secret {
        let bytes = secret.value.expose().as_bytes();
        if bytes.len() < KEY_LEN {
            return Err(SessionError::SecretTooShort(bytes.len()));
        }
        return Ok(bytes.to_vec());
    }
    let path = generated_secret_path(data_dir);
    let file_err = |message: String| SessionError::SecretFile {
        path: path.clone(),
        message,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|e| file_err(format!("not base64: {e}")))?;
            if bytes.len() < KEY_LEN {
                return Err(file_err(format!(
                    "holds {} bytes; at least 32 are required",
                    bytes.len()
                )));
            }
            Ok(bytes)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(data_dir).map_err(|e| file_err(e.to_string()))?;
            let mut bytes = vec![0u8; KEY_LEN];
            rand::rngs::OsRng.fill_bytes(&mut bytes);
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            match opts.open(&path) {
                Ok(mut file) => {
                    let text = base64::engine::general_purpose::STANDARD.encode(&bytes);
                    file.write_all(format!("{text}\n").as_bytes())
                        .and_then(|()| file.sync_all())
                        .map_err(|e| file_err(e.to_string()))?;
                    Ok(bytes)
                }
                // Another process won the race: use its secret.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    resolve_secret(cfg, data_dir)
                }
                Err(e) => Err(file_err(e.to_string())),
            }
        }
        Err(e) => Err(file_err(e.to_string())),
    }
}

fn derive(secret: &[u8], label: &[u8]) -> [u8; KEY_LEN] {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(label);
    mac.finalize().into_bytes().into()
}

fn keyed(key: &[u8; KEY_LEN]) -> HmacSha256 {
    HmacSha256::new_from_slice(key).expect("HMAC accepts any key length")
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn from_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand::thread_rng().fill_bytes(&mut b);
    b
}

/// Decodes base64url `s` into exactly `N` bytes, without allocating.
fn decode_exact<const N: usize>(s: &str) -> Option<[u8; N]> {
    let mut buf = [0u8; 64];
    if s.len() > 86 {
        return None;
    }
    let n = B64.decode_slice(s.as_bytes(), &mut buf).ok()?;
    if n != N {
        return None;
    }
    buf[..N].try_into().ok()
}

impl SessionManager {
    /// As [`new`](Self::new) for a cookie that is not Secure unless `session.secure: true`
    /// (`auto` needs `public_url` to resolve; see `Config::secure_cookies`).
    pub async fn from_config(
        cfg: &SessionConfig,
        secret: &[u8],
        data_dir: &Path,
    ) -> Result<SessionManager, SessionError> {
        let secure = cfg.secure == crate::config::SecureSetting::Always;
        SessionManager::new(cfg, secure, secret, data_dir).await
    }

    /// Builds the manager for `cfg` with `secret` (from [`resolve_secret`]); `secure` is the
    /// resolved `session.secure` (`Config::secure_cookies`), which picks the default cookie name
    /// (`__Host-gw_session` when Secure). Relative SQLite paths are under `data_dir`. A SQL or
    /// Redis store that is down at startup is not an error here: every operation then fails
    /// with [`SessionError::Unavailable`] until it is back.
    pub async fn new(
        cfg: &SessionConfig,
        secure: bool,
        secret: &[u8],
        data_dir: &Path,
    ) -> Result<SessionManager, SessionError> {
        if secret.len() < KEY_LEN {
            return Err(SessionError::SecretTooShort(secret.len()));
        }
        let ttl_ms = cfg.ttl.get().as_millis() as u64;
        if ttl_ms == 0 {
            return Err(SessionError::InvalidConfig(
                "session.ttl must be greater than 0".into(),
            ));
        }
        let idle_ms = cfg.idle_timeout.get().as_millis() as u64;
        let store = match StoreSetting::parse(&cfg.store.value) {
            Ok(StoreSetting::Memory) => Store::Memory(memory::MemoryStore::new()),
            Ok(StoreSetting::Cookie) => Store::Cookie(cookie_store::CookieStore::new(&derive(
                secret,
                b"gateway/session/aead/v1",
            ))),
            Ok(StoreSetting::Url(StoreUrl::Sql(url))) => {
                Store::Sql(sql::SqlStore::new(&url, data_dir).await?)
            }
            Ok(StoreSetting::Url(StoreUrl::Redis(url))) => {
                Store::Redis(redis_store::RedisStore::new(
                    &url,
                    cfg.redis_ca_file.as_ref().map(|f| Path::new(&f.value)),
                )?)
            }
            Err(_) => {
                let shown = auth_storage::redact(cfg.store.value.trim());
                return Err(SessionError::UnknownStore(shown));
            }
        };
        Ok(SessionManager {
            store,
            keys: Keys {
                sign: keyed(&derive(secret, b"gateway/session/id/v1")),
                version: keyed(&derive(secret, b"gateway/session/credential-version/v1")),
                csrf: keyed(&derive(secret, b"gateway/session/csrf/v1")),
            },
            csrf_cookie_name: format!("{}_csrf", cfg.cookie_name_for(secure)),
            cookie_name: cfg.cookie_name_for(secure).to_string(),
            same_site: match cfg.same_site {
                SameSiteSetting::Lax => ::cookie::SameSite::Lax,
                SameSiteSetting::Strict => ::cookie::SameSite::Strict,
            },
            ttl_ms,
            idle_ms,
            revalidate_ms: cfg.revalidate.get().as_millis() as u64,
            touch_every_ms: if idle_ms > 0 {
                idle_ms / 10
            } else {
                ttl_ms / 10
            },
            pre_csrf_ms: ttl_ms.min(PRE_SESSION_CSRF_TTL.as_millis() as u64),
        })
    }

    /// With the `cookie` store, shares the logout revocation list through Redis at `redis_url`
    /// (e.g. `protection.store` when it is Redis), so a cookie replayed to another replica after
    /// logout is refused too; loads then fail closed while Redis is down. Other stores keep
    /// their sessions server-side already: unchanged.
    pub fn with_shared_revocations(mut self, redis_url: &str) -> Result<Self, SessionError> {
        if let Store::Cookie(c) = &mut self.store {
            c.share_revocations(redis_url)?;
        }
        Ok(self)
    }

    /// Starts a session for `user` (authenticated by chain entry `user.backend`) under a NEW
    /// random id and returns the cookie value to set. On login the caller must also
    /// [`destroy`](Self::destroy) the session it replaces.
    pub async fn create(
        &self,
        user: &User,
        credential_version: Option<&str>,
    ) -> Result<String, SessionError> {
        self.create_with_tokens(user, credential_version, None)
            .await
    }

    /// As [`create`](Self::create), keeping `tokens` (from a single sign-on provider) with the
    /// session: see [`Session::provider_tokens`].
    pub async fn create_with_tokens(
        &self,
        user: &User,
        credential_version: Option<&str>,
        tokens: Option<&ProviderTokens>,
    ) -> Result<String, SessionError> {
        let now = now_ms();
        let record = Record {
            e: user.backend.as_str().into(),
            v: credential_version.map(|v| B64.encode(self.version_digest(v)).into()),
            c: now,
            l: now,
            r: now,
            x: B64.encode(random_bytes::<KEY_LEN>()).into(),
            u: Arc::new(user.clone()),
            p: tokens.filter(|t| !t.is_empty()).cloned().map(Arc::new),
        };
        let id: SessionId = random_bytes();
        let expires = self.expires_at(&record);
        match &self.store {
            Store::Cookie(c) => return c.seal(&id, &record),
            Store::Memory(m) => m.insert(id, record, expires),
            Store::Sql(s) => s.put(&id, &record, expires, true).await?,
            Store::Redis(r) => r.put(&id, &record, expires, now, true).await?,
        }
        Ok(self.sign_id(&id))
    }

    /// Returns the live session named by `cookie_value`: `Ok(None)` when the value is malformed,
    /// tampered with, unknown, revoked or expired (an expired session is deleted); `Err` only
    /// when the store is unreachable, which the caller must answer with 503.
    pub async fn load(&self, cookie_value: &str) -> Result<Option<Session>, SessionError> {
        let now = now_ms();
        if let Store::Cookie(c) = &self.store {
            let Some((id, record)) = c.open(cookie_value) else {
                return Ok(None);
            };
            if self.expires_at(&record) <= now || c.is_revoked(&id, now).await? {
                return Ok(None);
            }
            return Ok(Some(Session::from_record(id, record)));
        }
        let Some(id) = self.verify_id(cookie_value) else {
            return Ok(None);
        };
        let record = match &self.store {
            Store::Memory(m) => m.get(&id, now),
            Store::Sql(s) => s.get(&id).await?,
            Store::Redis(r) => r.get(&id).await?,
            Store::Cookie(_) => None,
        };
        let Some(record) = record else {
            return Ok(None);
        };
        if self.expires_at(&record) <= now {
            self.remove(&id).await?;
            return Ok(None);
        }
        Ok(Some(Session::from_record(id, record)))
    }

    /// The session a request's `Cookie` headers designate. A browser sends several cookies of
    /// one name when another site of the parent domain set one too (cookie tossing: a sibling
    /// subdomain sets `Domain=example.org`, maybe with a longer `Path` so it comes first). The
    /// first one is not trusted blindly: every value is tried, values that load no session are
    /// ignored, and two that load different sessions are [`CookieLookup::Ambiguous`] (the
    /// caller refuses the request) rather than a guess that could pick the attacker's.
    pub async fn lookup(&self, headers: &http::HeaderMap) -> Result<CookieLookup, SessionError> {
        let values = cookie_values(headers, &self.cookie_name);
        if values.is_empty() {
            return Ok(CookieLookup::Absent);
        }
        if values.len() > MAX_SESSION_COOKIES {
            return Ok(CookieLookup::Ambiguous);
        }
        let mut found: Option<(&str, Session)> = None;
        for value in values {
            if let Some(session) = self.load(value).await? {
                if found.is_some() {
                    return Ok(CookieLookup::Ambiguous);
                }
                found = Some((value, session));
            }
        }
        Ok(match found {
            Some((value, session)) => CookieLookup::Valid {
                value: value.to_string(),
                session: Box::new(session),
            },
            None => CookieLookup::Invalid,
        })
    }

    /// Records that `s` was used now. Writes at most once per tenth of the idle timeout, so
    /// most requests stay write-free. With the `cookie` store the refreshed cookie must be sent:
    /// see [`reissued_cookie`](Self::reissued_cookie). A store error is logged, not returned.
    pub async fn touch(&self, s: &Session) {
        let now = now_ms();
        if now.saturating_sub(s.last_seen_ms) < self.touch_every_ms {
            return;
        }
        let mut record = s.to_record();
        record.l = now;
        self.rewrite(s, record, now).await;
    }

    /// Records that the user behind `s` was re-read through the backend: `user` becomes the
    /// snapshot and the revalidation clock restarts. With the `cookie` store the refreshed
    /// cookie must be sent: see [`reissued_cookie`](Self::reissued_cookie).
    pub async fn revalidated(&self, s: &Session, user: &User) {
        self.revalidated_with_tokens(s, user, None).await;
    }

    /// As [`revalidated`](Self::revalidated), replacing the session's provider tokens with
    /// `tokens` when given (a refresh rotated them).
    pub async fn revalidated_with_tokens(
        &self,
        s: &Session,
        user: &User,
        tokens: Option<&ProviderTokens>,
    ) {
        let now = now_ms();
        let mut record = s.to_record();
        let mut user = user.clone();
        user.backend = s.entry.to_string();
        record.u = Arc::new(user);
        record.r = now;
        record.l = now;
        if let Some(tokens) = tokens {
            let mut tokens = tokens.clone();
            // As at login: the cookie store drops an ID token that does not fit.
            if let Store::Cookie(c) = &self.store
                && tokens.id_token.is_some()
            {
                record.p = Some(Arc::new(tokens.clone()));
                if let Err(SessionError::TooLarge(_)) = c.seal(&s.id, &record) {
                    tokens.id_token = None;
                }
            }
            record.p = (!tokens.is_empty()).then(|| Arc::new(tokens));
        }
        self.rewrite(s, record, now).await;
    }

    /// The new cookie value to send after [`touch`](Self::touch) or
    /// [`revalidated`](Self::revalidated) on `s`, when the store keeps the session in the cookie
    /// itself (`cookie` store); `None` otherwise.
    pub fn reissued_cookie(&self, s: &Session) -> Option<String> {
        // Only the cookie store reissues: the other stores' requests take no lock here.
        if !matches!(self.store, Store::Cookie(_)) {
            return None;
        }
        s.reissued.lock().ok().and_then(|g| g.clone())
    }

    async fn rewrite(&self, s: &Session, record: Record, now: u64) {
        let expires = self.expires_at(&record);
        let result = match &self.store {
            Store::Memory(m) => {
                m.update(&s.id, record, expires);
                Ok(())
            }
            Store::Sql(st) => st.put(&s.id, &record, expires, false).await,
            Store::Redis(r) => r.put(&s.id, &record, expires, now, false).await,
            Store::Cookie(c) => c.seal(&s.id, &record).map(|value| {
                if let Ok(mut g) = s.reissued.lock() {
                    *g = Some(value);
                }
            }),
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not refresh a session");
        }
    }

    /// Whether the user snapshot of `s` is older than `session.revalidate`: the caller must then
    /// restore the user through the entry's `get_user` and call
    /// [`revalidated`](Self::revalidated) (or [`destroy`](Self::destroy) the session).
    pub fn needs_revalidation(&self, s: &Session) -> bool {
        now_ms().saturating_sub(s.validated_ms) >= self.revalidate_ms
    }

    /// Whether `credential_version` (from a fresh `get_user`) is the one recorded at login. A
    /// mismatch means the password changed: the caller must destroy the session.
    pub fn version_matches(&self, s: &Session, credential_version: Option<&str>) -> bool {
        match (&s.version_digest, credential_version) {
            (None, None) => true,
            (Some(stored), Some(v)) => {
                let fresh = B64.encode(self.version_digest(v));
                bool::from(fresh.as_bytes().ct_eq(stored.as_bytes()))
            }
            _ => false,
        }
    }

    /// Ends the session named by `cookie_value` in the store (logout): a later
    /// [`load`](Self::load) of the same value returns `None`, also for the `cookie` store.
    /// A malformed value is not an error.
    pub async fn destroy(&self, cookie_value: &str) -> Result<(), SessionError> {
        if let Store::Cookie(c) = &self.store {
            if let Some((id, record)) = c.open(cookie_value) {
                c.revoke(id, record.c.saturating_add(self.ttl_ms)).await?;
            }
            return Ok(());
        }
        match self.verify_id(cookie_value) {
            Some(id) => self.remove(&id).await,
            None => Ok(()),
        }
    }

    async fn remove(&self, id: &SessionId) -> Result<(), SessionError> {
        match &self.store {
            Store::Memory(m) => {
                m.remove(id);
                Ok(())
            }
            Store::Sql(s) => s.remove(id).await,
            Store::Redis(r) => r.remove(id).await,
            Store::Cookie(_) => Ok(()),
        }
    }

    /// Checks that the store answers (for `/readyz`).
    pub async fn check(&self) -> Result<(), SessionError> {
        match &self.store {
            Store::Memory(_) | Store::Cookie(_) => Ok(()),
            Store::Sql(s) => s.check().await,
            Store::Redis(r) => r.check().await,
        }
    }

    /// Number of live sessions where the store can tell (memory: expired ones are swept first,
    /// so call it at scrape time, not per request); `None` elsewhere.
    pub fn active_sessions(&self) -> Option<u64> {
        match &self.store {
            Store::Memory(m) => {
                m.sweep(now_ms());
                Some(m.len() as u64)
            }
            _ => None,
        }
    }

    /// The session cookie's name.
    pub fn cookie_name(&self) -> &str {
        &self.cookie_name
    }

    /// A `Set-Cookie` value carrying session cookie `value`: `HttpOnly`, `SameSite` per config,
    /// `Path=/`, host-only, `Max-Age` = `session.ttl`, and `Secure` when `secure` (the caller
    /// resolves `session.secure: auto` against `public_url`).
    pub fn set_cookie(&self, value: &str, secure: bool) -> http::HeaderValue {
        self.build_cookie(
            &self.cookie_name,
            value,
            secure,
            Some(Duration::from_millis(self.ttl_ms)),
        )
    }

    /// A `Set-Cookie` value that removes the session cookie (logout).
    pub fn clear_cookie(&self, secure: bool) -> http::HeaderValue {
        self.build_cookie(&self.cookie_name, "", secure, None)
    }

    /// Name of the pre-session (login form) CSRF cookie.
    pub fn csrf_cookie_name(&self) -> &str {
        &self.csrf_cookie_name
    }

    /// A `Set-Cookie` value carrying the pre-session CSRF cookie from
    /// [`pre_session_csrf`](Self::pre_session_csrf).
    pub fn set_csrf_cookie(&self, value: &str, secure: bool) -> http::HeaderValue {
        self.build_cookie(
            &self.csrf_cookie_name,
            value,
            secure,
            Some(Duration::from_millis(self.pre_csrf_ms)),
        )
    }

    /// A `Set-Cookie` value that removes the pre-session CSRF cookie (after login).
    pub fn clear_csrf_cookie(&self, secure: bool) -> http::HeaderValue {
        self.build_cookie(&self.csrf_cookie_name, "", secure, None)
    }

    fn build_cookie(
        &self,
        name: &str,
        value: &str,
        secure: bool,
        max_age: Option<Duration>,
    ) -> http::HeaderValue {
        let mut c = ::cookie::Cookie::build((name.to_string(), value.to_string()))
            .http_only(true)
            .secure(secure)
            .same_site(self.same_site)
            .path("/")
            .build();
        match max_age {
            Some(age) => c.set_max_age(::cookie::time::Duration::seconds(age.as_secs() as i64)),
            None => c.make_removal(),
        }
        // Names come from the config and values are base64url: always a valid header.
        http::HeaderValue::from_str(&c.to_string())
            .unwrap_or_else(|_| http::HeaderValue::from_static("invalid=; Max-Age=0"))
    }

    /// A CSRF token for forms of session `s` (e.g. logout). Masked afresh on each call so the
    /// page does not repeat a secret (BREACH); any token issued for `s` verifies.
    pub fn csrf_token(&self, s: &Session) -> String {
        let secret = decode_exact::<KEY_LEN>(&s.csrf_secret).unwrap_or([0; KEY_LEN]);
        let mask: [u8; KEY_LEN] = random_bytes();
        let mut out = [0u8; 2 * KEY_LEN];
        out[..KEY_LEN].copy_from_slice(&mask);
        for i in 0..KEY_LEN {
            out[KEY_LEN + i] = secret[i] ^ mask[i];
        }
        B64.encode(out)
    }

    /// Whether `token` is a CSRF token of session `s` (`None`: no session, always false; the
    /// login form uses [`verify_pre_session_csrf`](Self::verify_pre_session_csrf)).
    pub fn verify_csrf(&self, s: Option<&Session>, token: &str) -> bool {
        let Some(s) = s else { return false };
        let Some(secret) = decode_exact::<KEY_LEN>(&s.csrf_secret) else {
            return false;
        };
        let Some(raw) = decode_exact::<{ 2 * KEY_LEN }>(token) else {
            return false;
        };
        let mut unmasked = [0u8; KEY_LEN];
        for i in 0..KEY_LEN {
            unmasked[i] = raw[i] ^ raw[KEY_LEN + i];
        }
        bool::from(unmasked.ct_eq(&secret))
    }

    /// A fresh CSRF pair for the login form, before any session exists: set the first value as
    /// the [`csrf_cookie_name`](Self::csrf_cookie_name) cookie
    /// ([`set_csrf_cookie`](Self::set_csrf_cookie)) and put the second in the form. Both are
    /// signed with the secret and expire after two hours (or `session.ttl` if shorter).
    pub fn pre_session_csrf(&self) -> (String, String) {
        let nonce: [u8; 16] = random_bytes();
        let mut payload = [0u8; 24];
        payload[..16].copy_from_slice(&nonce);
        payload[16..].copy_from_slice(&now_ms().to_be_bytes());
        let cookie = format!(
            "{}.{}",
            B64.encode(payload),
            B64.encode(self.csrf_mac(b"cookie", &payload))
        );
        let token = B64.encode(self.csrf_mac(b"form", &payload));
        (cookie, token)
    }

    /// Whether `cookie` (the CSRF cookie sent back) and `token` (the form field) are a pair from
    /// [`pre_session_csrf`](Self::pre_session_csrf) that has not expired.
    pub fn verify_pre_session_csrf(&self, cookie: &str, token: &str) -> bool {
        let Some((payload, mac)) = cookie.split_once('.') else {
            return false;
        };
        let (Some(payload), Some(mac), Some(token)) = (
            decode_exact::<24>(payload),
            decode_exact::<KEY_LEN>(mac),
            decode_exact::<KEY_LEN>(token),
        ) else {
            return false;
        };
        let cookie_ok = self.csrf_mac(b"cookie", &payload).ct_eq(&mac);
        let token_ok = self.csrf_mac(b"form", &payload).ct_eq(&token);
        if !bool::from(cookie_ok & token_ok) {
            return false;
        }
        let issued = u64::from_be_bytes(payload[16..].try_into().unwrap_or([0xff; 8]));
        let now = now_ms();
        issued <= now.saturating_add(60_000) && now.saturating_sub(issued) < self.pre_csrf_ms
    }

    /// A secret derived from a pre-session cookie of
    /// [`pre_session_csrf`](Self::pre_session_csrf) for `purpose` (the single sign-on `nonce`
    /// and PKCE verifier): 43 base64url characters that only the holder of that cookie can make
    /// the gateway compute again. `None` when `cookie` is not of that shape; verify the cookie
    /// with [`verify_pre_session_csrf`](Self::verify_pre_session_csrf) first.
    pub fn pre_session_derived(&self, cookie: &str, purpose: &[u8]) -> Option<String> {
        let (payload, _) = cookie.split_once('.')?;
        let payload = decode_exact::<24>(payload)?;
        let mut input = Vec::with_capacity(purpose.len() + 24);
        input.extend_from_slice(purpose);
        input.extend_from_slice(&payload);
        Some(B64.encode(self.csrf_mac(b"derived", &input)))
    }

    /// A `Set-Cookie` value for the single sign-on pre-login cookie `name` (holding a
    /// [`pre_session_csrf`](Self::pre_session_csrf) cookie and the login's entry and `next`):
    /// `SameSite=Lax` whatever `session.same_site` says, because the provider sends the browser
    /// back with a cross-site navigation, which a `Strict` cookie would not follow. Removed when
    /// `value` is `None`.
    pub fn sso_cookie(&self, name: &str, value: Option<&str>, secure: bool) -> http::HeaderValue {
        let mut c = ::cookie::Cookie::build((name.to_string(), value.unwrap_or("").to_string()))
            .http_only(true)
            .secure(secure)
            .same_site(::cookie::SameSite::Lax)
            .path("/")
            .build();
        match value {
            Some(_) => c.set_max_age(::cookie::time::Duration::seconds(
                (self.pre_csrf_ms / 1000) as i64,
            )),
            None => c.make_removal(),
        }
        http::HeaderValue::from_str(&c.to_string())
            .unwrap_or_else(|_| http::HeaderValue::from_static("invalid=; Max-Age=0"))
    }

    fn csrf_mac(&self, purpose: &[u8], payload: &[u8]) -> [u8; KEY_LEN] {
        let mut mac = self.keys.csrf.clone();
        mac.update(purpose);
        mac.update(&[0]);
        mac.update(payload);
        mac.finalize().into_bytes().into()
    }

    fn version_digest(&self, version: &str) -> [u8; KEY_LEN] {
        let mut mac = self.keys.version.clone();
        mac.update(version.as_bytes());
        mac.finalize().into_bytes().into()
    }

    fn sign_id(&self, id: &SessionId) -> String {
        let mut mac = self.keys.sign.clone();
        mac.update(id);
        let tag: [u8; KEY_LEN] = mac.finalize().into_bytes().into();
        format!("{}.{}", B64.encode(id), B64.encode(tag))
    }

    fn verify_id(&self, value: &str) -> Option<SessionId> {
        if value.len() != SIGNED_COOKIE_LEN {
            return None;
        }
        let (id, tag) = value.split_once('.')?;
        let id = decode_exact::<KEY_LEN>(id)?;
        let tag = decode_exact::<KEY_LEN>(tag)?;
        let mut mac = self.keys.sign.clone();
        mac.update(&id);
        mac.verify_slice(&tag).ok()?;
        Some(id)
    }

    /// When `r` expires: the earlier of the idle and the absolute deadline.
    fn expires_at(&self, r: &Record) -> u64 {
        let absolute = r.c.saturating_add(self.ttl_ms);
        if self.idle_ms == 0 {
            absolute
        } else {
            absolute.min(r.l.saturating_add(self.idle_ms))
        }
    }
}

/// Whether cookies get the `Secure` flag: `session.secure` resolved against `public_url`
/// (`auto`: secure unless `public_url` is plain HTTP on `localhost` or a loopback address; a
/// missing URL counts as secure).
pub fn cookie_secure(setting: SecureSetting, public_url: Option<&url::Url>) -> bool {
    match setting {
        SecureSetting::Always => true,
        SecureSetting::Never => false,
        SecureSetting::Auto => {
            let Some(url) = public_url else {
                return true;
            };
            let loopback = match url.host() {
                Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            };
            !(url.scheme() == "http" && loopback)
        }
    }
}

/// Storage key for `id` in shared stores: a digest, so reading the store yields no cookie.
fn storage_key(id: &SessionId) -> String {
    use sha2::Digest;
    B64.encode(Sha256::digest(id))
}

//! [`SessionManager`]: creates, loads, refreshes and ends sessions in the configured store.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use auth_core::{ProviderTokens, User};
use auth_storage::StoreUrl;
use base64::Engine;
use subtle::ConstantTimeEq;

use super::cookie::cookie_values;
use super::csrf::PRE_SESSION_CSRF_TTL;
use super::error::SessionError;
use super::record::{Record, Session, SessionId, now_ms};
use super::secret::{B64, KEY_LEN, Keys, aead_key, provider_tokens_key, random_bytes};
use super::token_seal::TokenSeal;
use super::{cookie_store, memory, redis_store, sql};
use crate::config::model::{SameSiteSetting, SessionConfig, StoreSetting};

/// Where the sessions are kept: one variant per `session.store` kind.
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

/// Whose turn it is to refresh a session at its provider
/// ([`SessionManager::refresh_turn`]).
pub(crate) enum RefreshTurn {
    /// This replica's: refresh, then call [`SessionManager::refresh_done`].
    Mine,
    /// Another replica refreshed it: the session as it left it.
    Refreshed(Box<Session>),
}

/// Creates, loads, refreshes and ends sessions, and builds their cookies. One per config.
pub struct SessionManager {
    store: Store,
    /// Seals the provider tokens of the stores that keep records server-side (SQL, Redis).
    tokens_seal: Option<TokenSeal>,
    pub(super) keys: Keys,
    pub(super) cookie_name: String,
    pub(super) csrf_cookie_name: String,
    pub(super) same_site: ::cookie::SameSite,
    pub(super) ttl_ms: u64,
    idle_ms: u64,
    revalidate_ms: u64,
    touch_every_ms: u64,
    pub(super) pre_csrf_ms: u64,
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

    /// Builds the manager for `cfg` with `secret` (from
    /// [`resolve_secret`](super::resolve_secret)); `secure` is the resolved `session.secure`
    /// (`Config::secure_cookies`), which picks the default cookie name
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
        let store = match cfg.store.value.get() {
            Some(StoreSetting::Memory) => Store::Memory(memory::MemoryStore::new()),
            Some(StoreSetting::Cookie) => {
                Store::Cookie(cookie_store::CookieStore::new(&aead_key(secret)))
            }
            Some(StoreSetting::Url(StoreUrl::Sql(url))) => {
                Store::Sql(sql::SqlStore::new(url, data_dir).await?)
            }
            Some(StoreSetting::Url(StoreUrl::Redis(url))) => {
                Store::Redis(redis_store::RedisStore::new(
                    url,
                    cfg.redis_ca_file.as_ref().map(|f| Path::new(&f.value)),
                )?)
            }
            None => {
                let shown = auth_storage::redact(cfg.store.value.written().trim());
                return Err(SessionError::UnknownStore(shown));
            }
        };
        let tokens_seal = matches!(store, Store::Sql(_) | Store::Redis(_))
            .then(|| TokenSeal::new(&provider_tokens_key(secret)));
        Ok(SessionManager {
            store,
            tokens_seal,
            keys: Keys::derive(secret),
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
            v: credential_version.map(|v| B64.encode(self.keys.version_digest(v)).into()),
            c: now,
            l: now,
            r: now,
            x: B64.encode(random_bytes::<KEY_LEN>()).into(),
            u: Arc::new(user.clone()),
            p: tokens.filter(|t| !t.is_empty()).cloned().map(Arc::new),
            t: None,
        };
        let id: SessionId = random_bytes();
        let expires = self.expires_at(&record);
        let record = self.at_rest(&id, record)?;
        match &self.store {
            Store::Cookie(c) => return c.seal(&id, &record),
            Store::Memory(m) => m.insert(id, record, expires),
            Store::Sql(s) => s.put(&id, &record, expires, true).await?,
            Store::Redis(r) => r.put(&id, &record, expires, now, true).await?,
        }
        Ok(self.keys.sign_id(&id))
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
        let Some(id) = self.keys.verify_id(cookie_value) else {
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
        let Some(record) = self.opened(&id, record) else {
            tracing::warn!("a session's sealed provider tokens do not open; ending the session");
            self.remove(&id).await?;
            return Ok(None);
        };
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
    /// most requests stay write-free. Returns the new cookie value to send when the store keeps
    /// the session in the cookie itself (`cookie` store) and it was rewritten; `None` otherwise.
    /// A store error is logged, not returned.
    #[must_use = "with the `cookie` store, the returned cookie value must be sent"]
    pub async fn touch(&self, s: &Session) -> Option<String> {
        let now = now_ms();
        if now.saturating_sub(s.last_seen_ms) < self.touch_every_ms {
            return None;
        }
        let mut record = s.to_record();
        record.l = now;
        self.rewrite(s, record, now).await
    }

    /// Records that the user behind `s` was re-read through the backend: `user` becomes the
    /// snapshot and the revalidation clock restarts. Returns the new cookie value to send with
    /// the `cookie` store (as [`touch`](Self::touch)); `None` otherwise.
    #[must_use = "with the `cookie` store, the returned cookie value must be sent"]
    pub async fn revalidated(&self, s: &Session, user: &User) -> Option<String> {
        self.revalidated_with_tokens(s, user, None).await
    }

    /// As [`revalidated`](Self::revalidated), replacing the session's provider tokens with
    /// `tokens` when given (a refresh rotated them).
    #[must_use = "with the `cookie` store, the returned cookie value must be sent"]
    pub async fn revalidated_with_tokens(
        &self,
        s: &Session,
        user: &User,
        tokens: Option<&ProviderTokens>,
    ) -> Option<String> {
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
        self.rewrite(s, record, now).await
    }

    /// With the Redis store, which replicas share: takes the refresh lock of `s` (for at most
    /// `hold`) before the caller refreshes it at its provider, so that two replicas never
    /// spend the same refresh token (a provider that rotates them refuses the second use and
    /// may revoke the grant). When another replica holds the lock, waits for it (at most
    /// `hold`) and returns the session as that replica left it, if it was revalidated since `s`
    /// was loaded. [`RefreshTurn::Mine`] otherwise, and always with the other stores; the
    /// caller then calls [`refresh_done`](Self::refresh_done) once the refreshed session is
    /// written or ended.
    pub(crate) async fn refresh_turn(
        &self,
        s: &Session,
        hold: std::time::Duration,
    ) -> Result<RefreshTurn, SessionError> {
        let Store::Redis(r) = &self.store else {
            return Ok(RefreshTurn::Mine);
        };
        let hold_ms = u64::try_from(hold.as_millis()).unwrap_or(u64::MAX);
        let deadline = now_ms().saturating_add(hold_ms);
        loop {
            let mine = r.lock_refresh(&s.id, hold_ms).await?;
            // Another replica may have refreshed it since it was loaded, or just now.
            if let Some(newer) = self.reload(s).await?
                && newer.validated_ms > s.validated_ms
            {
                if mine {
                    r.unlock_refresh(&s.id).await?;
                }
                return Ok(RefreshTurn::Refreshed(Box::new(newer)));
            }
            if mine || now_ms() >= deadline {
                return Ok(RefreshTurn::Mine);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Releases the refresh lock [`refresh_turn`](Self::refresh_turn) took for `s`.
    pub(crate) async fn refresh_done(&self, s: &Session) {
        if let Store::Redis(r) = &self.store
            && let Err(e) = r.unlock_refresh(&s.id).await
        {
            tracing::warn!(error = %crate::error_chain::Chain(&e), "could not release a session's refresh lock");
        }
    }

    /// The session `s` as the Redis store holds it now.
    async fn reload(&self, s: &Session) -> Result<Option<Session>, SessionError> {
        let Store::Redis(r) = &self.store else {
            return Ok(None);
        };
        Ok(r.get(&s.id)
            .await?
            .filter(|record| self.expires_at(record) > now_ms())
            .and_then(|record| self.opened(&s.id, record))
            .map(|record| Session::from_record(s.id, record)))
    }

    /// Stores `record` for `s`; with the `cookie` store, returns the sealed cookie value.
    async fn rewrite(&self, s: &Session, record: Record, now: u64) -> Option<String> {
        let expires = self.expires_at(&record);
        let record = match self.at_rest(&s.id, record) {
            Ok(record) => record,
            Err(e) => {
                tracing::warn!(error = %crate::error_chain::Chain(&e), "could not refresh a session");
                return None;
            }
        };
        let result = match &self.store {
            Store::Memory(m) => {
                m.update(&s.id, record, expires);
                Ok(None)
            }
            Store::Sql(st) => st.put(&s.id, &record, expires, false).await.map(|()| None),
            Store::Redis(r) => r
                .put(&s.id, &record, expires, now, false)
                .await
                .map(|()| None),
            Store::Cookie(c) => c.seal(&s.id, &record).map(Some),
        };
        result.unwrap_or_else(|e| {
            tracing::warn!(error = %crate::error_chain::Chain(&e), "could not refresh a session");
            None
        })
    }

    /// `record` as the store keeps it for session `id`: with the SQL and Redis stores, its
    /// provider tokens sealed ([`TokenSeal`]); unchanged elsewhere.
    fn at_rest(&self, id: &SessionId, record: Record) -> Result<Record, SessionError> {
        match &self.tokens_seal {
            Some(seal) => seal.seal(id, record),
            None => Ok(record),
        }
    }

    /// `record` as the store returned it for session `id`, its provider tokens opened; `None`
    /// when they do not open (altered, moved from another session's row): the session ends,
    /// rather than go on without the provider's say at revalidation.
    fn opened(&self, id: &SessionId, record: Record) -> Option<Record> {
        match &self.tokens_seal {
            Some(seal) => seal.open(id, record),
            None => Some(record),
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
                let fresh = B64.encode(self.keys.version_digest(v));
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
        match self.keys.verify_id(cookie_value) {
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

#[cfg(test)]
mod tests {
    //! The manager apart from its stores (which `tests/session/stores.rs` runs against real
    //! services): cookie attributes, CSRF pairs, config refusals, the memory store.

    use std::time::{Duration, Instant};

    use auth_core::User;

    use super::SessionManager;
    use crate::config::model::{SameSiteSetting, SessionConfig, spanned};
    use crate::session::{SessionError, resolve_secret};

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-test-secret";

    fn session_config(store: &str, ttl: Duration, idle: Duration) -> SessionConfig {
        SessionConfig {
            store: spanned(crate::config::Parsed::new(store)),
            ttl: auth_core::Duration(ttl),
            idle_timeout: auth_core::Duration(idle),
            ..SessionConfig::default()
        }
    }

    fn alice() -> User {
        User::new("alice")
            .with_email("alice@example.org")
            .with_groups(["staff", "admins"])
    }

    async fn memory_manager(ttl: Duration) -> SessionManager {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = session_config("memory", ttl, Duration::from_secs(600));
        SessionManager::from_config(&cfg, SECRET, dir.path())
            .await
            .expect("manager")
    }

    #[tokio::test]
    async fn sessions_survive_a_restart_with_the_generated_secret() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spec = format!("sqlite://{}", dir.path().join("s.db").display());
        let cfg = session_config(&spec, Duration::from_secs(60), Duration::from_secs(60));
        let secret = resolve_secret(&cfg, dir.path()).expect("secret");
        let m = SessionManager::from_config(&cfg, &secret, dir.path())
            .await
            .expect("manager");
        let cookie = m.create(&alice(), None).await.expect("create");
        drop(m);
        let secret = resolve_secret(&cfg, dir.path()).expect("secret");
        let m = SessionManager::from_config(&cfg, &secret, dir.path())
            .await
            .expect("manager");
        assert!(m.load(&cookie).await.expect("load").is_some());
    }

    #[tokio::test]
    async fn bad_configs_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = session_config("memory", Duration::from_secs(60), Duration::from_secs(60));
        assert!(matches!(
            SessionManager::from_config(&cfg, b"short", dir.path()).await,
            Err(SessionError::SecretTooShort(5))
        ));
        let cfg = session_config(
            "memcached://x",
            Duration::from_secs(60),
            Duration::from_secs(60),
        );
        assert!(matches!(
            SessionManager::from_config(&cfg, SECRET, dir.path()).await,
            Err(SessionError::UnknownStore(_))
        ));
        let cfg = session_config("memory", Duration::ZERO, Duration::from_secs(60));
        assert!(
            SessionManager::from_config(&cfg, SECRET, dir.path())
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn unknown_store_error_hides_the_password() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = session_config(
            "mongodb://admin:hunter2@db/x",
            Duration::from_secs(60),
            Duration::from_secs(60),
        );
        let err = SessionManager::from_config(&cfg, SECRET, dir.path())
            .await
            .expect_err("unknown store");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[tokio::test]
    async fn session_cookie_attributes() {
        let m = memory_manager(Duration::from_secs(8 * 3600)).await;
        assert_eq!(m.cookie_name(), "gw_session");
        let value = m.create(&alice(), None).await.expect("create");
        let header = m.set_cookie(&value, true);
        let header = header.to_str().expect("ascii");
        let parsed = cookie::Cookie::parse(header.to_string()).expect("parse");
        assert_eq!(parsed.name(), "gw_session");
        assert_eq!(parsed.value(), value);
        assert_eq!(parsed.http_only(), Some(true));
        assert_eq!(parsed.secure(), Some(true));
        assert_eq!(parsed.same_site(), Some(cookie::SameSite::Lax));
        assert_eq!(parsed.path(), Some("/"));
        assert_eq!(parsed.domain(), None, "host-only");
        assert_eq!(
            parsed.max_age(),
            Some(cookie::time::Duration::seconds(8 * 3600))
        );

        let insecure = m.set_cookie(&value, false);
        let parsed =
            cookie::Cookie::parse(insecure.to_str().expect("ascii").to_string()).expect("parse");
        assert_eq!(parsed.secure(), None);

        let cleared = m.clear_cookie(true);
        let parsed =
            cookie::Cookie::parse(cleared.to_str().expect("ascii").to_string()).expect("parse");
        assert_eq!(parsed.name(), "gw_session");
        assert_eq!(parsed.value(), "");
        assert_eq!(parsed.max_age(), Some(cookie::time::Duration::ZERO));
        assert_eq!(parsed.path(), Some("/"));
    }

    #[tokio::test]
    async fn same_site_strict_from_config() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = session_config("memory", Duration::from_secs(60), Duration::from_secs(60));
        cfg.same_site = SameSiteSetting::Strict;
        cfg.cookie_name = Some("app_sid".into());
        let m = SessionManager::from_config(&cfg, SECRET, dir.path())
            .await
            .expect("manager");
        let header = m.set_cookie("v", true);
        let parsed =
            cookie::Cookie::parse(header.to_str().expect("ascii").to_string()).expect("parse");
        assert_eq!(parsed.name(), "app_sid");
        assert_eq!(parsed.same_site(), Some(cookie::SameSite::Strict));
        assert_eq!(m.csrf_cookie_name(), "app_sid_csrf");
    }

    #[tokio::test]
    async fn pre_session_csrf_is_a_signed_pair() {
        let m = memory_manager(Duration::from_secs(3600)).await;
        let (cookie, token) = m.pre_session_csrf();
        let (cookie2, token2) = m.pre_session_csrf();
        assert_ne!(cookie, cookie2);
        assert!(m.verify_pre_session_csrf(&cookie, &token));
        assert!(m.verify_pre_session_csrf(&cookie2, &token2));
        assert!(!m.verify_pre_session_csrf(&cookie, &token2), "mixed pairs");
        assert!(!m.verify_pre_session_csrf(&cookie, ""));
        assert!(!m.verify_pre_session_csrf("", &token));
        assert!(!m.verify_pre_session_csrf(&token, &token));
        // Another secret's pair does not verify.
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = session_config(
            "memory",
            Duration::from_secs(3600),
            Duration::from_secs(600),
        );
        let other = SessionManager::from_config(&cfg, &[9u8; 32], dir.path())
            .await
            .expect("manager");
        let (oc, ot) = other.pre_session_csrf();
        assert!(!m.verify_pre_session_csrf(&oc, &ot));
        // Forged timestamp: the cookie signature breaks.
        let (payload, mac) = cookie.split_once('.').expect("dot");
        let mut forged = payload.as_bytes().to_vec();
        forged[25] = if forged[25] == b'A' { b'B' } else { b'A' };
        let forged = format!("{}.{mac}", String::from_utf8(forged).expect("ascii"));
        assert!(!m.verify_pre_session_csrf(&forged, &token));

        let header = m.set_csrf_cookie(&cookie, true);
        let parsed =
            cookie::Cookie::parse(header.to_str().expect("ascii").to_string()).expect("parse");
        assert_eq!(parsed.name(), "gw_session_csrf");
        assert_eq!(parsed.http_only(), Some(true));
    }

    #[tokio::test]
    async fn pre_session_csrf_expires() {
        let m = memory_manager(Duration::from_secs(1)).await;
        let (cookie, token) = m.pre_session_csrf();
        assert!(m.verify_pre_session_csrf(&cookie, &token));
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert!(!m.verify_pre_session_csrf(&cookie, &token));
    }

    #[tokio::test]
    async fn memory_load_is_cheap() {
        let m = memory_manager(Duration::from_secs(3600)).await;
        let mut cookies = Vec::new();
        for _ in 0..1000 {
            cookies.push(m.create(&alice(), Some("v")).await.expect("create"));
        }
        let n = 100_000;
        let start = Instant::now();
        for i in 0..n {
            let s = m.load(&cookies[i % cookies.len()]).await.expect("load");
            assert!(s.is_some());
        }
        let per = start.elapsed() / n as u32;
        eprintln!("memory store load: {per:?} per call ({n} calls, 1000 sessions)");
        // Generous for an unoptimized test build on a shared machine; a store round trip or a
        // contended global lock per load would still blow it.
        assert!(per < Duration::from_micros(500), "load took {per:?}");
    }

    #[tokio::test]
    async fn active_sessions_drops_expired_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = session_config(
            "memory",
            Duration::from_millis(300),
            Duration::from_secs(60),
        );
        let m = SessionManager::from_config(&cfg, SECRET, dir.path())
            .await
            .expect("manager");
        m.create(&alice(), None).await.expect("create");
        m.create(&alice(), None).await.expect("create");
        assert_eq!(m.active_sessions(), Some(2));
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert_eq!(m.active_sessions(), Some(0));
    }
}

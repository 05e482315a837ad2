//! The `cookie` store: the session itself, XChaCha20-Poly1305-encrypted in the cookie, so no
//! shared state is needed. Logout adds the session's id to a revocation list (kept in memory
//! until the session's absolute deadline), so a replayed cookie is refused afterwards. With
//! several replicas the list is shared through Redis
//! ([`SessionManager::with_shared_revocations`](super::SessionManager::with_shared_revocations)).

use std::sync::atomic::{AtomicU64, Ordering};

use ::redis::aio::ConnectionManager;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use dashmap::DashMap;

use super::{B64, KEY_LEN, Record, SessionError, SessionId, now_ms, random_bytes, storage_key};

const REVOKED_PREFIX: &str = "gateway:session-revoked:";

const NONCE_LEN: usize = 24;
/// Associated data: binds ciphertexts to this use and format version.
const AAD: &[u8] = b"gateway/session/cookie/v1";
/// Largest cookie value we emit; browsers keep about 4096 bytes per cookie, attributes included.
const MAX_VALUE_LEN: usize = 3800;
/// Expired revocations are swept every this many revocations.
const SWEEP_EVERY: u64 = 256;

#[derive(serde::Serialize, serde::Deserialize)]
struct Sealed {
    i: String,
    #[serde(flatten)]
    r: Record,
}

pub(super) struct CookieStore {
    aead: XChaCha20Poly1305,
    revoked: DashMap<SessionId, u64>,
    revocations: AtomicU64,
    shared: Option<ConnectionManager>,
}

fn unavailable(e: ::redis::RedisError) -> SessionError {
    SessionError::Unavailable(e.to_string())
}

impl CookieStore {
    pub(super) fn new(key: &[u8; KEY_LEN]) -> Self {
        CookieStore {
            aead: XChaCha20Poly1305::new(key.into()),
            revoked: DashMap::new(),
            revocations: AtomicU64::new(0),
            shared: None,
        }
    }

    /// Also records and checks revocations in Redis at `url`, shared by replicas.
    pub(super) fn share_revocations(&mut self, url: &str) -> Result<(), SessionError> {
        let url = auth_storage::RedisUrl::parse(url).map_err(SessionError::Unavailable)?;
        self.shared =
            Some(auth_storage::redis::lazy_manager(&url, None).map_err(SessionError::Unavailable)?);
        Ok(())
    }

    /// The cookie value carrying `record` under revocation id `id`.
    pub(super) fn seal(&self, id: &SessionId, record: &Record) -> Result<String, SessionError> {
        let plain = serde_json::to_vec(&SealedRef {
            i: &B64.encode(id),
            r: record,
        })
        .map_err(|e| SessionError::Unavailable(format!("cannot encode session: {e}")))?;
        let nonce: [u8; NONCE_LEN] = random_bytes();
        let ct = self
            .aead
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
                    aad: AAD,
                },
            )
            .map_err(|_| SessionError::Unavailable("cannot encrypt session".into()))?;
        let mut raw = Vec::with_capacity(NONCE_LEN + ct.len());
        raw.extend_from_slice(&nonce);
        raw.extend_from_slice(&ct);
        let value = B64.encode(raw);
        if value.len() > MAX_VALUE_LEN {
            return Err(SessionError::TooLarge(value.len()));
        }
        Ok(value)
    }

    /// The id and record sealed in `value`; `None` when it is malformed or was not sealed by us.
    pub(super) fn open(&self, value: &str) -> Option<(SessionId, Record)> {
        if value.len() > MAX_VALUE_LEN {
            return None;
        }
        let raw = B64.decode(value).ok()?;
        if raw.len() < NONCE_LEN + 16 {
            return None;
        }
        let (nonce, ct) = raw.split_at(NONCE_LEN);
        let plain = self
            .aead
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad: AAD })
            .ok()?;
        let sealed: Sealed = serde_json::from_slice(&plain).ok()?;
        let id = super::decode_exact::<KEY_LEN>(&sealed.i)?;
        Some((id, sealed.r))
    }

    /// Refuses `id` from now until `until` (Unix ms); `Err` if the shared list is unreachable.
    pub(super) async fn revoke(&self, id: SessionId, until: u64) -> Result<(), SessionError> {
        let now = now_ms();
        if self.revocations.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.revoked.retain(|_, exp| *exp > now);
        }
        self.revoked.insert(id, until);
        if let Some(conn) = &self.shared {
            let mut conn = conn.clone();
            ::redis::cmd("SET")
                .arg(format!("{REVOKED_PREFIX}{}", storage_key(&id)))
                .arg(1)
                .arg("PX")
                .arg(until.saturating_sub(now).max(1))
                .query_async::<()>(&mut conn)
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }

    /// Whether `id` was revoked; `Err` if the shared list is unreachable (fail closed).
    pub(super) async fn is_revoked(&self, id: &SessionId, now: u64) -> Result<bool, SessionError> {
        if self.revoked.get(id).is_some_and(|exp| *exp > now) {
            return Ok(true);
        }
        let Some(conn) = &self.shared else {
            return Ok(false);
        };
        let mut conn = conn.clone();
        ::redis::cmd("EXISTS")
            .arg(format!("{REVOKED_PREFIX}{}", storage_key(id)))
            .query_async::<bool>(&mut conn)
            .await
            .map_err(unavailable)
    }
}

#[derive(serde::Serialize)]
struct SealedRef<'a> {
    i: &'a str,
    #[serde(flatten)]
    r: &'a Record,
}

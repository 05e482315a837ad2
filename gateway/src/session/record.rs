//! What a store keeps for one session ([`Record`]) and the live [`Session`] a load returns.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use auth_core::{ProviderTokens, User};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::secret::{B64, KEY_LEN};

/// A random session id (stateful stores) or revocation id (cookie store).
pub(super) type SessionId = [u8; KEY_LEN];

/// What a store keeps for one session.
#[derive(Clone, Serialize, Deserialize)]
pub(super) struct Record {
    /// Chain entry that authenticated the user.
    pub(super) e: Arc<str>,
    /// base64url HMAC of the credential version, if the backend gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) v: Option<Arc<str>>,
    /// Creation, last use and last revalidation, in Unix milliseconds.
    pub(super) c: u64,
    pub(super) l: u64,
    pub(super) r: u64,
    /// Per-session CSRF secret, base64url.
    pub(super) x: Arc<str>,
    /// The user snapshot.
    pub(super) u: Arc<User>,
    /// What a single sign-on provider issued (refresh and ID token): secrets, never logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) p: Option<Arc<ProviderTokens>>,
    /// The same, sealed ([`TokenSeal`](super::token_seal::TokenSeal)): how the SQL and Redis
    /// stores keep them, instead of `p`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) t: Option<Arc<str>>,
}

/// A live session, as [`SessionManager::load`](super::SessionManager::load) returns it. Its
/// `Debug` shows neither the id nor the CSRF secret. Changing its fields changes nothing in the
/// store: use [`SessionManager::revalidated`](super::SessionManager::revalidated) to record a
/// new user snapshot.
#[derive(Clone)]
pub struct Session {
    pub(super) id: SessionId,
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
    pub(super) version_digest: Option<Arc<str>>,
    pub(super) csrf_secret: Arc<str>,
    pub(super) created_ms: u64,
    pub(super) last_seen_ms: u64,
    pub(super) validated_ms: u64,
    pub(super) provider_tokens: Option<Arc<ProviderTokens>>,
}

impl Session {
    pub(super) fn from_record(id: SessionId, r: Record) -> Session {
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
        }
    }

    pub(super) fn to_record(&self) -> Record {
        Record {
            e: self.entry.clone(),
            v: self.version_digest.clone(),
            c: self.created_ms,
            l: self.last_seen_ms,
            r: self.validated_ms,
            x: self.csrf_secret.clone(),
            u: self.user.clone(),
            p: self.provider_tokens.clone(),
            t: None,
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

/// Now, in Unix milliseconds.
pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn from_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

/// Storage key for `id` in shared stores: a digest, so reading the store yields no cookie.
pub(super) fn storage_key(id: &SessionId) -> String {
    use base64::Engine;
    use sha2::Digest;
    B64.encode(Sha256::digest(id))
}

//! The two CSRF schemes: per-session tokens (masked afresh on each page, BREACH) for forms of a
//! signed-in user, and signed pre-session pairs (a cookie and a form field) for the login form
//! and single sign-on, before any session exists.

use std::time::Duration;

use base64::Engine;
use subtle::ConstantTimeEq;

use super::manager::SessionManager;
use super::record::{Session, now_ms};
use super::secret::{B64, KEY_LEN, decode_exact, random_bytes};

/// How long a pre-session (login form) CSRF pair stays valid at most (and never past
/// `session.ttl`).
pub(super) const PRE_SESSION_CSRF_TTL: Duration = Duration::from_secs(2 * 3600);

impl SessionManager {
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
            B64.encode(self.keys.csrf_mac(b"cookie", &payload))
        );
        let token = B64.encode(self.keys.csrf_mac(b"form", &payload));
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
        let cookie_ok = self.keys.csrf_mac(b"cookie", &payload).ct_eq(&mac);
        let token_ok = self.keys.csrf_mac(b"form", &payload).ct_eq(&token);
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
        Some(B64.encode(self.keys.csrf_mac(b"derived", &input)))
    }
}

//! The provider tokens of a session (refresh and ID token), sealed for the server-side stores
//! (SQL, Redis) so that reading the table or the keys yields no token: XChaCha20-Poly1305 under
//! a key derived from the session secret, a random nonce per write, and the session's storage
//! key as associated data, so a sealed value copied into another session's row does not open.
//!
//! The `cookie` store seals the whole record already, and the `memory` store keeps its records
//! in the process that holds the key: both keep the tokens as they are.

use std::sync::Arc;

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use super::{B64, KEY_LEN, Record, SessionError, SessionId, random_bytes, storage_key};

const NONCE_LEN: usize = 24;
/// Associated data before the storage key: binds ciphertexts to this use and format version.
const AAD_PREFIX: &[u8] = b"gateway/session/provider-tokens/v1\0";

/// Seals and opens the provider tokens of records kept in a server-side store.
pub(super) struct TokenSeal {
    aead: XChaCha20Poly1305,
}

impl TokenSeal {
    /// The seal for `key` (from [`provider_tokens_key`](super::secret::provider_tokens_key)).
    pub(super) fn new(key: &[u8; KEY_LEN]) -> TokenSeal {
        TokenSeal {
            aead: XChaCha20Poly1305::new(key.into()),
        }
    }

    fn aad(id: &SessionId) -> Vec<u8> {
        let mut aad = AAD_PREFIX.to_vec();
        aad.extend_from_slice(storage_key(id).as_bytes());
        aad
    }

    /// `record` as the store keeps it for session `id`: its tokens (`p`) moved, sealed, to `t`.
    pub(super) fn seal(&self, id: &SessionId, mut record: Record) -> Result<Record, SessionError> {
        let Some(tokens) = record.p.take() else {
            record.t = None;
            return Ok(record);
        };
        let plain = serde_json::to_vec(&*tokens)
            .map_err(|e| SessionError::Unavailable(format!("cannot encode session: {e}")))?;
        let nonce: [u8; NONCE_LEN] = random_bytes();
        let ct = self
            .aead
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
                    aad: &Self::aad(id),
                },
            )
            .map_err(|_| SessionError::Unavailable("cannot encrypt session tokens".into()))?;
        let mut raw = Vec::with_capacity(NONCE_LEN + ct.len());
        raw.extend_from_slice(&nonce);
        raw.extend_from_slice(&ct);
        record.t = Some(B64.encode(raw).into());
        Ok(record)
    }

    /// `record` as the store returned it for session `id`, its tokens opened back into `p`.
    /// `None` when they do not open (altered, moved from another session's row, sealed under
    /// another secret) or when the record holds them in clear, which this seal never writes:
    /// the caller ends the session rather than keep it without the provider's say.
    pub(super) fn open(&self, id: &SessionId, mut record: Record) -> Option<Record> {
        if record.p.is_some() {
            return None;
        }
        let Some(sealed) = record.t.take() else {
            return Some(record);
        };
        let raw = B64.decode(sealed.as_bytes()).ok()?;
        if raw.len() < NONCE_LEN + 16 {
            return None;
        }
        let (nonce, ct) = raw.split_at(NONCE_LEN);
        let plain = self
            .aead
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: &Self::aad(id),
                },
            )
            .ok()?;
        record.p = Some(Arc::new(serde_json::from_slice(&plain).ok()?));
        Some(record)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use auth_core::{ProviderTokens, User};

    use super::TokenSeal;
    use crate::session::record::Record;

    fn record(tokens: Option<ProviderTokens>) -> Record {
        Record {
            e: "corp".into(),
            v: None,
            c: 1,
            l: 1,
            r: 1,
            x: "csrf".into(),
            u: Arc::new(User::default()),
            p: tokens.map(Arc::new),
            t: None,
        }
    }

    fn tokens() -> ProviderTokens {
        ProviderTokens {
            refresh_token: Some("refresh-token-text".into()),
            id_token: Some("id.token.text".into()),
        }
    }

    #[test]
    fn sealed_tokens_leave_no_text_and_open_only_for_their_session() {
        let seal = TokenSeal::new(&[7; 32]);
        let (id, other) = ([1; 32], [2; 32]);
        let stored = seal.seal(&id, record(Some(tokens()))).expect("seals");
        assert!(stored.p.is_none());
        let json = serde_json::to_string(&stored).expect("json");
        assert!(
            !json.contains("refresh-token-text") && !json.contains("id.token.text"),
            "{json}"
        );
        // Two writes, two nonces.
        let again = seal.seal(&id, record(Some(tokens()))).expect("seals");
        assert_ne!(stored.t, again.t);

        let opened = seal.open(&id, stored.clone()).expect("opens");
        assert_eq!(opened.p.as_deref(), Some(&tokens()));
        assert!(opened.t.is_none());
        assert!(
            seal.open(&other, stored.clone()).is_none(),
            "moved to another row"
        );
        assert!(
            TokenSeal::new(&[8; 32]).open(&id, stored.clone()).is_none(),
            "another secret"
        );
        let sealed = stored.t.clone().expect("sealed");
        let mut altered = sealed.to_string().into_bytes();
        let last = altered.len() - 2;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        let mut tampered = stored.clone();
        tampered.t = Some(String::from_utf8(altered).expect("ascii").into());
        assert!(seal.open(&id, tampered).is_none(), "altered");
        let mut short = stored.clone();
        short.t = Some("AAAA".into());
        assert!(seal.open(&id, short).is_none(), "truncated");
        // Clear tokens in a sealed store's row: never written by the seal.
        assert!(seal.open(&id, record(Some(tokens()))).is_none());
    }

    #[test]
    fn records_without_tokens_pass_unchanged() {
        let seal = TokenSeal::new(&[7; 32]);
        let stored = seal.seal(&[1; 32], record(None)).expect("seals");
        assert!(stored.p.is_none() && stored.t.is_none());
        let opened = seal.open(&[1; 32], stored).expect("opens");
        assert!(opened.p.is_none());
    }
}

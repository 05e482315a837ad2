//! API keys of the local user store: their format (`ag_<id>_<secret>`), how they are made and
//! how a presented key is checked against the stored hash.
//!
//! The secret is 32 random bytes, so a fast salted SHA-256 is enough to store it (no password
//! hash: nothing to slow down against a guessable input), and checking a key costs one digest —
//! cheap on every request. The id is the lookup key (one indexed row), shown by `keys list` and
//! `keys revoke`; it is not secret.

use std::fmt;

use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The prefix of every key the store makes.
pub const KEY_PREFIX: &str = "ag_";

/// Random bytes in a key id (hex in the key).
const ID_BYTES: usize = 8;
/// Random bytes in a key secret (hex in the key).
const SECRET_BYTES: usize = 32;
/// Random bytes of salt per stored key.
const SALT_BYTES: usize = 16;

/// A key just made: shown once (`Display` writes the whole key), then only its hash is kept.
pub struct NewKey {
    /// The id (the lookup key; not secret).
    pub id: String,
    secret: String,
}

impl NewKey {
    /// A fresh random key.
    pub(crate) fn generate() -> NewKey {
        NewKey {
            id: random_hex(ID_BYTES),
            secret: random_hex(SECRET_BYTES),
        }
    }

    /// A random salt and the hash of this key's secret under it, as stored.
    pub(crate) fn salted_hash(&self) -> (String, String) {
        let salt = random_hex(SALT_BYTES);
        let hash = hash_secret(&salt, &self.id, &self.secret);
        (salt, hash)
    }
}

impl fmt::Display for NewKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{KEY_PREFIX}{}_{}", self.id, self.secret)
    }
}

impl fmt::Debug for NewKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewKey")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// A presented key split into its id and secret; `None` when it is not a key of this store.
pub(crate) fn parse(key: &str) -> Option<(&str, &str)> {
    let (id, secret) = key.strip_prefix(KEY_PREFIX)?.split_once('_')?;
    let hex = |s: &str, n: usize| s.len() == 2 * n && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex(id, ID_BYTES) && hex(secret, SECRET_BYTES)).then_some((id, secret))
}

/// Whether `secret` (of key `id`) matches the stored `salt` and `hash`, in constant time.
pub(crate) fn matches(salt: &str, hash: &str, id: &str, secret: &str) -> bool {
    hash_secret(salt, id, secret)
        .as_bytes()
        .ct_eq(hash.as_bytes())
        .into()
}

/// Hex SHA-256 of (salt, id, secret), each length-prefixed.
fn hash_secret(salt: &str, id: &str, secret: &str) -> String {
    let mut digest = Sha256::new();
    for part in [salt, id, secret] {
        digest.update((part.len() as u64).to_be_bytes());
        digest.update(part.as_bytes());
    }
    hex(&digest.finalize())
}

fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex(&bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_key_parses_and_matches_only_its_hash() {
        let key = NewKey::generate();
        let text = key.to_string();
        let (id, secret) = parse(&text).expect("parses");
        assert_eq!(id, key.id);
        let (salt, hash) = key.salted_hash();
        assert!(matches(&salt, &hash, id, secret));
        let other = NewKey::generate();
        assert!(!matches(&salt, &hash, id, &other.secret));
        assert!(!format!("{key:?}").contains(&key.secret));
        for bad in [
            "",
            "ag_",
            "ag_abc_def",
            &text.replacen("ag_", "xx_", 1),
            &format!("{text}0"),
            &text
                .to_uppercase()
                .replacen("AG_", "ag_", 1)
                .replace('A', "g"),
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}

//! Password hash verification: every format the built-in backends read, detected from the
//! hash's own prefix, verified off the async reactor threads on a bounded pool.
//!
//! A backend that holds password hashes calls [`verify_stored`] and nothing else: it carries the
//! whole protocol (unknown users and unusable hashes cost what a wrong password does, refused
//! formats are that user's refusal with a rate-limited WARN and a metric, bcrypt and DES crypt
//! never truncate). [`verify`] and [`verify_blocking`] are the bare check underneath.
//!
//! Formats: Argon2 (`$argon2id$`, `$argon2i$`, `$argon2d$`), bcrypt (`$2y$`, `$2b$`, `$2a$`),
//! SHA-256/512 crypt (`$5$`, `$6$`), MD5 crypt (`$1$`, Apache `$apr1$`), Apache `{SHA}`, and
//! Django's `pbkdf2_sha256$`, `pbkdf2_sha1$`, `argon2$`, `bcrypt_sha256$`, `bcrypt$`, `scrypt$`.
//! Django's legacy `md5$`, `sha1$`, unsalted MD5 and `sha1$$` need [`VerifyPolicy::allow_legacy`];
//! traditional DES crypt needs [`VerifyPolicy::allow_des_crypt`] and plaintext
//! [`VerifyPolicy::allow_plaintext`] (or [`HashFormat::Plain`]). Empty hashes and Django's
//! unusable `!...` hashes are always refused. Costs are read from the hash, and an absurd one is
//! refused before any hashing starts. bcrypt (`$2?$`, Django `bcrypt$`) never matches a password
//! over 72 bytes and DES crypt one over 8 bytes: they would read only a prefix of it.

mod md5_crypt;
mod pool;
mod refusal;
mod scheme;
mod stored;

use std::fmt;
use std::sync::OnceLock;

use serde::Deserialize;
use sha2::{Digest, Sha256};

pub use pool::{PoolConfig, configure_pool};
pub use refusal::{REASONS as REFUSAL_REASONS, refusal_counts};
pub use stored::{Account, Verification, verify_stored};

/// Which weak formats a backend accepts besides the modern ones. The default refuses them all;
/// turn a switch on only when the operator asked for it in the config.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VerifyPolicy {
    /// Django's legacy `md5$`, `sha1$`, unsalted MD5 and `sha1$$` hashes.
    pub allow_legacy: bool,
    /// A stored value that matches no hash format is compared as a plaintext password.
    pub allow_plaintext: bool,
    /// Traditional 13-character DES crypt (`htpasswd -d`), which reads only 8 characters.
    pub allow_des_crypt: bool,
}

impl VerifyPolicy {
    /// Modern formats only (the default).
    pub const STRICT: VerifyPolicy = VerifyPolicy {
        allow_legacy: false,
        allow_plaintext: false,
        allow_des_crypt: false,
    };
}

/// What a backend's `password_format` option says about its stored hashes (YAML: `auto`,
/// `django`, `bcrypt`, `argon2`, `sha-crypt`, `plain`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HashFormat {
    /// Detect the format from the hash's prefix.
    #[default]
    Auto,
    /// Django's `algorithm$...` encodings only.
    Django,
    /// Bcrypt `$2y$`, `$2b$`, `$2a$` only.
    Bcrypt,
    /// PHC Argon2 `$argon2id$`, `$argon2i$`, `$argon2d$` only.
    Argon2,
    /// SHA-crypt `$5$` and `$6$` only.
    ShaCrypt,
    /// The stored value is the password itself. Choosing this format is the operator's explicit
    /// permission; [`VerifyPolicy::allow_plaintext`] is not needed on top.
    Plain,
}

impl fmt::Display for HashFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HashFormat::Auto => "auto",
            HashFormat::Django => "django",
            HashFormat::Bcrypt => "bcrypt",
            HashFormat::Argon2 => "argon2",
            HashFormat::ShaCrypt => "sha-crypt",
            HashFormat::Plain => "plain",
        })
    }
}

/// Why a stored hash could not be checked. Never contains the hash or the password. Through
/// [`verify_stored`] it is the user's refusal ([`Verification::Refused`]), except
/// [`HashError::Busy`] and [`HashError::Internal`] ([`Verification::Unavailable`]); never a
/// success.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HashError {
    /// The stored hash is empty.
    #[error("the stored password hash is empty")]
    Empty,
    /// The stored hash starts with `!` (Django's unusable password).
    #[error("the account has an unusable password (`!` hash)")]
    Unusable,
    /// No known format has this prefix.
    #[error("unknown password hash format {format}")]
    UnknownFormat {
        /// The prefix (`$9$`, `crypt`...) or a description; never the hash itself.
        format: String,
    },
    /// The hash is of another format than the configured `password_format`.
    #[error("password hash is {found}, but password_format is `{expected}`")]
    FormatMismatch {
        /// The configured format.
        expected: HashFormat,
        /// The format found.
        found: String,
    },
    /// A legacy format the policy does not allow.
    #[error("legacy password hash format `{scheme}` refused (allow_legacy is off)")]
    LegacyRefused {
        /// The format.
        scheme: &'static str,
    },
    /// DES crypt, not allowed by the policy.
    #[error("DES crypt password hash refused (allow_des_crypt is off)")]
    DesCryptRefused,
    /// The cost read from the hash is beyond what this gateway will spend.
    #[error("password hash `{scheme}` asks for an absurd cost ({detail}); refused")]
    CostTooHigh {
        /// The format.
        scheme: &'static str,
        /// Which parameter, its value and the limit.
        detail: String,
    },
    /// The hash has a known prefix but cannot be parsed.
    #[error("malformed `{scheme}` password hash: {reason}")]
    Malformed {
        /// The format.
        scheme: &'static str,
        /// What is wrong (never the hash itself).
        reason: String,
    },
    /// Too many verifications are queued: answer 503 rather than queue more.
    #[error("password verification is saturated; try again later")]
    Busy,
    /// The verification task failed (a bug): treat as unavailable.
    #[error("password verification failed internally: {0}")]
    Internal(String),
}

impl HashError {
    /// Whether this is [`HashError::Busy`] (the pool is saturated).
    pub fn is_busy(&self) -> bool {
        matches!(self, HashError::Busy)
    }
}

/// Checks `password` against `stored_hash`. `Ok(true)` only when it matches; `Ok(false)` when
/// the hash is valid and the password is not; an error for anything that cannot be checked.
/// CPU-heavy and synchronous. A backend calls [`verify_stored`] instead, which adds the
/// protocol (unknown users, refusals, policy, timing).
pub fn verify(
    stored_hash: &str,
    password: &str,
    format: HashFormat,
    policy: &VerifyPolicy,
) -> Result<bool, HashError> {
    scheme::Scheme::identify(stored_hash, format, policy)?.check(password)
}

/// Recognizes `stored_hash` without hashing anything and names its format (`"bcrypt"`,
/// `"django pbkdf2_sha256"`, `"plain"`...), or says why [`verify`] would refuse it. Cheap: use it
/// to validate a configuration (`authgate check`) or to warn about weak formats when loading.
pub fn identify(
    stored_hash: &str,
    format: HashFormat,
    policy: &VerifyPolicy,
) -> Result<&'static str, HashError> {
    scheme::Scheme::identify(stored_hash, format, policy).map(|s| s.name())
}

/// [`verify`] on the bounded hashing pool, off the reactor threads. Returns [`HashError::Busy`]
/// at once when the pool's queue is full. A backend calls [`verify_stored`] instead.
pub async fn verify_blocking(
    stored_hash: &str,
    password: &str,
    format: HashFormat,
    policy: &VerifyPolicy,
) -> Result<bool, HashError> {
    // Parse (and refuse absurd costs) on the caller's thread: it is cheap and keeps bad hashes
    // from taking a pool slot.
    let scheme = scheme::Scheme::identify(stored_hash, format, policy)?;
    let password = password.to_owned();
    pool::run(move || scheme.check(&password)).await?
}

/// Spends the time a wrong password against `cost_like` would, for an unknown user, so that
/// "no such user" and "wrong password" cannot be told apart by timing. Pass a hash of the same
/// format and cost as the backend's real ones (one of its stored hashes will do: it is checked
/// against a random password and the result is thrown away); `""` uses [`dummy_hash`].
/// Only [`HashError::Busy`] and [`HashError::Internal`] are returned; the caller then answers as
/// it would for a known user in that case.
pub async fn dummy_verify(cost_like: &str) -> Result<(), HashError> {
    let hash = if cost_like.is_empty() {
        dummy_hash()
    } else {
        cost_like
    };
    let permissive = VerifyPolicy {
        allow_legacy: true,
        allow_plaintext: true,
        allow_des_crypt: true,
    };
    match verify_blocking(hash, &random_password(), HashFormat::Auto, &permissive).await {
        Err(e @ (HashError::Busy | HashError::Internal(_))) => Err(e),
        _ => Ok(()),
    }
}

/// A password nobody knows, hashed when the real one must not be (same time, never a match).
fn random_password() -> String {
    let random: [u8; 24] = rand::random();
    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, random)
}

/// The hash an unknown user should cost like: one of `hashes` in the format most of them use
/// (the first such, in iteration order), skipping those `policy` refuses. Pass it to
/// [`dummy_verify`]; `None` when no hash is usable (then pass `""`).
pub fn representative_hash<'a>(
    hashes: impl IntoIterator<Item = &'a str>,
    format: HashFormat,
    policy: &VerifyPolicy,
) -> Option<&'a str> {
    let mut by_scheme: Vec<(&'static str, usize, &'a str)> = Vec::new();
    for hash in hashes {
        let Ok(name) = identify(hash, format, policy) else {
            continue;
        };
        match by_scheme.iter_mut().find(|(n, _, _)| *n == name) {
            Some((_, count, _)) => *count += 1,
            None => by_scheme.push((name, 1, hash)),
        }
    }
    // `max_by_key` keeps the last of equals; reversing keeps the first-seen format on a tie.
    by_scheme
        .into_iter()
        .rev()
        .max_by_key(|(_, count, _)| *count)
        .map(|(_, _, hash)| hash)
}

/// A fixed Argon2id hash with the parameters of [`hash_password`], of no known password: what
/// [`dummy_verify`] checks against when a backend has no hash of its own to imitate.
pub fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        hash_password(&random_password()).unwrap_or_else(|_| {
            "$argon2id$v=19$m=19456,t=2,p=1$ZHVtbXlzYWx0ZHVtbXk$dW5rbm93bnVua25vd251bmtub3dudW5rbm93bg"
                .to_string()
        })
    })
}

/// Hashes a new password with Argon2id and OWASP's parameters (m = 19 MiB, t = 2, p = 1), as a
/// PHC string (`$argon2id$v=19$...`). CPU-heavy: from async code run it with
/// `tokio::task::spawn_blocking`.
pub fn hash_password(password: &str) -> Result<String, HashError> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let params = argon2::Params::new(19 * 1024, 2, 1, None).map_err(|e| HashError::Malformed {
        scheme: "argon2id",
        reason: e.to_string(),
    })?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    argon
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError::Internal(e.to_string()))
}

/// An opaque version of a stored hash for `User::credential_version`: it changes whenever the
/// hash changes and reveals nothing usable about it (a domain-separated SHA-256 digest,
/// 32 hex characters).
pub fn credential_version(stored_hash: &str) -> String {
    let mut digest = Sha256::new();
    digest.update(b"auth-gateway credential version v1\0");
    digest.update(stored_hash.as_bytes());
    digest.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

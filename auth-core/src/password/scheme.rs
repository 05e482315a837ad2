//! Recognizing a stored hash (cheap, with its cost checked) and checking a password against it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{HashError, HashFormat, VerifyPolicy, md5_crypt};

const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;
const MAX_SHA_CRYPT_ROUNDS: u32 = 10_000_000;
const MAX_BCRYPT_COST: u32 = 16;
/// What bcrypt reads of a password; a longer one is never a match (never truncated).
pub(super) const MAX_BCRYPT_PASSWORD_BYTES: usize = 72;
/// What DES crypt reads of a password; a longer one is never a match.
pub(super) const MAX_DES_PASSWORD_BYTES: usize = 8;
const MAX_ARGON2_M_KIB: u32 = 1024 * 1024;
const MAX_ARGON2_T: u32 = 100;
const MAX_ARGON2_P: u32 = 64;
const MAX_SCRYPT_LOG_N: u8 = 20;
const MAX_SCRYPT_R: u32 = 32;
const MAX_SCRYPT_P: u32 = 64;
const MAX_SCRYPT_MEMORY: u64 = 1 << 30;
const MAX_SCRYPT_WORK: u64 = 1 << 26;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Pbkdf2Digest {
    Sha1,
    Sha256,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SaltedDigest {
    Md5,
    Sha1,
}

/// A recognized stored hash, owning what its check needs.
#[derive(Clone, Debug)]
pub(super) enum Scheme {
    /// A PHC Argon2 string; `django` when it came wrapped as `argon2$...`.
    Argon2 {
        phc: String,
        django: bool,
    },
    /// A bcrypt hash; `sha256_first` for Django's `bcrypt_sha256$`.
    Bcrypt {
        hash: String,
        sha256_first: bool,
        django: bool,
    },
    /// SHA-crypt; `sha512` picks `$6$` over `$5$`.
    ShaCrypt {
        sha512: bool,
        rounds: usize,
        salt: String,
        encoded: String,
    },
    Md5Crypt {
        magic: &'static str,
        salt: String,
        encoded: String,
    },
    /// Apache `{SHA}`: base64 of SHA-1, no salt.
    ApacheSha1(Vec<u8>),
    DjangoPbkdf2 {
        digest: Pbkdf2Digest,
        iterations: u32,
        salt: String,
        hash: Vec<u8>,
    },
    DjangoScrypt {
        log_n: u8,
        r: u32,
        p: u32,
        salt: String,
        hash: Vec<u8>,
    },
    /// Django's legacy `md5$salt$hex`, `sha1$salt$hex` and their unsalted forms (empty salt).
    DjangoLegacy {
        digest: SaltedDigest,
        salt: String,
        hex: String,
    },
    DesCrypt(String),
    Plain(String),
}

fn malformed(scheme: &'static str, reason: impl Into<String>) -> HashError {
    HashError::Malformed {
        scheme,
        reason: reason.into(),
    }
}

fn too_costly(scheme: &'static str, detail: String) -> HashError {
    HashError::CostTooHigh { scheme, detail }
}

/// A name for an unknown hash's format that cannot leak the hash (which might be a plaintext
/// password): its identifier-like prefix, or only its shape.
fn describe_unknown(hash: &str) -> String {
    let ident = |s: &str| {
        !s.is_empty()
            && s.len() <= 24
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    if let Some(rest) = hash.strip_prefix('$')
        && let Some((id, _)) = rest.split_once('$')
        && ident(id)
    {
        return format!("`${id}$`");
    }
    if let Some(rest) = hash.strip_prefix('{')
        && let Some((id, _)) = rest.split_once('}')
        && ident(id)
    {
        return format!("`{{{id}}}`");
    }
    // `name$...` is named only when it looks like a Django encoding (several fields, a lowercase
    // identifier), not like a plaintext password that happens to contain a `$`.
    if let Some((id, _)) = hash.split_once('$')
        && ident(id)
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && hash.split('$').count() >= 3
        && hash.len() >= 20
    {
        return format!("`{id}$`");
    }
    format!(
        "(no recognizable prefix; {} characters)",
        hash.chars().count()
    )
}

fn is_crypt64(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/')
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Scheme {
    /// The format's name, for errors and logs.
    pub(super) fn name(&self) -> &'static str {
        match self {
            Scheme::Argon2 { django: true, .. } => "django argon2",
            Scheme::Argon2 { .. } => "argon2",
            Scheme::Bcrypt {
                sha256_first: true, ..
            } => "django bcrypt_sha256",
            Scheme::Bcrypt { django: true, .. } => "django bcrypt",
            Scheme::Bcrypt { .. } => "bcrypt",
            Scheme::ShaCrypt { sha512: false, .. } => "sha256-crypt",
            Scheme::ShaCrypt { .. } => "sha512-crypt",
            Scheme::Md5Crypt { magic, .. } if *magic == md5_crypt::APR1_MAGIC => "apr1",
            Scheme::Md5Crypt { .. } => "md5-crypt",
            Scheme::ApacheSha1(_) => "{SHA}",
            Scheme::DjangoPbkdf2 {
                digest: Pbkdf2Digest::Sha1,
                ..
            } => "django pbkdf2_sha1",
            Scheme::DjangoPbkdf2 { .. } => "django pbkdf2_sha256",
            Scheme::DjangoScrypt { .. } => "django scrypt",
            Scheme::DjangoLegacy {
                digest: SaltedDigest::Md5,
                ..
            } => "django md5",
            Scheme::DjangoLegacy { .. } => "django sha1",
            Scheme::DesCrypt(_) => "des-crypt",
            Scheme::Plain(_) => "plain",
        }
    }

    fn formats(&self) -> &'static [HashFormat] {
        match self {
            Scheme::Argon2 { django: false, .. } => &[HashFormat::Argon2],
            Scheme::Bcrypt { django: false, .. } => &[HashFormat::Bcrypt],
            Scheme::ShaCrypt { .. } => &[HashFormat::ShaCrypt],
            Scheme::Argon2 { django: true, .. }
            | Scheme::Bcrypt { django: true, .. }
            | Scheme::DjangoPbkdf2 { .. }
            | Scheme::DjangoScrypt { .. }
            | Scheme::DjangoLegacy { .. } => &[HashFormat::Django],
            Scheme::Plain(_) => &[HashFormat::Plain],
            Scheme::Md5Crypt { .. } | Scheme::ApacheSha1(_) | Scheme::DesCrypt(_) => &[],
        }
    }

    /// Recognizes `hash`, checks that `format` and `policy` allow it and that its cost is sane.
    /// Does no hashing.
    pub(super) fn identify(
        hash: &str,
        format: HashFormat,
        policy: &VerifyPolicy,
    ) -> Result<Scheme, HashError> {
        if hash.is_empty() {
            return Err(HashError::Empty);
        }
        if hash.starts_with('!') {
            return Err(HashError::Unusable);
        }
        if format == HashFormat::Plain {
            return Ok(Scheme::Plain(hash.to_owned()));
        }
        let scheme = match Scheme::parse(hash)? {
            Some(scheme) => scheme,
            None => {
                return Scheme::fallback(hash, format, policy);
            }
        };
        if format != HashFormat::Auto && !scheme.formats().contains(&format) {
            return Err(HashError::FormatMismatch {
                expected: format,
                found: scheme.name().to_string(),
            });
        }
        if let Scheme::DjangoLegacy { .. } = scheme
            && !policy.allow_legacy
        {
            return Err(HashError::LegacyRefused {
                scheme: scheme.name(),
            });
        }
        Ok(scheme)
    }

    /// What a hash with no known prefix is: unsalted MD5 (Django), DES crypt or plaintext, each
    /// only when allowed.
    fn fallback(
        hash: &str,
        format: HashFormat,
        policy: &VerifyPolicy,
    ) -> Result<Scheme, HashError> {
        let allowed = |f: HashFormat| format == HashFormat::Auto || format == f;
        if allowed(HashFormat::Django) && is_hex(hash, 32) {
            if policy.allow_legacy {
                return Ok(Scheme::DjangoLegacy {
                    digest: SaltedDigest::Md5,
                    salt: String::new(),
                    hex: hash.to_ascii_lowercase(),
                });
            }
            if !policy.allow_plaintext {
                return Err(HashError::LegacyRefused {
                    scheme: "django unsalted_md5",
                });
            }
        }
        if format == HashFormat::Auto && hash.len() == 13 && is_crypt64(hash) {
            if policy.allow_des_crypt {
                return Ok(Scheme::DesCrypt(hash.to_owned()));
            }
            if !policy.allow_plaintext {
                return Err(HashError::DesCryptRefused);
            }
        }
        if format == HashFormat::Auto && policy.allow_plaintext {
            return Ok(Scheme::Plain(hash.to_owned()));
        }
        Err(HashError::UnknownFormat {
            format: describe_unknown(hash),
        })
    }

    /// Recognizes a prefixed format; `Ok(None)` when no prefix matches.
    fn parse(hash: &str) -> Result<Option<Scheme>, HashError> {
        let scheme = if hash.starts_with("$argon2") {
            Scheme::parse_argon2(hash, false)?
        } else if let Some(rest) = hash.strip_prefix("argon2$") {
            if !rest.starts_with("argon2") {
                return Err(malformed("django argon2", "expected `argon2$argon2id$...`"));
            }
            Scheme::parse_argon2(&hash["argon2".len()..], true)?
        } else if ["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p)) {
            Scheme::parse_bcrypt(hash, false, false)?
        } else if let Some(rest) = hash.strip_prefix("bcrypt_sha256$") {
            Scheme::parse_bcrypt(rest, true, true)?
        } else if let Some(rest) = hash.strip_prefix("bcrypt$") {
            Scheme::parse_bcrypt(rest, false, true)?
        } else if let Some(rest) = hash.strip_prefix("$5$") {
            Scheme::parse_sha_crypt(rest, false)?
        } else if let Some(rest) = hash.strip_prefix("$6$") {
            Scheme::parse_sha_crypt(rest, true)?
        } else if let Some(rest) = hash.strip_prefix(md5_crypt::APR1_MAGIC) {
            Scheme::parse_md5_crypt(rest, md5_crypt::APR1_MAGIC, "apr1")?
        } else if let Some(rest) = hash.strip_prefix(md5_crypt::MD5_MAGIC) {
            Scheme::parse_md5_crypt(rest, md5_crypt::MD5_MAGIC, "md5-crypt")?
        } else if let Some(rest) = hash.strip_prefix("{SHA}") {
            let digest = STANDARD
                .decode(rest)
                .map_err(|_| malformed("{SHA}", "not base64"))?;
            if digest.len() != 20 {
                return Err(malformed("{SHA}", "not a SHA-1 digest"));
            }
            Scheme::ApacheSha1(digest)
        } else if let Some(rest) = hash.strip_prefix("pbkdf2_sha256$") {
            Scheme::parse_pbkdf2(rest, Pbkdf2Digest::Sha256, "django pbkdf2_sha256")?
        } else if let Some(rest) = hash.strip_prefix("pbkdf2_sha1$") {
            Scheme::parse_pbkdf2(rest, Pbkdf2Digest::Sha1, "django pbkdf2_sha1")?
        } else if let Some(rest) = hash.strip_prefix("scrypt$") {
            Scheme::parse_scrypt(rest)?
        } else if let Some(rest) = hash.strip_prefix("md5$") {
            Scheme::parse_legacy(rest, SaltedDigest::Md5, "django md5", 32)?
        } else if let Some(rest) = hash.strip_prefix("sha1$") {
            Scheme::parse_legacy(rest, SaltedDigest::Sha1, "django sha1", 40)?
        } else {
            return Ok(None);
        };
        Ok(Some(scheme))
    }

    fn parse_argon2(phc: &str, django: bool) -> Result<Scheme, HashError> {
        let name = if django { "django argon2" } else { "argon2" };
        let parsed = argon2::PasswordHash::new(phc).map_err(|e| malformed(name, e.to_string()))?;
        if argon2::Algorithm::try_from(parsed.algorithm).is_err() {
            return Err(HashError::UnknownFormat {
                format: format!("`${}$`", parsed.algorithm),
            });
        }
        let param = |key: &str| -> Result<u32, HashError> {
            parsed
                .params
                .get_decimal(key)
                .ok_or_else(|| malformed(name, format!("missing parameter `{key}`")))
        };
        let (m, t, p) = (param("m")?, param("t")?, param("p")?);
        for (key, value, max) in [
            ("m", m, MAX_ARGON2_M_KIB),
            ("t", t, MAX_ARGON2_T),
            ("p", p, MAX_ARGON2_P),
        ] {
            if value > max {
                return Err(too_costly(name, format!("{key}={value} > {max}")));
            }
        }
        if parsed.salt.is_none() || parsed.hash.is_none() {
            return Err(malformed(name, "missing salt or hash"));
        }
        Ok(Scheme::Argon2 {
            phc: phc.to_owned(),
            django,
        })
    }

    fn parse_bcrypt(hash: &str, sha256_first: bool, django: bool) -> Result<Scheme, HashError> {
        let name = match (django, sha256_first) {
            (true, true) => "django bcrypt_sha256",
            (true, false) => "django bcrypt",
            _ => "bcrypt",
        };
        let mut parts = hash.split('$');
        let (Some(""), Some(variant), Some(cost), Some(rest), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(malformed(name, "expected `$2b$COST$SALTHASH`"));
        };
        if !["2a", "2b", "2y"].contains(&variant) {
            return Err(HashError::UnknownFormat {
                format: format!("`${variant}$`"),
            });
        }
        let cost: u32 = cost
            .parse()
            .map_err(|_| malformed(name, "cost is not a number"))?;
        if cost > MAX_BCRYPT_COST {
            return Err(too_costly(name, format!("cost {cost} > {MAX_BCRYPT_COST}")));
        }
        if cost < 4 || rest.len() != 53 || !is_crypt64(rest) {
            return Err(malformed(name, "bad cost, salt or hash length"));
        }
        Ok(Scheme::Bcrypt {
            hash: hash.to_owned(),
            sha256_first,
            django,
        })
    }

    fn parse_sha_crypt(rest: &str, sha512: bool) -> Result<Scheme, HashError> {
        let name = if sha512 {
            "sha512-crypt"
        } else {
            "sha256-crypt"
        };
        let fields: Vec<&str> = rest.split('$').collect();
        let (rounds, salt, encoded) = match fields.as_slice() {
            [salt, encoded] if !salt.starts_with("rounds=") => (None, *salt, *encoded),
            [rounds, salt, encoded] => (Some(*rounds), *salt, *encoded),
            _ => return Err(malformed(name, "expected `$N$[rounds=R$]SALT$HASH`")),
        };
        let rounds = match rounds {
            None => sha_crypt::ROUNDS_DEFAULT,
            Some(rounds) => {
                let value: u64 = rounds
                    .strip_prefix("rounds=")
                    .and_then(|r| r.parse().ok())
                    .ok_or_else(|| malformed(name, "bad `rounds=`"))?;
                if value > u64::from(MAX_SHA_CRYPT_ROUNDS) {
                    return Err(too_costly(
                        name,
                        format!("rounds={value} > {MAX_SHA_CRYPT_ROUNDS}"),
                    ));
                }
                // As glibc does: fewer rounds than the minimum means the minimum.
                (value as usize).max(sha_crypt::ROUNDS_MIN)
            }
        };
        let expected_len = if sha512 { 86 } else { 43 };
        if encoded.len() != expected_len || !is_crypt64(encoded) {
            return Err(malformed(name, "hash has the wrong length"));
        }
        Ok(Scheme::ShaCrypt {
            sha512,
            rounds,
            salt: salt.to_owned(),
            encoded: encoded.to_owned(),
        })
    }

    fn parse_md5_crypt(
        rest: &str,
        magic: &'static str,
        name: &'static str,
    ) -> Result<Scheme, HashError> {
        let Some((salt, encoded)) = rest.split_once('$') else {
            return Err(malformed(name, "expected `SALT$HASH` after the prefix"));
        };
        if salt.len() > 8 || encoded.len() != 22 || !is_crypt64(encoded) {
            return Err(malformed(name, "bad salt or hash length"));
        }
        Ok(Scheme::Md5Crypt {
            magic,
            salt: salt.to_owned(),
            encoded: encoded.to_owned(),
        })
    }

    fn parse_pbkdf2(
        rest: &str,
        digest: Pbkdf2Digest,
        name: &'static str,
    ) -> Result<Scheme, HashError> {
        let mut parts = rest.splitn(3, '$');
        let (Some(iterations), Some(salt), Some(encoded)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed(name, "expected `ITERATIONS$SALT$HASH`"));
        };
        let iterations: u64 = iterations
            .parse()
            .map_err(|_| malformed(name, "iterations is not a number"))?;
        if iterations > u64::from(MAX_PBKDF2_ITERATIONS) {
            return Err(too_costly(
                name,
                format!("{iterations} iterations > {MAX_PBKDF2_ITERATIONS}"),
            ));
        }
        if iterations == 0 {
            return Err(malformed(name, "zero iterations"));
        }
        let hash = STANDARD
            .decode(encoded)
            .map_err(|_| malformed(name, "hash is not base64"))?;
        let expected = match digest {
            Pbkdf2Digest::Sha1 => 20,
            Pbkdf2Digest::Sha256 => 32,
        };
        if hash.len() != expected {
            return Err(malformed(name, "hash has the wrong length"));
        }
        Ok(Scheme::DjangoPbkdf2 {
            digest,
            iterations: iterations as u32,
            salt: salt.to_owned(),
            hash,
        })
    }

    fn parse_scrypt(rest: &str) -> Result<Scheme, HashError> {
        const NAME: &str = "django scrypt";
        let fields: Vec<&str> = rest.split('$').collect();
        let [n, salt, r, p, encoded] = fields.as_slice() else {
            return Err(malformed(NAME, "expected `N$SALT$R$P$HASH`"));
        };
        let number = |s: &str, what: &str| -> Result<u64, HashError> {
            s.parse()
                .map_err(|_| malformed(NAME, format!("{what} is not a number")))
        };
        let (n, r, p) = (number(n, "N")?, number(r, "r")?, number(p, "p")?);
        if !n.is_power_of_two() || n < 2 || r == 0 || p == 0 {
            return Err(malformed(
                NAME,
                "N must be a power of two, r and p positive",
            ));
        }
        let log_n = n.trailing_zeros() as u8;
        if log_n > MAX_SCRYPT_LOG_N
            || r > u64::from(MAX_SCRYPT_R)
            || p > u64::from(MAX_SCRYPT_P)
            || 128 * r * n > MAX_SCRYPT_MEMORY
            || n * r * p > MAX_SCRYPT_WORK
        {
            return Err(too_costly(
                NAME,
                format!(
                    "N={n}, r={r}, p={p} beyond N<=2^{MAX_SCRYPT_LOG_N}, r<={MAX_SCRYPT_R}, \
                     p<={MAX_SCRYPT_P}, memory<=1 GiB, N*r*p<=2^26"
                ),
            ));
        }
        let hash = STANDARD
            .decode(encoded)
            .map_err(|_| malformed(NAME, "hash is not base64"))?;
        if hash.is_empty() || hash.len() > 128 {
            return Err(malformed(NAME, "hash has the wrong length"));
        }
        Ok(Scheme::DjangoScrypt {
            log_n,
            r: r as u32,
            p: p as u32,
            salt: (*salt).to_owned(),
            hash,
        })
    }

    fn parse_legacy(
        rest: &str,
        digest: SaltedDigest,
        name: &'static str,
        hex_len: usize,
    ) -> Result<Scheme, HashError> {
        let Some((salt, hex)) = rest.split_once('$') else {
            return Err(malformed(name, "expected `SALT$HEXDIGEST`"));
        };
        if !is_hex(hex, hex_len) {
            return Err(malformed(name, "digest is not hex of the right length"));
        }
        Ok(Scheme::DjangoLegacy {
            digest,
            salt: salt.to_owned(),
            hex: hex.to_ascii_lowercase(),
        })
    }

    /// Hashes `password` as the scheme says and compares in constant time.
    pub(super) fn check(&self, password: &str) -> Result<bool, HashError> {
        let pw = password.as_bytes();
        match self {
            Scheme::Argon2 { phc, .. } => {
                use argon2::password_hash::{Error, PasswordHash, PasswordVerifier};
                let parsed =
                    PasswordHash::new(phc).map_err(|e| malformed(self.name(), e.to_string()))?;
                match argon2::Argon2::default().verify_password(pw, &parsed) {
                    Ok(()) => Ok(true),
                    Err(Error::Password) => Ok(false),
                    Err(e) => Err(malformed(self.name(), e.to_string())),
                }
            }
            Scheme::Bcrypt {
                hash, sha256_first, ..
            } => {
                let (result, truncated) = if *sha256_first {
                    let hex: String = Sha256::digest(pw)
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect();
                    (bcrypt::verify(hex.as_bytes(), hash), false)
                } else {
                    // bcrypt reads 72 bytes: a longer password would match any password sharing
                    // its first 72 bytes. It is hashed anyway (same time), then never a match.
                    (
                        bcrypt::verify(pw, hash),
                        pw.len() > MAX_BCRYPT_PASSWORD_BYTES,
                    )
                };
                // The bcrypt crate's errors quote the hash: keep only their kind.
                result
                    .map(|matched| matched && !truncated)
                    .map_err(|_| malformed(self.name(), "rejected by the bcrypt verifier"))
            }
            Scheme::ShaCrypt {
                sha512,
                rounds,
                salt,
                encoded,
            } => {
                let computed = if *sha512 {
                    sha_crypt::Sha512Params::new(*rounds)
                        .and_then(|p| sha_crypt::sha512_crypt_b64(pw, salt.as_bytes(), &p))
                } else {
                    sha_crypt::Sha256Params::new(*rounds)
                        .and_then(|p| sha_crypt::sha256_crypt_b64(pw, salt.as_bytes(), &p))
                }
                .map_err(|_| malformed(self.name(), "rejected by the sha-crypt hasher"))?;
                Ok(computed.as_bytes().ct_eq(encoded.as_bytes()).into())
            }
            Scheme::Md5Crypt {
                magic,
                salt,
                encoded,
            } => {
                let computed = md5_crypt::md5_crypt(magic, pw, salt.as_bytes());
                Ok(computed.as_bytes().ct_eq(encoded.as_bytes()).into())
            }
            Scheme::ApacheSha1(expected) => Ok(Sha1::digest(pw).as_slice().ct_eq(expected).into()),
            Scheme::DjangoPbkdf2 {
                digest,
                iterations,
                salt,
                hash,
            } => {
                let mut out = vec![0u8; hash.len()];
                match digest {
                    Pbkdf2Digest::Sha1 => {
                        pbkdf2::pbkdf2_hmac::<Sha1>(pw, salt.as_bytes(), *iterations, &mut out)
                    }
                    Pbkdf2Digest::Sha256 => {
                        pbkdf2::pbkdf2_hmac::<Sha256>(pw, salt.as_bytes(), *iterations, &mut out)
                    }
                }
                Ok(out.ct_eq(hash).into())
            }
            Scheme::DjangoScrypt {
                log_n,
                r,
                p,
                salt,
                hash,
            } => {
                let params = scrypt::Params::new(*log_n, *r, *p, hash.len())
                    .map_err(|e| malformed(self.name(), e.to_string()))?;
                let mut out = vec![0u8; hash.len()];
                scrypt::scrypt(pw, salt.as_bytes(), &params, &mut out)
                    .map_err(|e| malformed(self.name(), e.to_string()))?;
                Ok(out.ct_eq(hash).into())
            }
            Scheme::DjangoLegacy { digest, salt, hex } => {
                let computed: Vec<u8> = match digest {
                    SaltedDigest::Md5 => md5::Md5::new()
                        .chain_update(salt.as_bytes())
                        .chain_update(pw)
                        .finalize()
                        .to_vec(),
                    SaltedDigest::Sha1 => Sha1::new()
                        .chain_update(salt.as_bytes())
                        .chain_update(pw)
                        .finalize()
                        .to_vec(),
                };
                let computed: String = computed.iter().map(|b| format!("{b:02x}")).collect();
                Ok(computed.as_bytes().ct_eq(hex.as_bytes()).into())
            }
            Scheme::DesCrypt(hash) => {
                // Deprecated for new passwords, which is not what this is.
                #[allow(deprecated)]
                let computed = pwhash::unix_crypt::hash_with(&hash[..2], pw)
                    .map_err(|_| malformed(self.name(), "bad salt"))?;
                // DES crypt reads 8 bytes: a longer password is hashed (same time), never a
                // match.
                let matched: bool = computed.as_bytes().ct_eq(hash.as_bytes()).into();
                Ok(matched && pw.len() <= MAX_DES_PASSWORD_BYTES)
            }
            Scheme::Plain(stored) => {
                // Comparing digests keeps the time independent of where the strings differ and
                // of their lengths.
                Ok(Sha256::digest(pw)
                    .ct_eq(&Sha256::digest(stored.as_bytes()))
                    .into())
            }
        }
    }
}

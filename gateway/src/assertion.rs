//! The signed identity assertion (`identity_headers.assertion`): a short-lived JWT naming the
//! user, sent upstream next to the identity headers and in forward-auth answers, so an app can
//! tell a request that came through the gateway from one that reached it directly with a forged
//! `X-Remote-User`.
//!
//! Contract:
//! - the token is a JWS signed with EdDSA (Ed25519) or ES256 (P-256) by jsonwebtoken, with the
//!   claims `iss`, `aud`, `sub` (the username), `iat`, `nbf`, `exp` (`iat + ttl`), `jti`, and
//!   `email`, `name` (when known) and `groups` (always a list); its header names the key by
//!   `kid`, the key's RFC 7638 thumbprint;
//! - the public keys are served as a JWK set at `{login.prefix}/jwks.json`: the current key and
//!   the last [`KEPT_PREVIOUS_KEYS`] keys this process signed with before a reload changed the
//!   key file, so tokens signed just before a rotation still verify;
//! - a token is reused for the same identity while at least three quarters of its lifetime
//!   remain, so an app sees a token valid for at least `ttl * 3/4`. Signing is what a request
//!   would otherwise pay: measured in release on the shared 2-core test machine (load ~10),
//!   about 50-100 µs per EdDSA token and 400 µs per ES256 token (jsonwebtoken re-reads the
//!   PKCS#8 key for each signature), against a few µs for a cached one. The cache is bounded;
//!   EdDSA is the default for its cost;
//! - without `key_file` the key is generated into `data_dir` (mode 0600) on first use and read
//!   back afterwards; an unreadable or wrong-type key file is a config error, never a silent new
//!   key. The private key never reaches a log line.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use auth_core::User;
use base64::Engine;
use bytes::Bytes;
use dashmap::DashMap;
use http::header::{HeaderName, HeaderValue};
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, EllipticCurveKeyParameters,
    EllipticCurveKeyType, Jwk, JwkSet, KeyAlgorithm, OctetKeyPairParameters, OctetKeyPairType,
    PublicKeyUse, ThumbprintHash,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rand::RngCore;
use serde::Serialize;

use crate::config::{AssertionAlgorithm, AssertionConfig};

/// How many keys replaced by a reload stay in the JWK set (until the process restarts).
pub(crate) const KEPT_PREVIOUS_KEYS: usize = 2;

/// Most identities whose token is kept for reuse; the cache is emptied when it holds more.
const CACHE_LIMIT: usize = 4096;

/// The assertion key could not be read, generated or used. Messages name the file, never the
/// key material.
#[derive(Debug, thiserror::Error)]
pub enum AssertionError {
    /// The key file could not be read or written.
    #[error("identity_headers.assertion key file {}: {source}", path.display())]
    KeyFileIo {
        /// The key file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The key file holds no usable key (or one could not be generated). A message, not a
    /// source: a key parser's error could quote key material.
    #[error("identity_headers.assertion key file {}: {message}", path.display())]
    KeyFile {
        /// The key file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A setting cannot be used (e.g. no audience).
    #[error("identity_headers.assertion: {0}")]
    Setting(String),
    /// Signing failed.
    #[error("identity assertion could not be signed: {0}")]
    Sign(#[source] jsonwebtoken::errors::Error),
}

/// One signing key and its public JWK.
struct SigningKey {
    encoding: EncodingKey,
    jwk: Jwk,
}

/// The assertion keys of the process: the one signing now and the public halves of the ones it
/// replaced. Carried over reloads (see [`AssertionKeys::load`]).
pub struct AssertionKeys {
    algorithm: Algorithm,
    current: SigningKey,
    previous: Vec<Jwk>,
}

impl std::fmt::Debug for AssertionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AssertionKeys")
            .field("algorithm", &self.algorithm)
            .field("kid", &self.kid())
            .finish_non_exhaustive()
    }
}

/// The file the key is generated into when `key_file` is absent.
pub(crate) fn generated_key_path(data_dir: &Path, algorithm: AssertionAlgorithm) -> PathBuf {
    data_dir.join(match algorithm {
        AssertionAlgorithm::EdDSA => "assertion-ed25519.pem",
        AssertionAlgorithm::ES256 => "assertion-p256.pem",
    })
}

impl AssertionKeys {
    /// Reads the key of `cfg` (`key_file` against `base_dir`, or the generated one under
    /// `data_dir`, generating it when absent). With `previous` (the keys of the config version
    /// being replaced), a changed key keeps the old public key in the JWK set.
    pub fn load(
        cfg: &AssertionConfig,
        data_dir: &Path,
        base_dir: &Path,
        previous: Option<&AssertionKeys>,
    ) -> Result<AssertionKeys, AssertionError> {
        let (path, generate) = match &cfg.key_file {
            Some(p) => (base_dir.join(&p.value), false),
            None => (generated_key_path(data_dir, cfg.algorithm), true),
        };
        let pem = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if generate && e.kind() == std::io::ErrorKind::NotFound => {
                generate_key_file(&path, cfg.algorithm)?
            }
            Err(source) => return Err(AssertionError::KeyFileIo { path, source }),
        };
        let current =
            signing_key(&pem, cfg.algorithm).map_err(|message| AssertionError::KeyFile {
                path: path.clone(),
                message,
            })?;
        let algorithm = algorithm_of(cfg.algorithm);
        let mut previous_keys = Vec::new();
        if let Some(p) = previous {
            let same = p.kid() == current.jwk.common.key_id.as_deref();
            let replaced = (!same).then(|| p.current.jwk.clone());
            previous_keys.extend(replaced);
            previous_keys.extend(
                p.previous
                    .iter()
                    .filter(|k| k.common.key_id != current.jwk.common.key_id)
                    .cloned(),
            );
            previous_keys.truncate(KEPT_PREVIOUS_KEYS);
        }
        Ok(AssertionKeys {
            algorithm,
            current,
            previous: previous_keys,
        })
    }

    /// The `kid` of the signing key.
    pub fn kid(&self) -> Option<&str> {
        self.current.jwk.common.key_id.as_deref()
    }

    /// The public keys: the current one first, then the replaced ones.
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: std::iter::once(self.current.jwk.clone())
                .chain(self.previous.iter().cloned())
                .collect(),
        }
    }
}

/// Whether `path` holds a PKCS#8 PEM private key of `algorithm` (for `authgate check`); the
/// message names what is wrong, never the key.
pub(crate) fn check_key_file(path: &Path, algorithm: AssertionAlgorithm) -> Result<(), String> {
    let pem = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    signing_key(&pem, algorithm)
        .map(|_| ())
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn algorithm_of(a: AssertionAlgorithm) -> Algorithm {
    match a {
        AssertionAlgorithm::EdDSA => Algorithm::EdDSA,
        AssertionAlgorithm::ES256 => Algorithm::ES256,
    }
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The signing key and public JWK of a PKCS#8 PEM private key of `algorithm`.
fn signing_key(pem: &str, algorithm: AssertionAlgorithm) -> Result<SigningKey, String> {
    let (encoding, params, alg) = match algorithm {
        AssertionAlgorithm::EdDSA => {
            use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
            let key = ed25519_dalek::SigningKey::from_pkcs8_pem(pem).map_err(|_| {
                "not a PKCS#8 PEM Ed25519 private key (algorithm EdDSA)".to_string()
            })?;
            let der = key
                .to_pkcs8_der()
                .map_err(|_| "the Ed25519 key cannot be encoded".to_string())?;
            let params = AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                key_type: OctetKeyPairType::OctetKeyPair,
                curve: EllipticCurve::Ed25519,
                x: b64url(key.verifying_key().as_bytes()),
            });
            (
                EncodingKey::from_ed_der(der.as_bytes()),
                params,
                KeyAlgorithm::EdDSA,
            )
        }
        AssertionAlgorithm::ES256 => {
            use p256::elliptic_curve::sec1::ToSec1Point;
            use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey};
            let key = p256::SecretKey::from_pkcs8_pem(pem)
                .map_err(|_| "not a PKCS#8 PEM P-256 private key (algorithm ES256)".to_string())?;
            let der = key
                .to_pkcs8_der()
                .map_err(|_| "the P-256 key cannot be encoded".to_string())?;
            let point = key.public_key().to_sec1_point(false);
            let (Some(x), Some(y)) = (point.x(), point.y()) else {
                return Err("the P-256 public key has no coordinates".into());
            };
            let params = AlgorithmParameters::EllipticCurve(EllipticCurveKeyParameters {
                key_type: EllipticCurveKeyType::EC,
                curve: EllipticCurve::P256,
                x: b64url(x),
                y: b64url(y),
            });
            (
                EncodingKey::from_ec_der(der.as_bytes()),
                params,
                KeyAlgorithm::ES256,
            )
        }
    };
    let mut jwk = Jwk {
        common: CommonParameters::default(),
        algorithm: params,
    };
    let kid = jwk
        .thumbprint(ThumbprintHash::SHA256)
        .map_err(|e| format!("no thumbprint: {e}"))?;
    jwk.common = CommonParameters {
        public_key_use: Some(PublicKeyUse::Signature),
        key_algorithm: Some(alg),
        key_id: Some(kid),
        ..CommonParameters::default()
    };
    Ok(SigningKey { encoding, jwk })
}

/// Generates a key of `algorithm` into `path` (mode 0600, never over an existing file) and
/// returns its PEM.
fn generate_key_file(path: &Path, algorithm: AssertionAlgorithm) -> Result<String, AssertionError> {
    let err = |message: String| AssertionError::KeyFile {
        path: path.to_path_buf(),
        message,
    };
    let io_err = |source: std::io::Error| AssertionError::KeyFileIo {
        path: path.to_path_buf(),
        source,
    };
    let pem = generate_pem(algorithm).map_err(err)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io_err)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    match opts.open(path) {
        Ok(mut file) => {
            use std::io::Write;
            file.write_all(pem.as_bytes()).map_err(io_err)?;
            tracing::info!(path = %path.display(), "generated the identity assertion key");
            Ok(pem)
        }
        // Another process (a replica on the same volume) won the race: use its key.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::read_to_string(path).map_err(io_err)
        }
        Err(e) => Err(io_err(e)),
    }
}

fn generate_pem(algorithm: AssertionAlgorithm) -> Result<String, String> {
    let mut seed = Seed([0; 32]);
    rand::rngs::OsRng.fill_bytes(&mut seed.0);
    let pem = match algorithm {
        AssertionAlgorithm::EdDSA => {
            use ed25519_dalek::pkcs8::EncodePrivateKey;
            ed25519_dalek::SigningKey::from_bytes(&seed.0)
                .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
                .map_err(|e| format!("cannot encode the new key: {e}"))?
        }
        AssertionAlgorithm::ES256 => {
            use p256::pkcs8::EncodePrivateKey;
            // A random 32-byte string is a valid P-256 scalar except with probability ~2^-32.
            let key = p256::SecretKey::from_slice(&seed.0)
                .map_err(|_| "the random bytes are not a P-256 scalar; start again".to_string())?;
            key.to_pkcs8_pem(p256::pkcs8::LineEnding::LF)
                .map_err(|e| format!("cannot encode the new key: {e}"))?
        }
    };
    Ok(pem.to_string())
}

/// 32 random bytes, overwritten on drop (the key itself is zeroized by its crate).
struct Seed([u8; 32]);

impl Drop for Seed {
    fn drop(&mut self) {
        self.0 = [0; 32];
    }
}

/// The claims that depend on the user (the cache key, serialized).
#[derive(Serialize)]
struct Subject<'a> {
    sub: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    groups: &'a std::collections::BTreeSet<String>,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    aud: &'a str,
    iat: u64,
    nbf: u64,
    exp: u64,
    jti: String,
    #[serde(flatten)]
    subject: &'a Subject<'a>,
}

/// The assertion of one config version: its header, claims settings and the process's keys.
pub(crate) struct Asserter {
    header_name: HeaderName,
    keys: Arc<AssertionKeys>,
    jwt_header: Header,
    issuer: String,
    audience: String,
    ttl: u64,
    jwks: Bytes,
    /// Serialized [`Subject`] -> (token, its `exp`).
    cache: DashMap<String, (HeaderValue, u64)>,
}

impl std::fmt::Debug for Asserter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Asserter")
            .field("header", &self.header_name)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl Asserter {
    /// The assertion for `cfg`, signing with `keys`; `aud` defaults to `upstream_url` and `iss`
    /// to `public_url` (and `aud` to `public_url` too without an upstream URL: the demo).
    pub(crate) fn new(
        cfg: &AssertionConfig,
        keys: Arc<AssertionKeys>,
        upstream_url: &str,
        public_url: &str,
    ) -> Result<Asserter, AssertionError> {
        let header_name = cfg.header.value.get().cloned().ok_or_else(|| {
            AssertionError::Setting(format!("`{}` is not a valid header name", cfg.header.value))
        })?;
        // The demo upstream has no URL of its own: it is served under our public URL.
        let default_audience = if upstream_url.is_empty() {
            public_url
        } else {
            upstream_url
        };
        let audience = cfg
            .audience
            .clone()
            .unwrap_or_else(|| default_audience.trim_end_matches('/').to_string());
        if audience.is_empty() {
            return Err(AssertionError::Setting(
                "`audience` must not be empty".into(),
            ));
        }
        let issuer = cfg
            .issuer
            .clone()
            .unwrap_or_else(|| public_url.trim_end_matches('/').to_string());
        let ttl = cfg.ttl.get().as_secs();
        if ttl == 0 {
            return Err(AssertionError::Setting("`ttl` must be at least 1s".into()));
        }
        let mut jwt_header = Header::new(keys.algorithm);
        jwt_header.kid = keys.kid().map(str::to_string);
        let jwks = serde_json::to_vec(&keys.jwks())
            .map_err(|e| AssertionError::Setting(format!("JWK set: {e}")))?;
        Ok(Asserter {
            header_name,
            keys,
            jwt_header,
            issuer,
            audience,
            ttl,
            jwks: Bytes::from(jwks),
            cache: DashMap::new(),
        })
    }

    /// The header the token goes in.
    pub(crate) fn header_name(&self) -> &HeaderName {
        &self.header_name
    }

    /// The JWK set, serialized.
    pub(crate) fn jwks_json(&self) -> Bytes {
        self.jwks.clone()
    }

    /// The token for `user` as a header value: a cached one while at least 3/4 of its lifetime
    /// remain, else a new one.
    pub(crate) fn token_for(&self, user: &User) -> Result<HeaderValue, AssertionError> {
        let subject = Subject {
            sub: &user.username,
            email: user.email.as_deref(),
            name: user.display_name.as_deref(),
            groups: &user.groups,
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let key = serde_json::to_string(&subject)
            .map_err(|e| AssertionError::Sign(jsonwebtoken::errors::Error::from(e)))?;
        if let Some(hit) = self.cache.get(&key)
            && hit.1 >= now + self.ttl * 3 / 4
        {
            return Ok(hit.0.clone());
        }
        let mut jti = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut jti);
        let exp = now + self.ttl;
        let claims = Claims {
            iss: &self.issuer,
            aud: &self.audience,
            iat: now,
            nbf: now,
            exp,
            jti: b64url(&jti),
            subject: &subject,
        };
        let token = jsonwebtoken::encode(&self.jwt_header, &claims, &self.keys.current.encoding)
            .map_err(AssertionError::Sign)?;
        let value = HeaderValue::from_maybe_shared(Bytes::from(token)).map_err(|_| {
            AssertionError::Setting("the signed token is not a header value".into())
        })?;
        if self.cache.len() >= CACHE_LIMIT {
            self.cache.clear();
        }
        self.cache.insert(key, (value.clone(), exp));
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};
    use serde_json::Value;

    fn config(alg: AssertionAlgorithm) -> AssertionConfig {
        AssertionConfig {
            algorithm: alg,
            ..AssertionConfig::default()
        }
    }

    fn verify(a: &Asserter, token: &str) -> Value {
        let jwks: JwkSet = serde_json::from_slice(&a.jwks_json()).unwrap();
        let kid = jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
        let jwk = jwks.find(&kid).unwrap();
        let alg = match jwk.common.key_algorithm.unwrap() {
            KeyAlgorithm::EdDSA => Algorithm::EdDSA,
            KeyAlgorithm::ES256 => Algorithm::ES256,
            other => panic!("{other:?}"),
        };
        let mut v = Validation::new(alg);
        v.set_audience(&["http://app:8000"]);
        v.set_issuer(&["https://gw.example"]);
        jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &v)
            .unwrap()
            .claims
    }

    #[test]
    fn signs_verifiable_tokens_with_both_algorithms() {
        for alg in [AssertionAlgorithm::EdDSA, AssertionAlgorithm::ES256] {
            let dir = tempfile::tempdir().unwrap();
            let cfg = config(alg);
            let keys = Arc::new(AssertionKeys::load(&cfg, dir.path(), dir.path(), None).unwrap());
            let a = Asserter::new(&cfg, keys, "http://app:8000/", "https://gw.example").unwrap();
            let user = User::new("alice")
                .with_groups(["staff", "admins"])
                .with_email("alice@example.org");
            let token = a.token_for(&user).unwrap();
            let claims = verify(&a, token.to_str().unwrap());
            assert_eq!(claims["sub"], "alice");
            assert_eq!(claims["groups"], serde_json::json!(["admins", "staff"]));
            assert_eq!(claims["email"], "alice@example.org");
            assert_eq!(
                claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
                60
            );
            // Reused for the same identity, not for another.
            assert_eq!(a.token_for(&user).unwrap(), token);
            assert_ne!(a.token_for(&User::new("bob")).unwrap(), token);
            // The generated key is private and read back, not regenerated.
            let path = generated_key_path(dir.path(), alg);
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(&path).unwrap().permissions().mode();
                assert_eq!(mode & 0o077, 0, "{mode:o}");
            }
            let again = AssertionKeys::load(&cfg, dir.path(), dir.path(), None).unwrap();
            assert_eq!(again.kid(), a.keys.kid());
        }
    }

    #[test]
    fn a_rotated_key_keeps_the_old_public_key_published() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(AssertionAlgorithm::EdDSA);
        let first = AssertionKeys::load(&cfg, dir.path(), dir.path(), None).unwrap();
        std::fs::remove_file(generated_key_path(dir.path(), AssertionAlgorithm::EdDSA)).unwrap();
        let second = AssertionKeys::load(&cfg, dir.path(), dir.path(), Some(&first)).unwrap();
        assert_ne!(first.kid(), second.kid());
        let kids: Vec<_> = second
            .jwks()
            .keys
            .iter()
            .map(|k| k.common.key_id.clone().unwrap())
            .collect();
        assert_eq!(kids.len(), 2);
        assert_eq!(kids[1], first.kid().unwrap());
        // Unchanged on a reload that keeps the key.
        let third = AssertionKeys::load(&cfg, dir.path(), dir.path(), Some(&second)).unwrap();
        assert_eq!(third.jwks(), second.jwks());
    }

    #[test]
    fn a_key_of_the_other_algorithm_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let pem = generate_pem(AssertionAlgorithm::ES256).unwrap();
        std::fs::write(dir.path().join("k.pem"), pem).unwrap();
        let cfg = AssertionConfig {
            key_file: Some(crate::config::spanned("k.pem".into())),
            ..config(AssertionAlgorithm::EdDSA)
        };
        let err = AssertionKeys::load(&cfg, dir.path(), dir.path(), None).unwrap_err();
        assert!(err.to_string().contains("Ed25519"), "{err}");
        // A named key file that is missing is an error, not a new key.
        let cfg = AssertionConfig {
            key_file: Some(crate::config::spanned("missing.pem".into())),
            ..config(AssertionAlgorithm::EdDSA)
        };
        assert!(AssertionKeys::load(&cfg, dir.path(), dir.path(), None).is_err());
    }

    /// The cost that justifies the cache: `cargo test -p gateway --lib signing_cost --
    /// --ignored --nocapture`.
    #[test]
    #[ignore = "a timing note, not a check"]
    fn signing_cost() {
        for alg in [AssertionAlgorithm::EdDSA, AssertionAlgorithm::ES256] {
            let dir = tempfile::tempdir().unwrap();
            let cfg = config(alg);
            let keys = Arc::new(AssertionKeys::load(&cfg, dir.path(), dir.path(), None).unwrap());
            let a = Asserter::new(&cfg, keys, "http://app:8000", "https://gw.example").unwrap();
            let users: Vec<User> = (0..2000)
                .map(|i| User::new(format!("user{i}")).with_groups(["staff", "admins"]))
                .collect();
            let start = std::time::Instant::now();
            for u in &users {
                a.token_for(u).unwrap();
            }
            let signed = start.elapsed() / users.len() as u32;
            let start = std::time::Instant::now();
            for u in &users {
                a.token_for(u).unwrap();
            }
            let cached = start.elapsed() / users.len() as u32;
            eprintln!("{alg:?}: signed {signed:?} per token, cached {cached:?}");
        }
    }

    #[test]
    fn the_kid_is_the_rfc7638_thumbprint() {
        // RFC 8037 appendix A.3: the thumbprint of its Ed25519 example key.
        let jwk: Jwk = serde_json::from_value(serde_json::json!({
            "kty": "OKP", "crv": "Ed25519",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
        }))
        .unwrap();
        assert_eq!(
            jwk.thumbprint(ThumbprintHash::SHA256).unwrap(),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }
}

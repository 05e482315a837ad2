//! The `jwt` backend: bearer tokens (JWS compact form) signed by an identity provider, checked
//! against the provider's public keys (a JWKS from a URL or a file).
//!
//! Outcomes:
//! - not a JWT (not three base64url parts with a JSON header naming an `alg`): `NotFound`, so
//!   another bearer backend may own the token;
//! - a JWT that fails any check (header `alg` not allowed, no key fits its `kid` and `alg` even
//!   after a refresh, bad signature, `exp` missing or past, `nbf` or `iat` in the future, `iss` not
//!   the issuer, `aud` naming none of the audiences): `Rejected`, the reason logged at debug
//!   level (never the token);
//! - no keys at all (the JWKS could never be read): `Unavailable`;
//! - a good token whose claims do not map to a user (no username claim): `Unavailable`.
//!
//! Keys are cached. They are fetched again when a token names an unknown `kid` or the keys are
//! older than `refresh_interval`, at most once per `min_refresh` whatever the traffic: a flood
//! of tokens with made-up `kid`s costs one fetch per `min_refresh`. A failed fetch keeps the
//! keys already known.
//!
//! Token logins make no session, so `get_user` answers `None`: the gateway restores users only
//! for session logins, and each request with a token is checked again (through the gateway's
//! credential cache).

use std::sync::{Arc, RwLock};
use std::time::Instant;

use auth_core::{
    AttributeMapping, Backend, BackendError, BuildContext, BuildError, ConfigPath, Context,
    Credentials, Duration, Outcome, Record, User, async_trait, auth_backend,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

/// Larger JWKS documents are refused.
const MAX_JWKS_BYTES: usize = 1 << 20;

/// Bearer tokens (JWTs) signed by an identity provider, checked with the public keys of its
/// JWKS. Not a JWT: `NotFound` (another bearer backend may own it); a JWT failing any check
/// (algorithm, key, signature, `exp`/`nbf`/`iat`, `iss`, `aud`): `Rejected`; no keys ever
/// fetched: `Unavailable`. Keys are cached and fetched again on an unknown `kid`, at most once
/// per `min_refresh`. Token logins make no session (`get_user` answers none).
#[auth_backend(type = "jwt", build = Self::build, accepts = [bearer])]
#[derive(Debug, Clone)]
pub struct JwtBackend {
    /// URL of the provider's JWKS (`http://` or `https://`), e.g.
    /// `https://idp.example.org/realms/main/protocol/openid-connect/certs`. Exactly one of
    /// `jwks_url` and `jwks_file`.
    pub jwks_url: Option<String>,
    /// A JWKS file, relative to the config file's folder. Exactly one of `jwks_url` and
    /// `jwks_file`.
    pub jwks_file: Option<ConfigPath>,
    /// The `iss` a token must carry, compared exactly.
    pub issuer: String,
    /// Accepted audiences: a token's `aud` must contain at least one of them.
    pub audiences: Vec<String>,
    /// Signature algorithms accepted in a token's header. Default: `[RS256, ES256, EdDSA]`.
    /// Also RS384, RS512, PS256, PS384, PS512, ES384. `none` and HMAC (`HS*`) are refused.
    pub algorithms: Option<Vec<String>>,
    /// Clock skew tolerated for `exp`, `nbf` and `iat`.
    #[option(default = "60s")]
    pub leeway: Duration,
    /// Which claims feed the user; a dotted path reads a nested claim (`realm_access.roles`).
    /// Default: `{username: sub, email: email, name: name}`; when written, name `username`
    /// too (it defaults to a claim called `username`). `groups` takes a list or a string.
    pub attributes: Option<AttributeMapping>,
    /// Keys older than this are fetched again on the next token.
    #[option(default = "1h")]
    pub refresh_interval: Duration,
    /// At most one fetch of the keys per this interval, however many unknown `kid`s arrive.
    #[option(default = "30s")]
    pub min_refresh: Duration,
    /// Time limit of one JWKS fetch.
    #[option(default = "5s")]
    pub timeout: Duration,
}

const DEFAULT_ALGORITHMS: [Algorithm; 3] = [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];

fn default_mapping() -> AttributeMapping {
    AttributeMapping {
        username: "sub".into(),
        email: Some("email".into()),
        name: Some("name".into()),
        ..AttributeMapping::default()
    }
}

/// An allowed algorithm from its configured name; `none` and HMAC are refused.
fn parse_algorithm(name: &str) -> Result<Algorithm, BuildError> {
    if name.eq_ignore_ascii_case("none") {
        return Err(BuildError::new(
            "jwt: algorithm `none` is refused: an unsigned token proves nothing",
        ));
    }
    if name.to_ascii_uppercase().starts_with("HS") {
        return Err(BuildError::new(format!(
            "jwt: algorithm `{name}` is refused: HMAC needs a shared secret, and a key set holds public keys"
        )));
    }
    match name.parse::<Algorithm>() {
        Ok(alg) => Ok(alg),
        Err(_) => Err(BuildError::new(format!(
            "jwt: unknown algorithm `{name}`; expected one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA"
        ))),
    }
}

impl JwtBackend {
    /// Checks the options and builds the backend. A `jwks_file` is read now (so a bad file is a
    /// configuration error); a `jwks_url` is fetched at the first token.
    pub fn build(self, ctx: &BuildContext) -> Result<Arc<dyn Backend>, BuildError> {
        let source = match (&self.jwks_url, &self.jwks_file) {
            (Some(url), None) => {
                let parsed = reqwest::Url::parse(url)
                    .map_err(|e| BuildError::new(format!("jwt: bad `jwks_url` `{url}`: {e}")))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(BuildError::new(
                        "jwt: `jwks_url` must be an http:// or https:// URL",
                    ));
                }
                let client = reqwest::Client::builder()
                    .timeout(self.timeout.get())
                    .connect_timeout(self.timeout.get())
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .map_err(|e| BuildError::new(format!("jwt: cannot build the client: {e}")))?;
                Source::Url {
                    client,
                    url: parsed,
                }
            }
            (None, Some(path)) => Source::File(path.resolve(ctx)),
            _ => {
                return Err(BuildError::new(
                    "jwt: write exactly one of `jwks_url` and `jwks_file`",
                ));
            }
        };
        if self.min_refresh.get().is_zero() {
            return Err(BuildError::new(
                "jwt: `min_refresh` must be above 0: it is what bounds the fetches an unknown-`kid` flood causes",
            ));
        }
        if self.issuer.is_empty() {
            return Err(BuildError::new("jwt: `issuer` must not be empty"));
        }
        if self.audiences.is_empty() || self.audiences.iter().any(String::is_empty) {
            return Err(BuildError::new(
                "jwt: `audiences` must list at least one audience, none empty",
            ));
        }
        let algorithms = match &self.algorithms {
            None => DEFAULT_ALGORITHMS.to_vec(),
            Some(names) if names.is_empty() => {
                return Err(BuildError::new(
                    "jwt: `algorithms` must list at least one algorithm",
                ));
            }
            Some(names) => names
                .iter()
                .map(|n| parse_algorithm(n))
                .collect::<Result<_, _>>()?,
        };
        let keys = KeyCache {
            source,
            keys: RwLock::new(None),
            last_attempt: tokio::sync::Mutex::new(None),
            refresh_interval: self.refresh_interval.get(),
            min_refresh: self.min_refresh.get(),
        };
        if let Source::File(path) = &keys.source {
            let set = read_file(path).map_err(|e| BuildError::new(e.to_string()))?;
            keys.store(set);
        }
        Ok(Arc::new(Verifier {
            entry: ctx.entry.clone(),
            mapping: self.attributes.clone().unwrap_or_else(default_mapping),
            algorithms,
            keys,
            options: self,
        }))
    }
}

enum Source {
    Url {
        client: reqwest::Client,
        url: reqwest::Url,
    },
    File(std::path::PathBuf),
}

/// The keys of one fetch.
struct KeySet {
    keys: Vec<Jwk>,
    fetched: Instant,
}

struct KeyCache {
    source: Source,
    keys: RwLock<Option<Arc<KeySet>>>,
    /// When the last fetch started; held during a fetch so concurrent callers wait for it.
    last_attempt: tokio::sync::Mutex<Option<Instant>>,
    refresh_interval: std::time::Duration,
    min_refresh: std::time::Duration,
}

/// Parses a JWKS document; keys that are not valid JWKs (or are private or symmetric) are left
/// out, so one odd key does not hide the others.
fn parse_jwks(body: &[u8]) -> Result<Vec<Jwk>, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("the JWKS is not valid JSON: {e}"))?;
    let Some(Value::Array(items)) = value.get("keys") else {
        return Err("the JWKS has no `keys` array".into());
    };
    let mut keys = Vec::with_capacity(items.len());
    for item in items {
        match serde_json::from_value::<Jwk>(item.clone()) {
            Ok(jwk) if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)) => {
                tracing::debug!("jwt: a symmetric key in the JWKS is ignored");
            }
            Ok(jwk) => keys.push(jwk),
            Err(e) => tracing::debug!(error = %e, "jwt: a JWKS key that cannot be read is ignored"),
        }
    }
    Ok(keys)
}

fn read_file(path: &std::path::Path) -> Result<Vec<Jwk>, BackendError> {
    let body = std::fs::read(path)
        .map_err(|e| BackendError::new(format!("jwt: cannot read {}: {e}", path.display())))?;
    parse_jwks(&body).map_err(|e| BackendError::new(format!("jwt: {}: {e}", path.display())))
}

impl KeyCache {
    fn current(&self) -> Option<Arc<KeySet>> {
        self.keys
            .read()
            .map(|k| k.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    fn store(&self, keys: Vec<Jwk>) {
        let set = Some(Arc::new(KeySet {
            keys,
            fetched: Instant::now(),
        }));
        match self.keys.write() {
            Ok(mut k) => *k = set,
            Err(p) => *p.into_inner() = set,
        }
    }

    async fn fetch(&self) -> Result<Vec<Jwk>, BackendError> {
        match &self.source {
            Source::File(path) => read_file(path),
            Source::Url { client, url } => {
                let mut response = client
                    .get(url.clone())
                    .header(reqwest::header::ACCEPT, "application/json")
                    .send()
                    .await
                    .map_err(|e| crate::http::request_error("jwt: JWKS fetch", e))?;
                if response.status() != reqwest::StatusCode::OK {
                    return Err(BackendError::new(format!(
                        "jwt: the JWKS URL answered {}",
                        response.status()
                    )));
                }
                let body = crate::http::read_body(&mut response, MAX_JWKS_BYTES, "jwt: JWKS fetch")
                    .await?;
                parse_jwks(&body).map_err(|e| BackendError::new(format!("jwt: {e}")))
            }
        }
    }

    /// Fetches the keys again unless a fetch started less than `min_refresh` ago; a failure
    /// keeps the keys already known and is returned.
    async fn refresh(&self) -> Result<(), BackendError> {
        let mut last = self.last_attempt.lock().await;
        if last.is_some_and(|t| t.elapsed() < self.min_refresh) {
            return Ok(());
        }
        *last = Some(Instant::now());
        match self.fetch().await {
            Ok(keys) => {
                tracing::debug!(keys = keys.len(), "jwt: keys fetched");
                self.store(keys);
                Ok(())
            }
            Err(e) => {
                tracing::warn!(error = %e, "jwt: cannot fetch the keys; keeping the known ones");
                Err(e)
            }
        }
    }

    /// The keys, fetched first when there are none yet or they are stale.
    async fn keys(&self) -> Result<Arc<KeySet>, BackendError> {
        let current = self.current();
        let stale = current
            .as_ref()
            .is_none_or(|k| k.fetched.elapsed() >= self.refresh_interval);
        let error = if stale {
            self.refresh().await.err()
        } else {
            None
        };
        self.current().ok_or_else(|| {
            error.unwrap_or_else(|| BackendError::new("jwt: no keys yet (the last fetch failed)"))
        })
    }
}

/// Whether `jwk` may verify a token signed with `alg`: its type and curve fit the algorithm,
/// and its own `alg` and `use`, when present, agree.
fn key_fits(jwk: &Jwk, alg: Algorithm) -> bool {
    let params_fit = match (&jwk.algorithm, alg) {
        (
            AlgorithmParameters::RSA(_),
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512,
        ) => true,
        (AlgorithmParameters::EllipticCurve(p), Algorithm::ES256) => p.curve == EllipticCurve::P256,
        (AlgorithmParameters::EllipticCurve(p), Algorithm::ES384) => p.curve == EllipticCurve::P384,
        (AlgorithmParameters::OctetKeyPair(p), Algorithm::EdDSA) => {
            p.curve == EllipticCurve::Ed25519
        }
        _ => false,
    };
    let alg_fits = jwk
        .common
        .key_algorithm
        .is_none_or(|k| key_algorithm_name(k) == Some(alg));
    let use_fits = jwk
        .common
        .public_key_use
        .as_ref()
        .is_none_or(|u| *u == PublicKeyUse::Signature);
    params_fit && alg_fits && use_fits
}

fn key_algorithm_name(k: KeyAlgorithm) -> Option<Algorithm> {
    Some(match k {
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

/// The header of a JWT-shaped token: three base64url parts, the first a JSON object with a
/// string `alg`. `None`: not a JWT.
fn jwt_header(token: &str) -> Option<Map<String, Value>> {
    let parts: Vec<&str> = token.split('.').collect();
    let base64url = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if parts.len() != 3 || parts[0].is_empty() || parts[1].is_empty() {
        return None;
    }
    if !parts.iter().all(|p| base64url(p)) {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(parts[0]).ok()?;
    match serde_json::from_slice::<Value>(&bytes).ok()? {
        Value::Object(header) if header.get("alg").is_some_and(Value::is_string) => Some(header),
        _ => None,
    }
}

/// Claims as a mapping record: a name is a claim, or a dotted path into nested objects
/// (`realm_access.roles`) when no claim has that exact name.
pub(crate) struct Claims<'a>(pub(crate) &'a Map<String, Value>);

impl Record for Claims<'_> {
    fn values(&self, name: &str) -> Option<Vec<String>> {
        if self.0.contains_key(name) {
            return Record::values(self.0, name);
        }
        let mut segments = name.split('.');
        let mut value = self.0.get(segments.next()?)?;
        for segment in segments {
            value = value.as_object()?.get(segment)?;
        }
        let mut leaf = Map::new();
        leaf.insert(String::new(), value.clone());
        Record::values(&leaf, "")
    }
}

/// Why a JWT was refused: logged at debug level.
enum Refusal {
    Rejected(String),
    Unavailable(BackendError),
}

struct Verifier {
    entry: String,
    options: JwtBackend,
    mapping: AttributeMapping,
    algorithms: Vec<Algorithm>,
    keys: KeyCache,
}

impl Verifier {
    /// The key for `kid` that fits `alg`, from the configured key set only (a token's own
    /// `jwk`, `jku`, `x5u` or `x5c` headers are never used), refreshing the keys once (rate-limited) when none does.
    async fn key(&self, kid: Option<&str>, alg: Algorithm) -> Result<Jwk, Refusal> {
        let find = |set: &KeySet| -> Option<Jwk> {
            let mut fitting = set.keys.iter().filter(|k| match kid {
                Some(kid) => k.common.key_id.as_deref() == Some(kid),
                None => true,
            });
            let first = fitting.next()?;
            // Without a `kid` only a single candidate is unambiguous.
            let unique = kid.is_some() || fitting.next().is_none();
            (unique && key_fits(first, alg)).then(|| first.clone())
        };
        let set = self.keys.keys().await.map_err(Refusal::Unavailable)?;
        if let Some(key) = find(&set) {
            return Ok(key);
        }
        // An unknown kid may be a new key: fetch again (at most once per `min_refresh`).
        let _ = self.keys.refresh().await;
        let set = self.keys.current();
        match set.as_deref().and_then(find) {
            Some(key) => Ok(key),
            None => Err(Refusal::Rejected(format!(
                "no key with kid {kid:?} fits algorithm {alg:?}"
            ))),
        }
    }

    async fn verify(&self, token: &str, header: &Map<String, Value>) -> Result<User, Refusal> {
        let alg_name = header
            .get("alg")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let alg = alg_name
            .parse::<Algorithm>()
            .ok()
            .filter(|a| self.algorithms.contains(a))
            .ok_or_else(|| Refusal::Rejected(format!("algorithm {alg_name:?} is not allowed")))?;
        let parsed = jsonwebtoken::decode_header(token)
            .map_err(|e| Refusal::Rejected(format!("bad header: {e}")))?;
        let jwk = self.key(parsed.kid.as_deref(), alg).await?;
        let key = DecodingKey::from_jwk(&jwk)
            .map_err(|e| Refusal::Rejected(format!("unusable key: {e}")))?;
        let leeway = self.options.leeway.get().as_secs();
        let mut validation = Validation::new(alg);
        validation.algorithms = vec![alg];
        validation.leeway = leeway;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.set_issuer(&[&self.options.issuer]);
        validation.set_audience(&self.options.audiences);
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
            .map_err(|e| Refusal::Rejected(e.to_string()))?;
        let claims = data.claims;
        if let Some(iat) = claims.get("iat") {
            let now = jsonwebtoken::get_current_timestamp();
            match iat.as_f64() {
                Some(iat) if iat <= (now + leeway) as f64 => {}
                Some(_) => return Err(Refusal::Rejected("issued in the future (iat)".into())),
                None => return Err(Refusal::Rejected("iat is not a number".into())),
            }
        }
        self.mapping
            .map(&Claims(&claims))
            .map_err(|e| Refusal::Unavailable(BackendError::new(format!("jwt: {e}"))))
    }
}

#[async_trait]
impl Backend for Verifier {
    async fn authenticate(&self, credentials: &Credentials, _context: &Context) -> Outcome {
        let Credentials::Bearer(token) = credentials else {
            return Outcome::NotFound;
        };
        let Some(header) = jwt_header(token) else {
            return Outcome::NotFound;
        };
        match self.verify(token, &header).await {
            Ok(user) => Outcome::Authenticated(user),
            Err(Refusal::Rejected(reason)) => {
                tracing::debug!(entry = %self.entry, %reason, "jwt: token rejected");
                Outcome::Rejected
            }
            Err(Refusal::Unavailable(e)) => Outcome::Unavailable(e),
        }
    }

    /// Token logins make no session, so there is no user to restore.
    async fn get_user(&self, _id: &str) -> Result<Option<User>, BackendError> {
        Ok(None)
    }

    async fn health(&self) -> Result<(), BackendError> {
        self.keys.keys().await.map(|_| ())
    }
}

//! The `oidc` backend: single sign-on at an OpenID Connect provider (Keycloak, Entra ID, Okta,
//! Google, Authelia, Dex...), as a relying party using the authorization code flow with PKCE.
//!
//! The protocol is the `openidconnect` crate's: discovery (`.well-known/openid-configuration`),
//! the authorization URL, the code exchange and the ID token checks (signature by the provider's
//! JWKS, `iss`, `aud`, `exp`, `nonce`). This module adds what the crate leaves to its caller: the
//! `azp` rule, `iat` and `exp` with a leeway, the `at_hash` check, a fresh key set when a token is
//! signed by an unknown key (key rotation, at most once per `min_refresh`), the claims mapped
//! through the same [`AttributeMapping`] as the other backends, and the `allowed_groups` /
//! `allowed_domains` gates.
//!
//! Discovery happens at the first login (or `/readyz`), never while the configuration is loaded,
//! so `authgate check` and a provider that is down at start do not stop the gateway: the login
//! page then says the provider is unavailable and the password form still works.
//!
//! Sessions are restored from the local user store: an `oidc` entry provisions (`create` or
//! `update`) and `get_user` reads the provisioned user back, so disabling them there ends their
//! sessions. When the provider issued a refresh token, revalidation also refreshes through it
//! ([`RedirectLogin::revalidate`]): a grant revoked at the provider ends the session, and the
//! new ID token goes through the login's checks and gates again.
//!
//! The callback's `iss` parameter (RFC 9207) must be the issuer, and is required when the
//! provider advertises `authorization_response_iss_parameter_supported`. Logout leads to the
//! provider's `end_session_endpoint` with the session's ID token as `id_token_hint`.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use auth_core::{
    AttributeMapping, Backend, BackendError, BuildContext, BuildError, CredentialKind, Credentials,
    Duration, LoginBinding, Outcome, ProviderTokens, RedirectLogin, Secret, SignIn, User,
    async_trait, auth_backend,
};
use base64::Engine;
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreClaimName, CoreClaimType,
    CoreClientAuthMethod, CoreErrorResponseType, CoreGenderClaim, CoreGrantType, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm,
    CoreResponseMode, CoreResponseType, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreSubjectIdentifierType, CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AccessToken, AccessTokenHash, AdditionalClaims, AdditionalProviderMetadata, AuthorizationCode,
    ClaimsVerificationError, Client, ClientId, ClientSecret, CsrfToken, EmptyExtraTokenFields,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, IdTokenFields, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, ProviderMetadata, RedirectUrl,
    RefreshToken, RequestTokenError, Scope, StandardErrorResponse, StandardTokenResponse,
    TokenResponse,
};
use serde_json::{Map, Value};

use crate::jwt::Claims;
use crate::store::UserStore;

/// Single sign-on at an OpenID Connect provider: the login page shows a "Sign in with ..."
/// button; the provider's ID token (checked: signature by its JWKS, `iss`, `aud`, `azp`, `exp`,
/// `iat`, `nonce`) is mapped to a user, provisioned into the local store (`provision: create`
/// or `update` is required) and restored from it for the session; when the provider issues a
/// refresh token, each revalidation also refreshes there. Discovery happens at the first login,
/// not at start. Takes no password, token or key.
#[auth_backend(type = "oidc", build = Self::build, accepts = [redirect])]
#[derive(Debug, Clone)]
pub struct OidcBackend {
    /// The provider's issuer URL, e.g. `https://idp.example.org/realms/main`; its
    /// `/.well-known/openid-configuration` is read at the first login.
    pub issuer: String,
    /// The client id registered at the provider for this gateway.
    pub client_id: String,
    /// The client secret (`env:NAME` or `file:PATH` keep it out of the file). Omit it for a
    /// public client (PKCE alone).
    pub client_secret: Option<Secret>,
    /// The button's text is "Sign in with {label}". Default: the entry name.
    pub label: Option<String>,
    /// Scopes asked for; `openid` is always sent. Default: `[openid, email, profile]`. Add
    /// `offline_access` where the provider issues refresh tokens only for it: revalidation then
    /// refreshes through the refresh token.
    pub scopes: Option<Vec<String>>,
    /// Which claims feed the user; a dotted path reads a nested claim (`realm_access.roles`).
    /// Default: `{username: sub, email: email, name: name}`; when written, name `username` too.
    pub attributes: Option<AttributeMapping>,
    /// Only users in at least one of these groups (after mapping) may sign in.
    pub allowed_groups: Option<Vec<String>>,
    /// Only users whose email is at one of these domains may sign in.
    pub allowed_domains: Option<Vec<String>>,
    /// Also read the provider's userinfo endpoint (at login and at each refresh); its claims
    /// complete the ID token's before the attributes are mapped, or stand in for a new ID
    /// token that a refresh does not bring.
    #[option(default = false)]
    pub userinfo: bool,
    /// Where the provider sends the browser after its own logout (RP-initiated logout); it must
    /// be registered at the provider. Default: the gateway's login page.
    pub post_logout_redirect_uri: Option<String>,
    /// Clock skew tolerated for `exp` and `iat`.
    #[option(default = "60s")]
    pub leeway: Duration,
    /// The provider's metadata and keys older than this are read again at the next login.
    #[option(default = "1h")]
    pub refresh_interval: Duration,
    /// At most one reading of the metadata and keys per this interval (an unknown signing key
    /// triggers one).
    #[option(default = "30s")]
    pub min_refresh: Duration,
    /// Time limit of one request to the provider.
    #[option(default = "5s")]
    pub timeout: Duration,
}

fn default_mapping() -> AttributeMapping {
    AttributeMapping {
        username: "sub".into(),
        email: Some("email".into()),
        name: Some("name".into()),
        ..AttributeMapping::default()
    }
}

/// Every claim the standard set does not name, kept for the attribute mapping.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
struct OtherClaims(HashMap<String, Value>);
impl AdditionalClaims for OtherClaims {}

type IdFields = IdTokenFields<
    OtherClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type Tokens = StandardTokenResponse<IdFields, CoreTokenType>;

/// The metadata this backend reads beyond the core set: RP-initiated logout and RFC 9207.
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
struct ExtraMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    end_session_endpoint: Option<String>,
    #[serde(default)]
    authorization_response_iss_parameter_supported: bool,
}
impl AdditionalProviderMetadata for ExtraMetadata {}

type Metadata = ProviderMetadata<
    ExtraMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;
type OidcClient = Client<
    OtherClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    Tokens,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

impl OidcBackend {
    /// Checks the options and builds the backend; the provider is not contacted.
    pub fn build(self, ctx: &BuildContext) -> Result<Arc<dyn Backend>, BuildError> {
        let issuer = IssuerUrl::new(self.issuer.clone())
            .map_err(|e| BuildError::new(format!("oidc: bad `issuer` `{}`: {e}", self.issuer)))?;
        if !matches!(issuer.url().scheme(), "http" | "https") {
            return Err(BuildError::new(
                "oidc: `issuer` must be an http:// or https:// URL",
            ));
        }
        if self.client_id.is_empty() {
            return Err(BuildError::new("oidc: `client_id` must not be empty"));
        }
        if let Some(uri) = &self.post_logout_redirect_uri
            && !url::Url::parse(uri).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
        {
            return Err(BuildError::new(format!(
                "oidc: `post_logout_redirect_uri` `{uri}` is not an absolute http:// or https:// URL"
            )));
        }
        if self.min_refresh.get().is_zero() {
            return Err(BuildError::new(
                "oidc: `min_refresh` must be above 0: it bounds the fetches an unknown signing key causes",
            ));
        }
        let store = ctx.service::<UserStore>().ok_or_else(|| {
            BuildError::new(format!(
                "entry `{}` (type oidc) needs the local user store, where its users are provisioned \
                 and restored from: set `users_db`",
                ctx.entry
            ))
        })?;
        let http = reqwest::Client::builder()
            .timeout(self.timeout.get())
            .connect_timeout(self.timeout.get())
            // Following redirects opens the client to SSRF (the crate's advice).
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| BuildError::new(format!("oidc: cannot build the client: {e}")))?;
        let mut scopes: Vec<String> = self
            .scopes
            .clone()
            .unwrap_or_else(|| vec!["openid".into(), "email".into(), "profile".into()]);
        scopes.retain(|s| s != "openid");
        Ok(Arc::new(Provider {
            entry: ctx.entry.clone(),
            label: self.label.clone().unwrap_or_else(|| ctx.entry.clone()),
            mapping: self.attributes.clone().unwrap_or_else(default_mapping),
            scopes,
            issuer,
            http,
            store,
            metadata: RwLock::new(None),
            last_attempt: tokio::sync::Mutex::new(None),
            refreshes: tokio::sync::Mutex::new(HashMap::new()),
            options: self,
        }))
    }
}

/// What discovery found.
struct Discovered {
    client: OidcClient,
    end_session: Option<String>,
    /// The provider puts `iss` in every authorization response (RFC 9207).
    iss_in_response: bool,
    fetched: Instant,
}

struct Provider {
    entry: String,
    label: String,
    options: OidcBackend,
    mapping: AttributeMapping,
    scopes: Vec<String>,
    issuer: IssuerUrl,
    http: reqwest::Client,
    store: Arc<UserStore>,
    metadata: RwLock<Option<Arc<Discovered>>>,
    /// When the last discovery started; held during one so concurrent callers wait for it.
    last_attempt: tokio::sync::Mutex<Option<Instant>>,
    /// Refreshes in flight or just done, by a digest of the refresh token.
    refreshes: tokio::sync::Mutex<HashMap<[u8; 32], Arc<Flight>>>,
}

/// How long a refresh's result is shared with later revalidations that bring the same refresh
/// token: the requests of one page (its assets) pass `session.revalidate` together, and with the
/// `cookie` store those already under way still carry the old token.
const REFRESH_SHARED_FOR: std::time::Duration = std::time::Duration::from_secs(30);

/// One refresh at the provider, shared by the revalidations that bring the same refresh token:
/// a provider that rotates refresh tokens refuses one used twice, and may revoke the whole
/// grant for it.
struct Flight {
    started: Instant,
    result: tokio::sync::OnceCell<Refreshed>,
}

/// A refresh's result, as shared (cloneable).
#[derive(Clone)]
enum Refreshed {
    Ok(Box<User>, ProviderTokens),
    Rejected,
    Denied(String),
    Gone,
    Unavailable(String),
}

/// Why a login (or a refresh) failed.
enum Refusal {
    Rejected(String),
    Denied(String),
    /// The user is no longer in the local store (gone, disabled, or another entry's).
    Gone,
    Unavailable(BackendError),
}

/// Which `nonce` an ID token must carry.
enum NonceRule<'a> {
    /// A login's: exactly this one.
    Login(&'a Nonce),
    /// A refresh's: none, or the one of the login's ID token (OpenID Connect Core 12.2).
    Refresh(Option<&'a str>),
}

impl Provider {
    fn current(&self) -> Option<Arc<Discovered>> {
        self.metadata
            .read()
            .map(|m| m.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Reads the metadata and keys again unless a reading started less than `min_refresh` ago.
    async fn refresh(&self) -> Result<(), BackendError> {
        let mut last = self.last_attempt.lock().await;
        if last.is_some_and(|t| t.elapsed() < self.options.min_refresh.get()) {
            return Ok(());
        }
        *last = Some(Instant::now());
        let metadata = Metadata::discover_async(self.issuer.clone(), &self.http)
            .await
            .map_err(|e| {
                BackendError::new(format!(
                    "oidc: discovery at {} failed: {}",
                    self.issuer.as_str(),
                    error_chain(&e)
                ))
            })?;
        let extra = metadata.additional_metadata();
        let end_session = extra
            .end_session_endpoint
            .clone()
            .filter(|u| url::Url::parse(u).is_ok());
        let iss_in_response = extra.authorization_response_iss_parameter_supported;
        let client = OidcClient::from_provider_metadata(
            metadata,
            ClientId::new(self.options.client_id.clone()),
            self.options
                .client_secret
                .as_ref()
                .map(|s| ClientSecret::new(s.expose().to_string())),
        );
        let found = Some(Arc::new(Discovered {
            client,
            end_session,
            iss_in_response,
            fetched: Instant::now(),
        }));
        match self.metadata.write() {
            Ok(mut m) => *m = found,
            Err(p) => *p.into_inner() = found,
        }
        tracing::debug!(entry = %self.entry, "oidc: provider metadata and keys read");
        Ok(())
    }

    /// The discovered client, read first when there is none yet or it is stale.
    async fn discovered(&self) -> Result<Arc<Discovered>, BackendError> {
        let stale = self
            .current()
            .is_none_or(|d| d.fetched.elapsed() >= self.options.refresh_interval.get());
        let error = if stale {
            self.refresh().await.err()
        } else {
            None
        };
        self.current().ok_or_else(|| {
            error.unwrap_or_else(|| {
                BackendError::new("oidc: the provider's metadata could not be read yet")
            })
        })
    }

    fn redirect(client: &OidcClient, binding: &LoginBinding) -> Result<OidcClient, BackendError> {
        let uri = RedirectUrl::new(binding.redirect_uri.clone())
            .map_err(|e| BackendError::new(format!("oidc: bad redirect URI: {e}")))?;
        Ok(client.clone().set_redirect_uri(uri))
    }

    /// Checks the ID token with the keys of `found`: `Err(None)` when no key verifies it (the
    /// caller reads the keys again once), `Err(Some(_))` for any other failure.
    fn verify(
        &self,
        found: &Discovered,
        tokens: &Tokens,
        nonce: &NonceRule<'_>,
    ) -> Result<Map<String, Value>, Option<String>> {
        let Some(id_token) = tokens.id_token() else {
            return Err(Some("the token response has no ID token".into()));
        };
        let leeway = chrono::Duration::from_std(self.options.leeway.get())
            .unwrap_or_else(|_| chrono::Duration::seconds(60));
        let verifier = found
            .client
            .id_token_verifier()
            // `exp` is checked against this clock: the leeway moves it back.
            .set_time_fn(move || chrono::Utc::now() - leeway)
            .set_issue_time_verifier_fn(move |iat| {
                if iat > chrono::Utc::now() + leeway {
                    Err(format!("issued in the future ({iat})"))
                } else {
                    Ok(())
                }
            });
        let checked = match nonce {
            NonceRule::Login(nonce) => id_token.claims(&verifier, *nonce),
            NonceRule::Refresh(expected) => {
                let expected = *expected;
                id_token.claims(&verifier, move |got: Option<&Nonce>| {
                    match (got, expected) {
                        (None, _) => Ok(()),
                        (Some(got), Some(expected)) if got.secret() == expected => Ok(()),
                        _ => Err(
                            "the refreshed ID token carries another nonce than the login's".into(),
                        ),
                    }
                })
            }
        };
        let claims = match checked {
            Ok(claims) => claims,
            Err(ClaimsVerificationError::SignatureVerification(e)) => {
                tracing::debug!(entry = %self.entry, error = %e, "oidc: ID token signature not verified");
                return Err(None);
            }
            Err(e) => return Err(Some(e.to_string())),
        };
        // OpenID Connect Core 3.1.3.7, steps 4 and 5 (the crate leaves them to its caller).
        let client_id = self.options.client_id.as_str();
        match claims.authorized_party() {
            Some(azp) if azp.as_str() != client_id => {
                return Err(Some(format!(
                    "`azp` is `{}`, not this client",
                    azp.as_str()
                )));
            }
            None if claims.audiences().len() > 1 => {
                return Err(Some("several audiences and no `azp`".into()));
            }
            _ => {}
        }
        if let Some(expected) = claims.access_token_hash() {
            let alg = id_token.signing_alg().map_err(|e| Some(e.to_string()))?;
            let key = id_token
                .signing_key(&verifier)
                .map_err(|e| Some(e.to_string()))?;
            let actual = AccessTokenHash::from_token(tokens.access_token(), alg, key)
                .map_err(|e| Some(e.to_string()))?;
            if actual != *expected {
                return Err(Some("`at_hash` does not match the access token".into()));
            }
        }
        match serde_json::to_value(claims) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(Some("the ID token claims cannot be read".into())),
        }
    }

    async fn login(
        &self,
        binding: &LoginBinding,
        code: &str,
        iss: Option<&str>,
    ) -> Result<(User, ProviderTokens), Refusal> {
        let found = self.discovered().await.map_err(Refusal::Unavailable)?;
        // RFC 9207, before the code goes anywhere: a response from another issuer (mix-up).
        match iss {
            Some(iss) if iss != self.issuer.as_str() => {
                return Err(Refusal::Rejected(format!(
                    "the callback's `iss` is `{}`, not the issuer",
                    iss.escape_debug()
                )));
            }
            None if found.iss_in_response => {
                return Err(Refusal::Rejected(
                    "the callback has no `iss`, which this provider always sends".into(),
                ));
            }
            _ => {}
        }
        let client = Self::redirect(&found.client, binding).map_err(Refusal::Unavailable)?;
        let request = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| Refusal::Unavailable(BackendError::new(format!("oidc: {e}"))))?
            .set_pkce_verifier(PkceCodeVerifier::new(binding.pkce_verifier.clone()));
        let tokens = match request.request_async(&self.http).await {
            Ok(tokens) => tokens,
            Err(RequestTokenError::ServerResponse(e)) => {
                // `invalid_grant`: a used, expired or foreign code, or a wrong PKCE verifier.
                return Err(Refusal::Rejected(format!(
                    "the provider refused the code: {e}"
                )));
            }
            Err(e) => {
                return Err(Refusal::Unavailable(BackendError::new(format!(
                    "oidc: code exchange failed: {}",
                    error_chain(&e)
                ))));
            }
        };
        let nonce = Nonce::new(binding.nonce.clone());
        let user = self
            .user_from(found, &tokens, &NonceRule::Login(&nonce))
            .await?;
        Ok((user, kept_tokens(&tokens, ProviderTokens::default())))
    }

    /// The user a token response names: its ID token checked (the keys read again once when
    /// none verifies it), the userinfo claims merged when asked, the claims mapped, the gates.
    async fn user_from(
        &self,
        found: Arc<Discovered>,
        tokens: &Tokens,
        nonce: &NonceRule<'_>,
    ) -> Result<User, Refusal> {
        let mut claims = match self.verify(&found, tokens, nonce) {
            Ok(claims) => claims,
            Err(Some(reason)) => return Err(Refusal::Rejected(reason)),
            Err(None) => {
                // Perhaps the provider rotated its keys: read them again (rate-limited), once.
                let _ = self.refresh().await;
                let again = self.current().ok_or_else(|| {
                    Refusal::Unavailable(BackendError::new("oidc: no provider metadata"))
                })?;
                self.verify(&again, tokens, nonce).map_err(|reason| {
                    Refusal::Rejected(reason.unwrap_or_else(|| {
                        "the ID token is not signed by a key of the provider's JWKS".into()
                    }))
                })?
            }
        };
        if self.options.userinfo {
            self.merge_userinfo(&found, tokens, &mut claims).await?;
        }
        self.user_of(&claims)
    }

    /// The user `claims` map to, through the gates.
    fn user_of(&self, claims: &Map<String, Value>) -> Result<User, Refusal> {
        let mut user = self
            .mapping
            .map(&Claims(claims))
            .map_err(|e| Refusal::Unavailable(BackendError::new(format!("oidc: {e}"))))?;
        // Sessions are restored by username from the local store.
        user.id = user.username.clone();
        user.credential_version = None;
        self.admit(&user)?;
        Ok(user)
    }

    /// Refreshes a session's tokens at the provider: the user of the new ID token (it must be
    /// the session's user); without one, the user of the userinfo endpoint read with the new
    /// access token when `userinfo` is on, else the provisioned one; and the tokens to keep.
    async fn refresh_session(
        &self,
        user_id: &str,
        kept: &ProviderTokens,
        refresh_token: &str,
    ) -> Result<(User, ProviderTokens), Refusal> {
        let found = self.discovered().await.map_err(Refusal::Unavailable)?;
        let token = RefreshToken::new(refresh_token.to_string());
        // No `scope`: the grant's, as at login (a subset would drop `openid` and the new ID
        // token with it).
        let request = found
            .client
            .exchange_refresh_token(&token)
            .map_err(|e| Refusal::Unavailable(BackendError::new(format!("oidc: {e}"))))?;
        let tokens = match request.request_async(&self.http).await {
            Ok(tokens) => tokens,
            Err(RequestTokenError::ServerResponse(e))
                if *e.error() == CoreErrorResponseType::InvalidGrant =>
            {
                // Revoked, expired, or the user is gone or disabled at the provider.
                return Err(Refusal::Rejected(format!(
                    "the provider refused the refresh token: {e}"
                )));
            }
            Err(e) => {
                return Err(Refusal::Unavailable(BackendError::new(format!(
                    "oidc: refresh failed: {}",
                    error_chain(&e)
                ))));
            }
        };
        // The login's user as restored from the local store: disabling them there still ends
        // the session.
        let Some(stored) = self.get_user(user_id).await.map_err(Refusal::Unavailable)? else {
            return Err(Refusal::Gone);
        };
        let user = if tokens.id_token().is_some() {
            let login_nonce = kept
                .id_token
                .as_deref()
                .and_then(|t| unverified_claim(t, "nonce"));
            self.user_from(found, &tokens, &NonceRule::Refresh(login_nonce.as_deref()))
                .await?
        } else if self.options.userinfo {
            // The subject of the last ID token (checked when it came), which userinfo must name.
            let sub = kept
                .id_token
                .as_deref()
                .and_then(|t| unverified_claim(t, "sub"));
            let claims = self
                .userinfo(&found, tokens.access_token(), sub.as_deref())
                .await?;
            self.user_of(&claims)?
        } else {
            stored
        };
        if user.id != user_id {
            return Err(Refusal::Rejected(format!(
                "the refreshed claims name another user (`{}`)",
                user.id.escape_debug()
            )));
        }
        Ok((user, kept_tokens(&tokens, kept.clone())))
    }
    /// Adds the userinfo endpoint's claims (the ID token's win; `sub` must be the same).
    async fn merge_userinfo(
        &self,
        found: &Discovered,
        tokens: &Tokens,
        claims: &mut Map<String, Value>,
    ) -> Result<(), Refusal> {
        let sub = claims
            .get("sub")
            .and_then(Value::as_str)
            .map(str::to_string);
        let more = self
            .userinfo(found, tokens.access_token(), sub.as_deref())
            .await?;
        for (name, value) in more {
            claims.entry(name).or_insert(value);
        }
        Ok(())
    }

    /// The userinfo endpoint's claims for `access_token`; they must name `sub` when given.
    async fn userinfo(
        &self,
        found: &Discovered,
        access_token: &AccessToken,
        sub: Option<&str>,
    ) -> Result<Map<String, Value>, Refusal> {
        let sub = sub.map(|s| openidconnect::SubjectIdentifier::new(s.to_string()));
        let request = found
            .client
            .user_info(access_token.clone(), sub)
            .map_err(|e| Refusal::Unavailable(BackendError::new(format!("oidc: userinfo: {e}"))))?;
        let info: openidconnect::UserInfoClaims<OtherClaims, CoreGenderClaim> =
            request.request_async(&self.http).await.map_err(|e| {
                Refusal::Unavailable(BackendError::new(format!(
                    "oidc: userinfo failed: {}",
                    error_chain(&e)
                )))
            })?;
        match serde_json::to_value(&info) {
            Ok(Value::Object(claims)) => Ok(claims),
            _ => Err(Refusal::Rejected(
                "the userinfo claims cannot be read".into(),
            )),
        }
    }

    /// The `allowed_groups` and `allowed_domains` gates.
    fn admit(&self, user: &User) -> Result<(), Refusal> {
        if let Some(groups) = &self.options.allowed_groups
            && !groups.iter().any(|g| user.groups.contains(g))
        {
            return Err(Refusal::Denied("not in an allowed group".into()));
        }
        if let Some(domains) = &self.options.allowed_domains {
            let domain = user
                .email
                .as_deref()
                .and_then(|e| e.rsplit_once('@'))
                .map(|(_, d)| d.to_ascii_lowercase());
            if !domain.is_some_and(|d| domains.iter().any(|a| a.eq_ignore_ascii_case(&d))) {
                return Err(Refusal::Denied("email not at an allowed domain".into()));
            }
        }
        Ok(())
    }
}

/// The tokens of `tokens` to keep with the session, each falling back to `kept`'s (a provider
/// that does not rotate refresh tokens sends none back).
fn kept_tokens(tokens: &Tokens, kept: ProviderTokens) -> ProviderTokens {
    ProviderTokens {
        refresh_token: tokens
            .refresh_token()
            .map(|t| t.secret().clone())
            .or(kept.refresh_token),
        id_token: tokens.id_token().map(ToString::to_string).or(kept.id_token),
    }
}

/// Claim `name` (a string) of an ID token checked when it came (kept with the session), read
/// without checking it again.
fn unverified_claim(id_token: &str, name: &str) -> Option<String> {
    let payload = id_token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Map<String, Value> = serde_json::from_slice(&bytes).ok()?;
    claims.get(name)?.as_str().map(str::to_string)
}

/// An error and its sources, for operators (the crate's top-level messages are terse).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

impl Provider {
    /// The outcome of a refused login or refresh (`what`), logged.
    fn refused(&self, what: &str, refusal: Refusal) -> Outcome {
        match refusal {
            Refusal::Rejected(reason) => {
                tracing::info!(entry = %self.entry, %reason, "oidc: {what} refused");
                Outcome::Rejected
            }
            Refusal::Denied(reason) => Outcome::Denied(reason),
            Refusal::Gone => Outcome::NotFound,
            Refusal::Unavailable(e) => Outcome::Unavailable(e),
        }
    }
}

#[async_trait]
impl Backend for Provider {
    /// No credential a request carries: the login happens at the provider.
    fn accepts(&self, kind: CredentialKind) -> bool {
        kind == CredentialKind::Redirect
    }

    async fn authenticate(
        &self,
        _credentials: &Credentials,
        _context: &auth_core::Context,
    ) -> Outcome {
        Outcome::NotFound
    }

    /// The user provisioned at login, from the local store: `None` when gone, disabled or
    /// provisioned by another entry.
    async fn get_user(&self, id: &str) -> Result<Option<User>, BackendError> {
        let stored = self
            .store
            .get_by_username(id)
            .await
            .map_err(|e| BackendError::new(format!("oidc: user store: {e}")))?;
        Ok(stored
            .filter(|s| !s.disabled && s.source == self.entry)
            .map(|s| {
                let mut user = s.to_user();
                user.id = s.username.clone();
                user.credential_version = None;
                user
            }))
    }

    fn redirect_login(&self) -> Option<&dyn RedirectLogin> {
        Some(self)
    }

    async fn health(&self) -> Result<(), BackendError> {
        self.discovered().await.map(|_| ())
    }
}

#[async_trait]
impl RedirectLogin for Provider {
    fn label(&self) -> &str {
        &self.label
    }

    async fn authorization_url(&self, binding: &LoginBinding) -> Result<String, BackendError> {
        let found = self.discovered().await?;
        let client = Self::redirect(&found.client, binding)?;
        let verifier = PkceCodeVerifier::new(binding.pkce_verifier.clone());
        let state = binding.state.clone();
        let nonce = binding.nonce.clone();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                move || CsrfToken::new(state),
                move || Nonce::new(nonce),
            )
            .set_pkce_challenge(PkceCodeChallenge::from_code_verifier_sha256(&verifier));
        for scope in &self.scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, _, _) = request.url();
        Ok(url.to_string())
    }

    async fn finish(&self, binding: &LoginBinding, code: &str, iss: Option<&str>) -> SignIn {
        match self.login(binding, code, iss).await {
            Ok((user, tokens)) => SignIn {
                outcome: Outcome::Authenticated(user),
                tokens,
            },
            Err(refusal) => self.refused("login", refusal).into(),
        }
    }

    async fn revalidate(&self, user_id: &str, tokens: &ProviderTokens) -> Option<SignIn> {
        use sha2::Digest;
        let refresh_token = tokens.refresh_token.as_deref()?;
        let key: [u8; 32] = sha2::Sha256::digest(refresh_token.as_bytes()).into();
        let flight = {
            let mut flights = self.refreshes.lock().await;
            flights.retain(|_, f| f.started.elapsed() < REFRESH_SHARED_FOR);
            flights
                .entry(key)
                .or_insert_with(|| {
                    Arc::new(Flight {
                        started: Instant::now(),
                        result: tokio::sync::OnceCell::new(),
                    })
                })
                .clone()
        };
        let result = flight
            .result
            .get_or_init(|| async {
                match self.refresh_session(user_id, tokens, refresh_token).await {
                    Ok((user, tokens)) => Refreshed::Ok(Box::new(user), tokens),
                    Err(refusal) => match self.refused("refresh", refusal) {
                        Outcome::Rejected => Refreshed::Rejected,
                        Outcome::Denied(reason) => Refreshed::Denied(reason),
                        Outcome::Unavailable(e) => Refreshed::Unavailable(e.to_string()),
                        _ => Refreshed::Gone,
                    },
                }
            })
            .await
            .clone();
        Some(match result {
            // Another session cannot hold this token; checked all the same.
            Refreshed::Ok(user, tokens) if user.id == user_id => SignIn {
                outcome: Outcome::Authenticated(*user),
                tokens,
            },
            Refreshed::Ok(..) | Refreshed::Rejected => Outcome::Rejected.into(),
            Refreshed::Denied(reason) => Outcome::Denied(reason).into(),
            Refreshed::Gone => Outcome::NotFound.into(),
            Refreshed::Unavailable(e) => {
                // Not kept: the next revalidation tries the provider again.
                let mut flights = self.refreshes.lock().await;
                if flights.get(&key).is_some_and(|f| Arc::ptr_eq(f, &flight)) {
                    flights.remove(&key);
                }
                Outcome::Unavailable(BackendError::new(e)).into()
            }
        })
    }

    fn logout_url(&self, tokens: Option<&ProviderTokens>, default_return: &str) -> Option<String> {
        let end_session = self.current()?.end_session.clone()?;
        let mut url = url::Url::parse(&end_session).ok()?;
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("client_id", &self.options.client_id);
            if let Some(hint) = tokens.and_then(|t| t.id_token.as_deref()) {
                query.append_pair("id_token_hint", hint);
            }
            let back = self
                .options
                .post_logout_redirect_uri
                .as_deref()
                .unwrap_or(default_return);
            query.append_pair("post_logout_redirect_uri", back);
        }
        Some(url.to_string())
    }

    async fn discover(&self) -> Result<(), BackendError> {
        self.discovered().await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::unverified_claim;
    use base64::Engine;

    #[test]
    fn the_login_nonce_is_read_back_from_the_kept_id_token() {
        let b64 = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        let token = format!(
            "{}.{}.sig",
            b64(r#"{"alg":"RS256"}"#),
            b64(r#"{"sub":"alice","nonce":"n-123"}"#)
        );
        assert_eq!(unverified_claim(&token, "nonce").as_deref(), Some("n-123"));
        assert_eq!(unverified_claim(&token, "sub").as_deref(), Some("alice"));
        let without = format!("{}.{}.sig", b64("{}"), b64(r#"{"sub":"alice"}"#));
        assert_eq!(unverified_claim(&without, "nonce"), None);
        for bad in ["", "a", "a.!!.c", &format!("a.{}.c", b64("not json"))] {
            assert_eq!(unverified_claim(bad, "nonce"), None, "{bad}");
        }
    }
}

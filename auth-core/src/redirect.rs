//! Logins that happen at another site (OpenID Connect single sign-on): the browser is sent to
//! the provider and comes back with a code, which the backend turns into a verified user.
//!
//! The gateway owns the browser side (the endpoints, the pre-login cookie, the session); a
//! backend that can log users in this way answers [`Backend::redirect_login`](crate::Backend)
//! with itself, and owns the protocol.

use crate::{BackendError, Outcome, async_trait};

/// The per-login values a redirect login is bound to, derived by the gateway from the visitor's
/// pre-login cookie: a request that does not carry that cookie cannot produce them. `Debug`
/// shows only the redirect URI.
#[derive(Clone, PartialEq, Eq)]
pub struct LoginBinding {
    /// Where the provider sends the browser back (the gateway's callback URL).
    pub redirect_uri: String,
    /// The `state` parameter: compared by the gateway when the browser comes back.
    pub state: String,
    /// The `nonce` the ID token must carry.
    pub nonce: String,
    /// The PKCE code verifier (43 to 128 unreserved characters); its S256 challenge is sent.
    pub pkce_verifier: String,
}

impl std::fmt::Debug for LoginBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginBinding")
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

/// What the provider issued at sign-in that the gateway keeps with the session: the refresh
/// token (revalidation refreshes through it) and the ID token (the `id_token_hint` of the
/// provider's logout). Both are secrets: `Debug` shows only which are present, and the session
/// store keeps them (encrypted, in the `cookie` store).
#[derive(Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProviderTokens {
    /// The refresh token, when the provider issued one.
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The last ID token (compact JWT), when the provider issued one.
    #[serde(rename = "i", default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

impl ProviderTokens {
    /// Whether there is nothing to keep.
    pub fn is_empty(&self) -> bool {
        self.refresh_token.is_none() && self.id_token.is_none()
    }
}

impl std::fmt::Debug for ProviderTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderTokens")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<redacted>"),
            )
            .field("id_token", &self.id_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// The result of a sign-in ([`RedirectLogin::finish`]) or of a refresh
/// ([`RedirectLogin::revalidate`]): the outcome, and the tokens to keep with the session
/// (empty unless `Authenticated`).
#[derive(Debug)]
pub struct SignIn {
    /// What became of the user.
    pub outcome: Outcome,
    /// The tokens to keep with the session.
    pub tokens: ProviderTokens,
}

impl From<Outcome> for SignIn {
    fn from(outcome: Outcome) -> Self {
        SignIn {
            outcome,
            tokens: ProviderTokens::default(),
        }
    }
}

/// A backend whose users sign in at another site.
#[async_trait]
pub trait RedirectLogin: Send + Sync {
    /// The provider's name on the login page's button ("Sign in with {label}").
    fn label(&self) -> &str;

    /// The URL to send the browser to. May contact the provider (discovery); an unreachable
    /// provider is an error, shown to the user as "unavailable".
    async fn authorization_url(&self, binding: &LoginBinding) -> Result<String, BackendError>;

    /// Turns the `code` the browser brought back into a user. `iss` is the callback's `iss`
    /// parameter (RFC 9207), checked before the code is sent anywhere. The code is redeemed
    /// with the binding's PKCE verifier and the ID token checked (signature, issuer, audience,
    /// times, nonce). `Authenticated` with the mapped user (its `id` is its username) and the
    /// tokens to keep; `Rejected` when the provider refuses the code or the response fails a
    /// check; `Denied` when the user is not allowed here; `Unavailable` when the provider cannot
    /// be reached.
    async fn finish(&self, binding: &LoginBinding, code: &str, iss: Option<&str>) -> SignIn;

    /// Re-checks at the provider a session this login started, when the session manager
    /// revalidates it (every `session.revalidate`); `user_id` is the session's user. `None`:
    /// nothing to ask the provider (no refresh token), so the gateway restores the user through
    /// `get_user` as for any backend. Otherwise `Authenticated` with the user and the tokens to
    /// keep from now on; `Rejected` or `Denied` (the grant was revoked, the user is no longer
    /// allowed): the session ends; `Unavailable`: the entry's `on_error` applies.
    async fn revalidate(&self, user_id: &str, tokens: &ProviderTokens) -> Option<SignIn> {
        let _ = (user_id, tokens);
        None
    }

    /// Where to send the browser after the gateway's own logout to end the session at the
    /// provider too (RP-initiated logout), when it advertises an end-session endpoint: with
    /// `client_id`, the session's ID token as `id_token_hint`, and `post_logout_redirect_uri`
    /// (the backend's own setting, else `default_return`). `None` otherwise, or when the
    /// provider has not been discovered yet.
    fn logout_url(&self, tokens: Option<&ProviderTokens>, default_return: &str) -> Option<String> {
        let _ = (tokens, default_return);
        None
    }

    /// Checks that the provider's metadata can be read (for `/readyz`, and before `start`).
    async fn discover(&self) -> Result<(), BackendError>;
}

#[cfg(test)]
mod tests {
    use super::ProviderTokens;

    #[test]
    fn provider_tokens_debug_shows_no_token() {
        let tokens = ProviderTokens {
            refresh_token: Some("refresh-secret".into()),
            id_token: Some("header.payload-secret.signature".into()),
        };
        let shown = format!("{tokens:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
        let none = format!("{:?}", ProviderTokens::default());
        assert!(none.contains("None"), "{none}");
    }

    #[test]
    fn provider_tokens_round_trip_in_short_fields() {
        let tokens = ProviderTokens {
            refresh_token: Some("r1".into()),
            id_token: None,
        };
        let json = serde_json::to_string(&tokens).expect("serializes");
        assert_eq!(json, r#"{"r":"r1"}"#);
        let back: ProviderTokens = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(back, tokens);
        assert!(!back.is_empty());
        assert!(ProviderTokens::default().is_empty());
    }
}

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

/// A backend whose users sign in at another site.
#[async_trait]
pub trait RedirectLogin: Send + Sync {
    /// The provider's name on the login page's button ("Sign in with {label}").
    fn label(&self) -> &str;

    /// The URL to send the browser to. May contact the provider (discovery); an unreachable
    /// provider is an error, shown to the user as "unavailable".
    async fn authorization_url(&self, binding: &LoginBinding) -> Result<String, BackendError>;

    /// Turns the `code` the browser brought back into a user: the code is redeemed with the
    /// binding's PKCE verifier and the ID token checked (signature, issuer, audience, times,
    /// nonce). `Authenticated` with the mapped user (its `id` is its username); `Rejected` when
    /// the provider refuses the code or the token fails a check; `Denied` when the user is not
    /// allowed here; `Unavailable` when the provider cannot be reached.
    async fn finish(&self, binding: &LoginBinding, code: &str) -> Outcome;

    /// The provider's logout URL (RP-initiated logout), when it advertises one; `None`
    /// otherwise or when it has not been discovered yet.
    fn logout_url(&self) -> Option<String> {
        None
    }

    /// Checks that the provider's metadata can be read (for `/readyz`, and before `start`).
    async fn discover(&self) -> Result<(), BackendError>;
}

//! `type: local`: users of the gateway's own user store (`users_db`), managed with
//! `authgate users`, and their API keys (`authgate keys`).

use std::sync::Arc;

use auth_core::password::{self, HashFormat, VerifyPolicy};
use auth_core::{
    Backend, BackendError, BuildContext, BuildError, Context, Credentials, Outcome, User,
    async_trait, auth_backend,
};

use crate::store::{KeyCheck, UserStore};

/// Users of the local user store (`users_db`): Argon2id passwords set with
/// `authgate users add` / `authgate users passwd`, and API keys made with `authgate keys add`
/// (sent in a `login.api_key_headers` header). Users that provisioning mirrored from other
/// entries have no local password and are not found by password.
#[auth_backend(
    type = "local",
    build = Self::build,
    accepts = [password, api_key],
    needs = [user_store]
)]
pub struct Local {}

impl Local {
    /// Takes the store the gateway provides (`BuildContext::provide(Arc<UserStore>)`).
    pub fn build(self, ctx: &BuildContext) -> Result<Arc<dyn Backend>, BuildError> {
        let store = ctx.service::<UserStore>().ok_or_else(|| {
            BuildError::new(format!(
                "entry `{}` (type local) needs the local user store: set `users_db` \
                 (e.g. sqlite://data/users.db)",
                ctx.entry
            ))
        })?;
        Ok(Arc::new(LocalBackend { store }))
    }
}

/// The built `local` backend.
pub(crate) struct LocalBackend {
    store: Arc<UserStore>,
}

fn unavailable(e: impl std::fmt::Display) -> Outcome {
    Outcome::Unavailable(BackendError::new(e))
}

impl LocalBackend {
    /// An API key: unknown -> `NotFound` (another entry may know it), wrong secret, revoked,
    /// expired or its user gone -> `Rejected`, a disabled user's key -> `Denied`.
    async fn api_key(&self, key: &str) -> Outcome {
        match self.store.check_api_key(key).await {
            Ok(KeyCheck::Valid { user, .. }) if user.disabled => {
                Outcome::Denied("account disabled".to_string())
            }
            Ok(KeyCheck::Valid { user, .. }) => Outcome::Authenticated(user.to_user()),
            Ok(KeyCheck::NotFound) => Outcome::NotFound,
            Ok(_) => Outcome::Rejected,
            Err(e) => unavailable(e),
        }
    }
}

#[async_trait]
impl Backend for LocalBackend {
    async fn authenticate(&self, credentials: &Credentials, context: &Context) -> Outcome {
        let (username, password) = match credentials {
            Credentials::Password { username, password } => (username, password),
            Credentials::ApiKey { key, .. } => return self.api_key(key).await,
            Credentials::Bearer(_) => return Outcome::NotFound,
        };
        let stored = match self.store.get_by_username(username).await {
            Ok(stored) => stored,
            Err(e) => return unavailable(e),
        };
        // A user without a local password (mirrored by provisioning) is not found here.
        let stored = stored.and_then(|s| {
            let hash = s.password_hash.clone()?;
            Some((s, hash))
        });
        let account = password::Account {
            entry: &context.entry,
            username,
            stored: stored.as_ref().map(|(_, hash)| hash.as_str()),
            cost_like: "",
        };
        let verified =
            password::verify_stored(account, password, HashFormat::Auto, &VerifyPolicy::STRICT)
                .await;
        if let Some(refusal) = verified.refusal() {
            return refusal;
        }
        let Some((stored, _)) = stored else {
            return Outcome::NotFound;
        };
        // The password is checked before the disabled flag, as Django does, so that only
        // someone who knows the password learns that the account is disabled.
        if stored.disabled {
            return Outcome::Denied("account disabled".to_string());
        }
        if let Err(e) = self.store.record_login(username).await {
            tracing::warn!(error = %e, "could not record the login time");
        }
        Outcome::Authenticated(stored.to_user())
    }

    async fn get_user(&self, id: &str) -> Result<Option<User>, BackendError> {
        let Ok(id) = id.parse::<i64>() else {
            return Ok(None);
        };
        let stored = self.store.get_by_id(id).await.map_err(BackendError::new)?;
        Ok(stored
            .filter(|s| !s.disabled && s.password_hash.is_some())
            .map(|s| s.to_user()))
    }

    async fn health(&self) -> Result<(), BackendError> {
        self.store.ping().await.map_err(BackendError::new)
    }
}

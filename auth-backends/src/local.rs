//! `type: local`: users of the gateway's own user store (`users_db`), managed with
//! `authgate users`.

use std::sync::Arc;

use auth_core::password::{self, HashFormat, VerifyPolicy};
use auth_core::{
    Backend, BackendError, BuildContext, BuildError, Context, Credentials, Outcome, User,
    async_trait, auth_backend,
};

use crate::store::UserStore;

/// Users of the local user store (`users_db`): Argon2id passwords set with
/// `authgate users add` / `authgate users passwd`. Users that provisioning mirrored from other
/// entries have no local password and are not found here.
#[auth_backend(type = "local", build = Self::build)]
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

#[async_trait]
impl Backend for LocalBackend {
    async fn authenticate(&self, credentials: &Credentials, context: &Context) -> Outcome {
        let Credentials::Password { username, password } = credentials else {
            return Outcome::NotFound;
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

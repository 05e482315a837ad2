//! A test-only backend type, `table`: passwords from a fixed table. Registered through
//! `#[auth_backend]` like the built-in types, so config tests exercise real option parsing.

use std::collections::BTreeMap;

use auth_core::{
    Backend, BackendError, Context, Credentials, Duration, Outcome, Secret, User, async_trait,
    auth_backend,
};

/// Checks passwords against a table written in the config (tests only).
#[auth_backend(type = "table")]
pub struct TableBackend {
    /// Where the table came from (required, shown in errors).
    path: String,
    /// Username -> password.
    #[option(default)]
    users: BTreeMap<String, Secret>,
    /// Attempts before giving up.
    #[option(default = 3)]
    retries: u32,
    /// Pause between attempts.
    #[option(default = "1s")]
    delay: Duration,
    /// Accept passwords stored in clear text.
    #[option(default)]
    allow_plaintext: bool,
}

#[async_trait]
impl Backend for TableBackend {
    async fn authenticate(&self, credentials: &Credentials, _: &Context) -> Outcome {
        let _ = (&self.path, self.retries, self.delay, self.allow_plaintext);
        let Credentials::Password { username, password } = credentials else {
            return Outcome::NotFound;
        };
        match self.users.get(username) {
            Some(p) if p.expose() == password => Outcome::Authenticated(User::new(username)),
            Some(_) => Outcome::Rejected,
            None => Outcome::NotFound,
        }
    }

    async fn get_user(&self, id: &str) -> Result<Option<User>, BackendError> {
        Ok(self.users.contains_key(id).then(|| User::new(id)))
    }
}

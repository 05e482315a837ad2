//! The seed's dictionary backend (the Django article's `DictionaryBackend`: users and passwords
//! in a dict), written with `#[auth_backend]` as its own crate. Link it into a gateway binary and
//! `type: dictionary` becomes available:
//!
//! ```yaml
//! chain:
//!   - name: demo
//!     type: dictionary
//!     options:
//!       users:
//!         alice: wonderland
//!         bob: env:BOB_PASSWORD
//!       groups:
//!         alice: [staff]
//! ```
//!
//! Passwords are compared in constant time (of their SHA-256 digests, so the length does not
//! leak either), and an unknown user costs the same comparison as a wrong password.

use std::collections::BTreeMap;

use auth_core::{
    Backend, BackendError, Context, Credentials, Outcome, Secret, User, async_trait, auth_backend,
};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Users and passwords listed in the configuration (for demos, tests and break-glass accounts).
#[auth_backend(type = "dictionary")]
pub struct Dictionary {
    /// Username -> password (a literal, `env:NAME` or `file:PATH`).
    pub users: BTreeMap<String, Secret>,
    /// Username -> groups.
    #[option(default)]
    pub groups: BTreeMap<String, Vec<String>>,
    /// Match usernames ignoring ASCII case; the configured spelling is the canonical username.
    #[option(default = false)]
    pub case_insensitive: bool,
}

fn digest(value: &str) -> [u8; 32] {
    Sha256::digest(value.as_bytes()).into()
}

impl Dictionary {
    /// The configured username and password for `username`, honouring `case_insensitive`.
    fn lookup(&self, username: &str) -> Option<(&str, &Secret)> {
        if let Some((name, secret)) = self.users.get_key_value(username) {
            return Some((name, secret));
        }
        if !self.case_insensitive {
            return None;
        }
        self.users
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(username))
            .map(|(name, secret)| (name.as_str(), secret))
    }

    fn user(&self, username: &str) -> User {
        User::new(username).with_groups(self.groups.get(username).into_iter().flatten().cloned())
    }
}

#[async_trait]
impl Backend for Dictionary {
    async fn authenticate(&self, credentials: &Credentials, _: &Context) -> Outcome {
        let Credentials::Password { username, password } = credentials else {
            return Outcome::NotFound;
        };
        let given = digest(password);
        match self.lookup(username) {
            Some((name, secret)) => {
                if bool::from(given.ct_eq(&digest(secret.expose()))) {
                    Outcome::Authenticated(self.user(name))
                } else {
                    Outcome::Rejected
                }
            }
            None => {
                // Same work as a wrong password, so timing does not reveal who exists.
                let _ = given.ct_eq(&digest(""));
                Outcome::NotFound
            }
        }
    }

    async fn get_user(&self, id: &str) -> Result<Option<User>, BackendError> {
        Ok(self.users.contains_key(id).then(|| self.user(id)))
    }
}

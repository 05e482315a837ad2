//! `type: static`: users listed in the configuration itself.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use auth_core::password::{self, HashFormat, VerifyPolicy};
use auth_core::{
    Backend, BackendError, BuildContext, BuildError, Context, Credentials, Outcome, Secret, User,
    async_trait, auth_backend,
};
use serde::Deserialize;

/// Users written in the config: a password hash (Argon2, bcrypt, SHA-crypt, Django...; make one
/// with `authgate hash-password`), email, name, groups and attributes for each.
#[auth_backend(type = "static", build = Self::build)]
pub struct StaticUsers {
    /// Username -> `{password, email, name, groups, attributes}`.
    users: BTreeMap<String, StaticUser>,
    /// Accept passwords written in clear instead of hashed (for demos only; `authgate check`
    /// warns).
    #[option(default)]
    allow_plaintext: bool,
}

/// One user of a `static` backend.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticUser {
    /// The password hash (or, with `allow_plaintext`, the password); `env:` / `file:` accepted.
    password: Secret,
    /// Email address.
    #[serde(default)]
    email: Option<String>,
    /// Display name.
    #[serde(default)]
    name: Option<String>,
    /// Groups.
    #[serde(default)]
    groups: BTreeSet<String>,
    /// Free attributes: one value or a list.
    #[serde(default)]
    attributes: BTreeMap<String, OneOrMany>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl StaticUsers {
    /// The users whose password is written in clear (only possible with `allow_plaintext: true`),
    /// sorted: what `authgate check` warns about.
    pub fn plaintext_users(&self) -> Vec<&str> {
        let plain = VerifyPolicy {
            allow_plaintext: true,
            ..VerifyPolicy::STRICT
        };
        self.users
            .iter()
            .filter(|(_, u)| {
                password::identify(u.password.expose(), HashFormat::Auto, &plain) == Ok("plain")
            })
            .map(|(name, _)| name.as_str())
            .collect()
    }

    fn policy(&self) -> VerifyPolicy {
        VerifyPolicy {
            allow_plaintext: self.allow_plaintext,
            ..VerifyPolicy::STRICT
        }
    }

    /// Checks every user's hash (format and cost, without hashing) and builds the backend.
    pub fn build(self, ctx: &BuildContext) -> Result<Arc<dyn Backend>, BuildError> {
        let policy = self.policy();
        let plaintext = self.plaintext_users().join(", ");
        if !plaintext.is_empty() {
            tracing::warn!(
                entry = %ctx.entry,
                users = %plaintext,
                "static backend has plaintext passwords (allow_plaintext: true)"
            );
        }
        let mut users = BTreeMap::new();
        for (username, u) in self.users {
            password::identify(u.password.expose(), HashFormat::Auto, &policy).map_err(|e| {
                BuildError::new(format!(
                    "user `{username}`: {e}; write a hash made with `authgate hash-password`{}",
                    if policy.allow_plaintext {
                        ""
                    } else {
                        " (or set allow_plaintext: true for a demo)"
                    }
                ))
            })?;
            let mut user = User::new(username.clone());
            user.email = u.email;
            user.display_name = u.name;
            user.groups = u.groups;
            user.attributes = u
                .attributes
                .into_iter()
                .map(|(k, v)| match v {
                    OneOrMany::One(one) => (k, vec![one]),
                    OneOrMany::Many(many) => (k, many),
                })
                .collect();
            user.credential_version = Some(password::credential_version(u.password.expose()));
            users.insert(
                username,
                Entry {
                    hash: u.password,
                    user,
                },
            );
        }
        // Unknown users are checked against a hash in the format most users have, so they cost
        // what a wrong password does.
        let dummy: Secret = Secret::new(
            password::representative_hash(
                users.values().map(|e| e.hash.expose()),
                HashFormat::Auto,
                &policy,
            )
            .unwrap_or_else(|| password::dummy_hash())
            .to_string(),
        );
        Ok(Arc::new(StaticBackend {
            users,
            policy,
            dummy,
        }))
    }
}

struct Entry {
    hash: Secret,
    user: User,
}

/// The built `static` backend.
struct StaticBackend {
    users: BTreeMap<String, Entry>,
    policy: VerifyPolicy,
    dummy: Secret,
}

#[async_trait]
impl Backend for StaticBackend {
    async fn authenticate(&self, credentials: &Credentials, context: &Context) -> Outcome {
        let Credentials::Password { username, password } = credentials else {
            return Outcome::NotFound;
        };
        let entry = self.users.get(username);
        let account = password::Account {
            entry: &context.entry,
            username,
            stored: entry.map(|e| e.hash.expose()),
            cost_like: self.dummy.expose(),
        };
        let verified =
            password::verify_stored(account, password, HashFormat::Auto, &self.policy).await;
        if let Some(refusal) = verified.refusal() {
            return refusal;
        }
        match entry {
            Some(entry) => Outcome::Authenticated(entry.user.clone()),
            None => Outcome::NotFound,
        }
    }

    async fn get_user(&self, id: &str) -> Result<Option<User>, BackendError> {
        Ok(self.users.get(id).map(|e| e.user.clone()))
    }
}

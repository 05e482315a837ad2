use std::fmt;

/// The kind of credential a request brings; a backend says which kinds it accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CredentialKind {
    /// Username and password (HTTP Basic or the login form).
    Password,
    /// `Authorization: Bearer ...`.
    Bearer,
    /// An API key sent in a configured header.
    ApiKey,
    /// A login completed at another site (single sign-on): no credential travels with the
    /// requests; the gateway's callback endpoint runs the backend's
    /// [`RedirectLogin`](crate::RedirectLogin), never the chain.
    Redirect,
}

/// What a request brings. `Debug` never shows a password, token or key.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// A username and a password.
    Password {
        /// As typed by the user; backends decide how to canonicalize it.
        username: String,
        /// The password, never logged.
        password: String,
    },
    /// A bearer token.
    Bearer(String),
    /// An API key and the header it came in.
    ApiKey {
        /// Header name.
        header: String,
        /// The key, never logged.
        key: String,
    },
}

impl Credentials {
    /// Username and password credentials.
    pub fn password(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials::Password {
            username: username.into(),
            password: password.into(),
        }
    }

    /// The kind of these credentials.
    pub fn kind(&self) -> CredentialKind {
        match self {
            Credentials::Password { .. } => CredentialKind::Password,
            Credentials::Bearer(_) => CredentialKind::Bearer,
            Credentials::ApiKey { .. } => CredentialKind::ApiKey,
        }
    }

    /// The username, for password credentials.
    pub fn username(&self) -> Option<&str> {
        match self {
            Credentials::Password { username, .. } => Some(username),
            _ => None,
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Password { username, .. } => f
                .debug_struct("Password")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            Credentials::Bearer(_) => f.write_str("Bearer(<redacted>)"),
            Credentials::ApiKey { header, .. } => f
                .debug_struct("ApiKey")
                .field("header", header)
                .field("key", &"<redacted>")
                .finish(),
        }
    }
}

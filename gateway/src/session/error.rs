//! Why a session operation failed.

use std::path::PathBuf;

/// Why a session operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// `session.secret` is shorter than 32 bytes.
    #[error("session.secret is {0} bytes long; at least 32 bytes are required")]
    SecretTooShort(usize),
    /// The generated secret file could not be read or written.
    #[error("session secret file `{path}`: {source}")]
    SecretFile {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The generated secret file holds no usable secret (not base64, too short).
    #[error("session secret file `{path}`: {message}")]
    SecretFileContent {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// `session.store` names no known store.
    #[error(
        "unknown session store `{0}`; expected `memory`, `cookie`, `sqlite://PATH`, `postgres://...`, `mysql://...` or `redis://...`"
    )]
    UnknownStore(String),
    /// A timeout in the config cannot be used.
    #[error("invalid session config: {0}")]
    InvalidConfig(String),
    /// The store cannot be reached or refused the operation: the caller must fail closed (503).
    /// A message, not a source: a store's error can quote its URL, password included.
    #[error("session store unavailable: {0}")]
    Unavailable(String),
    /// The session does not fit in a cookie (cookie store with a large user snapshot).
    #[error("session is {0} bytes once encrypted, too large for the cookie store")]
    TooLarge(usize),
}

impl SessionError {
    /// Whether the store was unreachable (answer 503, never "allowed").
    pub fn is_unavailable(&self) -> bool {
        matches!(self, SessionError::Unavailable(_))
    }
}

use std::fmt;
use std::net::IpAddr;

use async_trait::async_trait;

use crate::{CredentialKind, Credentials, Outcome, User};

/// Why a backend could not answer. Its message is shown to operators (logs, `authgate explain`),
/// so it must never contain a secret.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct BackendError {
    message: String,
    timeout: bool,
    busy: bool,
}

impl BackendError {
    /// A backend failure with an operator-facing message.
    pub fn new(message: impl fmt::Display) -> Self {
        BackendError {
            message: message.to_string(),
            timeout: false,
            busy: false,
        }
    }

    /// A password check failed to run; `context` says where (never a secret). When the hashing
    /// pool is saturated the error is marked busy, so the gateway answers 503 rather than 401.
    pub fn hashing(error: crate::password::HashError, context: impl fmt::Display) -> Self {
        let busy = error.is_busy();
        let context = context.to_string();
        BackendError {
            message: if context.is_empty() {
                error.to_string()
            } else {
                format!("{context}: {error}")
            },
            timeout: false,
            busy,
        }
    }

    /// Whether the password-hashing pool was saturated (a login storm): answer 503, retry later.
    pub fn is_busy(&self) -> bool {
        self.busy
    }

    /// The backend did not answer within its time budget.
    pub fn timeout(after: std::time::Duration) -> Self {
        BackendError {
            message: format!("timed out after {}", humantime::format_duration(after)),
            timeout: true,
            busy: false,
        }
    }

    /// Whether this error is a timeout.
    pub fn is_timeout(&self) -> bool {
        self.timeout
    }
}

/// Per-request facts a backend may use (client address, for logging or rate decisions).
#[derive(Clone, Debug, Default)]
pub struct Context {
    /// The client's address, as the gateway believes it.
    pub client_ip: Option<IpAddr>,
    /// The chain entry name this backend runs under.
    pub entry: String,
}

/// An authentication backend, like a Django `AUTHENTICATION_BACKENDS` entry. Object-safe: the
/// chain holds `Arc<dyn Backend>`.
///
/// The chain enforces the credential policy ([`crate::policy`]) before any backend runs: a
/// backend never sees an empty, over-long or control-character-bearing username, password,
/// token or key. A backend that holds password hashes checks them with
/// [`crate::password::verify_stored`] (unknown users, unusable and refused hashes, bcrypt and
/// DES limits, timing, the bounded hashing pool off the reactor threads), and must not block
/// the async reactor otherwise.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Whether this backend can handle credentials of `kind`; the chain skips it otherwise.
    /// Defaults to passwords only.
    fn accepts(&self, kind: CredentialKind) -> bool {
        kind == CredentialKind::Password
    }

    /// Checks the credentials. Unknown users must cost the same time as a wrong password
    /// ([`crate::password::verify_stored`] does it).
    async fn authenticate(&self, credentials: &Credentials, context: &Context) -> Outcome;

    /// Restores a user by the `id` this backend gave at login; `Ok(None)` when the user is gone
    /// or disabled (their sessions end).
    async fn get_user(&self, id: &str) -> Result<Option<User>, BackendError>;

    /// The backend as a redirect login (single sign-on at another site), when it is one: the
    /// gateway then offers it on the login page and runs its `start` and `callback` endpoints.
    /// Defaults to `None`.
    fn redirect_login(&self) -> Option<&dyn crate::RedirectLogin> {
        None
    }

    /// Checks that the backend can answer (for `/readyz`). Defaults to healthy.
    async fn health(&self) -> Result<(), BackendError> {
        Ok(())
    }
}

use crate::{BackendError, User};

/// What one backend's `authenticate` answers. See the table in the README.
#[derive(Debug)]
pub enum Outcome {
    /// The credentials are good: the chain stops with this user.
    Authenticated(User),
    /// The backend does not know this user or this kind of credential: the next backend is tried.
    NotFound,
    /// The backend knows the user and the credentials are wrong: `on_reject` decides.
    Rejected,
    /// The backend knows the user and refuses them (disabled, locked...): the chain stops, denied.
    Denied(String),
    /// The backend could not answer (down, timeout, bad reply): `on_error` decides.
    Unavailable(BackendError),
}

impl Outcome {
    /// A short lower-case label (`authenticated`, `not_found`, ...), for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Authenticated(_) => "authenticated",
            Outcome::NotFound => "not_found",
            Outcome::Rejected => "rejected",
            Outcome::Denied(_) => "denied",
            Outcome::Unavailable(_) => "unavailable",
        }
    }
}

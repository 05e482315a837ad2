//! [`verify_stored`]: the one password check every backend with stored hashes calls.

use crate::{BackendError, Outcome};

use super::{HashError, HashFormat, VerifyPolicy, dummy_verify, pool, random_password, refusal};

/// The account a backend found (or did not find) for a login, as [`verify_stored`] needs it.
#[derive(Clone, Copy)]
pub struct Account<'a> {
    /// The chain entry the backend runs under ([`crate::Context::entry`]), for the log line.
    pub entry: &'a str,
    /// The username as the backend looked it up, for the log line.
    pub username: &'a str,
    /// The stored hash; `None` when the backend has no such user (an empty or NULL hash of a
    /// known user is `Some("")`).
    pub stored: Option<&'a str>,
    /// A hash of the format and cost the backend's real hashes have (one of them will do; `""`
    /// for [`super::dummy_hash`]): what an unknown user and a refused hash cost.
    pub cost_like: &'a str,
}

impl std::fmt::Debug for Account<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("entry", &self.entry)
            .field("username", &self.username)
            .field("known", &self.stored.is_some())
            .finish_non_exhaustive()
    }
}

/// What [`verify_stored`] found. Only [`Verification::Match`] is a login.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub enum Verification {
    /// The password matches the stored hash.
    Match,
    /// The password is wrong, or can never match (empty, over-long, control characters; over
    /// 72 bytes against bcrypt, over 8 against DES crypt).
    Mismatch,
    /// No such user; a dummy check of the same cost was done.
    UnknownUser,
    /// This user's stored hash cannot be used: empty, unusable (`!`), a format the policy
    /// refuses (plaintext, DES crypt, legacy), an unknown, mismatched or malformed format, an
    /// absurd cost. The user's refusal, not the backend's failure: the time of a wrong password
    /// was spent, a WARN logged (once per entry and user every 10 minutes) and the reason
    /// counted ([`super::refusal_counts`]).
    Refused(HashError),
    /// The check could not run ([`HashError::Busy`], [`HashError::Internal`]): answer 503.
    Unavailable(HashError),
}

impl Verification {
    /// The backend's answer unless the password matched: `None` for [`Verification::Match`]
    /// (go on: check the account is active, build the user); else `NotFound` for an unknown
    /// user, `Rejected` for a mismatch or a refused hash, `Unavailable` when the check could not
    /// run.
    pub fn refusal(self) -> Option<Outcome> {
        match self {
            Verification::Match => None,
            Verification::Mismatch | Verification::Refused(_) => Some(Outcome::Rejected),
            Verification::UnknownUser => Some(Outcome::NotFound),
            Verification::Unavailable(e) => Some(Outcome::Unavailable(BackendError::hashing(
                e,
                "password check",
            ))),
        }
    }
}

/// Checks `password` against an account's stored hash, the protocol every backend holding
/// hashes follows (the built-in `static`, `htpasswd`, `sql` and `local` do):
/// - an unknown user (`stored: None`) costs a check against `cost_like`: [`Verification::UnknownUser`];
/// - a password the credential policy refuses ([`crate::policy::check_password`]) is hashed as
///   a random one (same time) and is a [`Verification::Mismatch`];
/// - a stored hash that cannot be used is [`Verification::Refused`] after a check against
///   `cost_like` (same time), logged and counted;
/// - bcrypt (and Django's `bcrypt$`) with a password over 72 bytes, DES crypt over 8 bytes:
///   `Mismatch`, never truncated;
/// - the hashing runs on the bounded pool, off the reactor; a saturated pool is
///   [`Verification::Unavailable`].
///
/// `format` and `policy` say which formats the backend accepts (its `password_format` and
/// `allow_*` options).
pub async fn verify_stored(
    account: Account<'_>,
    password: &str,
    format: HashFormat,
    policy: &VerifyPolicy,
) -> Verification {
    let Some(stored) = account.stored else {
        return match dummy_verify(account.cost_like).await {
            Ok(()) => Verification::UnknownUser,
            Err(e) => Verification::Unavailable(e),
        };
    };
    let scheme = match super::scheme::Scheme::identify(stored, format, policy) {
        Ok(scheme) => scheme,
        Err(e) => return refuse(account, e, true).await,
    };
    let acceptable = crate::policy::check_password(password).is_ok();
    let candidate = if acceptable {
        password.to_owned()
    } else {
        random_password()
    };
    match pool::run(move || scheme.check(&candidate)).await {
        Ok(Ok(true)) if acceptable => Verification::Match,
        Ok(Ok(_)) => Verification::Mismatch,
        // Found only while hashing: the time was spent already.
        Ok(Err(e)) => refuse(account, e, false).await,
        Err(e) => Verification::Unavailable(e),
    }
}

async fn refuse(account: Account<'_>, error: HashError, spend: bool) -> Verification {
    if error.is_busy() || matches!(error, HashError::Internal(_)) {
        return Verification::Unavailable(error);
    }
    if spend && let Err(e) = dummy_verify(account.cost_like).await {
        return Verification::Unavailable(e);
    }
    refusal::record(account.entry, account.username, &error);
    Verification::Refused(error)
}

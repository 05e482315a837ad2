//! Phase 3, **identify**: who is asking.
//!
//! Contract:
//! - the session cookie first: the store is asked (a store error is `503`, fail closed); a
//!   session due for revalidation is re-read through `chain.get_user(entry, id)`; a user gone,
//!   an entry gone from the chain or a changed credential version destroys the session and the
//!   request continues as anonymous (with the cookie cleared);
//! - else `Authorization: Basic` when `login.basic_auth` is on: malformed (not base64, no `:`,
//!   not UTF-8, longer than [`MAX_BASIC_BYTES`]) is `400` — never anonymous-then-2xx; a locked
//!   (username, client IP) pair is answered like a wrong password without running the chain;
//!   a cached success is used; otherwise the chain runs (backends hash passwords off the
//!   reactor) and failures count towards the lockout;
//! - a chain `Unavailable` is `503`; `Rejected`, `NotFound`, `Denied` leave the request
//!   anonymous (the challenge follows).

use auth_core::{ChainOutcome, Credentials, User};
use base64::Engine;
use http::HeaderMap;
use http::header;

use super::error::ProxyError;

/// The longest `Authorization: Basic` value accepted.
pub(crate) const MAX_BASIC_BYTES: usize = 4096;

/// `Authorization: Basic` could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BasicError {
    /// Over [`MAX_BASIC_BYTES`].
    #[error("Basic credentials too long")]
    TooLong,
    /// Not base64.
    #[error("Basic credentials are not base64")]
    Base64,
    /// Not UTF-8.
    #[error("Basic credentials are not UTF-8")]
    Utf8,
    /// No `:`.
    #[error("Basic credentials have no `:`")]
    NoColon,
    /// Several `Authorization` headers.
    #[error("several Authorization headers")]
    Duplicate,
}

/// Reads `Authorization: Basic`: `Ok(None)` when absent or another scheme.
pub(crate) fn basic_credentials(headers: &HeaderMap) -> Result<Option<Credentials>, BasicError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(BasicError::Duplicate);
    }
    if value.len() > MAX_BASIC_BYTES {
        return Err(BasicError::TooLong);
    }
    let bytes = value.as_bytes();
    let Some(space) = bytes.iter().position(|b| *b == b' ') else {
        return Ok(None);
    };
    if !bytes[..space].eq_ignore_ascii_case(b"basic") {
        return Ok(None);
    }
    let encoded = std::str::from_utf8(&bytes[space + 1..])
        .map_err(|_| BasicError::Base64)?
        .trim();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| BasicError::Base64)?;
    let text = String::from_utf8(decoded).map_err(|_| BasicError::Utf8)?;
    let (user, password) = text.split_once(':').ok_or(BasicError::NoColon)?;
    Ok(Some(Credentials::password(user, password)))
}

/// The result of the chain, reduced to what the request path needs.
#[derive(Debug)]
pub(crate) enum ChainVerdict {
    /// Authenticated.
    User(User),
    /// Wrong credentials, unknown user or denied: anonymous.
    Refused,
}

/// Maps a chain outcome: `Unavailable` is a 503.
pub(crate) fn verdict(outcome: ChainOutcome) -> Result<ChainVerdict, ProxyError> {
    match outcome {
        ChainOutcome::Authenticated { user, .. } => Ok(ChainVerdict::User(user)),
        ChainOutcome::Unavailable { entry, error } => Err(ProxyError::unavailable(format!(
            "backend `{entry}` unavailable: {error}"
        ))),
        ChainOutcome::Rejected | ChainOutcome::NotFound | ChainOutcome::Denied { .. } => {
            Ok(ChainVerdict::Refused)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn with(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn reads_basic() {
        let c = basic_credentials(&with("Basic YWxpY2U6cDpx"))
            .unwrap()
            .unwrap();
        assert_eq!(c, Credentials::password("alice", "p:q"));
        assert_eq!(basic_credentials(&with("Bearer x")).unwrap(), None);
        assert_eq!(basic_credentials(&HeaderMap::new()).unwrap(), None);
    }

    #[test]
    fn malformed_basic_is_an_error() {
        assert_eq!(
            basic_credentials(&with("Basic !!!")),
            Err(BasicError::Base64)
        );
        // "alice" without colon
        assert_eq!(
            basic_credentials(&with("Basic YWxpY2U=")),
            Err(BasicError::NoColon)
        );
        // 0xff 0x3a
        assert_eq!(
            basic_credentials(&with("Basic /zo=")),
            Err(BasicError::Utf8)
        );
        let long = format!("Basic {}", "A".repeat(MAX_BASIC_BYTES));
        assert_eq!(basic_credentials(&with(&long)), Err(BasicError::TooLong));
        let mut two = with("Basic YWxpY2U6cA==");
        two.append(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic YQ=="),
        );
        assert_eq!(basic_credentials(&two), Err(BasicError::Duplicate));
    }
}

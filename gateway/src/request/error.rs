//! Errors on the request path know their origin (client, upstream, internal); they become a
//! response in exactly one place, [`ProxyError::to_response`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::{BodyExt, Full};

use super::Body;

/// Who caused a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorSource {
    /// The request was malformed or ambiguous: 4xx.
    Client,
    /// The upstream failed: 502 / 504.
    Upstream,
    /// The gateway (or a store it needs) failed: 500 / 503.
    Internal,
}

/// A failure on the request path. Its `message` is for the log and never holds a secret; the
/// client only sees the status line's reason.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub(crate) struct ProxyError {
    pub(crate) origin: ErrorSource,
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

impl ProxyError {
    /// A 400 for a malformed request.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        ProxyError {
            origin: ErrorSource::Client,
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    /// A client error with another 4xx status.
    pub(crate) fn client(status: StatusCode, message: impl Into<String>) -> Self {
        ProxyError {
            origin: ErrorSource::Client,
            status,
            message: message.into(),
        }
    }

    /// 502: the upstream could not be reached or broke the exchange.
    pub(crate) fn bad_gateway(message: impl Into<String>) -> Self {
        ProxyError {
            origin: ErrorSource::Upstream,
            status: StatusCode::BAD_GATEWAY,
            message: message.into(),
        }
    }

    /// 504: the upstream did not answer in time.
    pub(crate) fn gateway_timeout(message: impl Into<String>) -> Self {
        ProxyError {
            origin: ErrorSource::Upstream,
            status: StatusCode::GATEWAY_TIMEOUT,
            message: message.into(),
        }
    }

    /// 500: a bug or a value the gateway refuses to send.
    pub(crate) fn internal(message: impl Into<String>) -> Self {
        ProxyError {
            origin: ErrorSource::Internal,
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: message.into(),
        }
    }

    /// 503: a store or backend the decision depends on is down (fail closed).
    pub(crate) fn unavailable(message: impl Into<String>) -> Self {
        ProxyError {
            origin: ErrorSource::Internal,
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: message.into(),
        }
    }

    /// The response the client gets: the status and its reason, nothing from `message`.
    pub(crate) fn to_response(&self) -> Response<Body> {
        plain_response(
            self.status,
            self.status.canonical_reason().unwrap_or("Error"),
        )
    }
}

/// A small `text/plain` response.
pub(crate) fn plain_response(status: StatusCode, text: &str) -> Response<Body> {
    let mut resp = Response::new(full_body(format!("{text}\n")));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    resp
}

/// A fixed body.
pub(crate) fn full_body(data: impl Into<Bytes>) -> Body {
    Full::new(data.into())
        .map_err(|never| match never {})
        .boxed()
}

/// The log throttle of 503 answers.
pub(crate) static UNAVAILABLE_LOG: Throttle = Throttle::new();

/// Lets one log line through per second and counts the others.
#[derive(Debug)]
pub(crate) struct Throttle {
    last_second: AtomicU64,
    suppressed: AtomicU64,
}

impl Throttle {
    pub(crate) const fn new() -> Throttle {
        Throttle {
            last_second: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(lines suppressed since the last one)` when the caller may log now; `None` when it
    /// must not (the line is counted).
    pub(crate) fn allow(&self) -> Option<u64> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let last = self.last_second.load(Ordering::Relaxed);
        if last != now
            && self
                .last_second
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            return Some(self.suppressed.swap(0, Ordering::Relaxed));
        }
        self.suppressed.fetch_add(1, Ordering::Relaxed);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_lets_one_line_per_second_through() {
        let t = Throttle::new();
        assert_eq!(t.allow(), Some(0));
        // Within the same second (retry once if the second just turned).
        let mut blocked = (0..100).filter(|_| t.allow().is_none()).count();
        if blocked < 99 {
            blocked = (0..100).filter(|_| t.allow().is_none()).count();
        }
        assert!(blocked >= 99, "{blocked} of 100 lines suppressed");
    }
}

//! Errors on the request path know their origin (client, upstream, internal); they become a
//! response in exactly one place, [`ProxyError::to_response`]: a page in the login page's style
//! for browsers, JSON for API clients, plain text otherwise ([`ErrorFormat`]). The client sees
//! only the status, a title and a generic message ([`crate::login::ErrorPage`]); the error's
//! own message goes to the log.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};

use super::Body;
use super::challenge::{accepts_html, accepts_json};
use crate::login::{ErrorPage, Template};

/// How a client gets an error, decided from its `Accept` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorFormat {
    /// `Accept` names `text/html` (the challenge's test for a browser): the styled page.
    Html,
    /// `Accept` names `application/json` or a `+json` type:
    /// `{"error": "bad_gateway", "status": 502, "message": "..."}`.
    Json,
    /// Anything else (no `Accept`, `*/*`, ...): the reason phrase as `text/plain`.
    Plain,
}

impl ErrorFormat {
    /// The format for the `Accept` values kept by [`AcceptValues::of`].
    pub(crate) fn of_accept(accept: &AcceptValues) -> ErrorFormat {
        if accepts_html(accept.0.iter()) {
            ErrorFormat::Html
        } else if accepts_json(accept.0.iter()) {
            ErrorFormat::Json
        } else {
            ErrorFormat::Plain
        }
    }
}

/// A request's `Accept` values, kept (shared, not copied) so that the error format is worked
/// out only when there is an error, after the request itself has been consumed.
#[derive(Debug, Default)]
pub(crate) struct AcceptValues(smallvec::SmallVec<[HeaderValue; 1]>);

impl AcceptValues {
    /// The `Accept` values of a request with these headers.
    pub(crate) fn of(headers: &HeaderMap) -> AcceptValues {
        AcceptValues(headers.get_all(header::ACCEPT).iter().cloned().collect())
    }
}

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
    /// For a 405: the methods the resource takes, sent as the `Allow` header (RFC 9110 15.5.6).
    pub(crate) allow: Option<&'static str>,
}

impl ProxyError {
    /// A 400 for a malformed request.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        ProxyError {
            origin: ErrorSource::Client,
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            allow: None,
        }
    }

    /// A client error with another 4xx status.
    pub(crate) fn client(status: StatusCode, message: impl Into<String>) -> Self {
        ProxyError {
            origin: ErrorSource::Client,
            status,
            message: message.into(),
            allow: None,
        }
    }

    /// 502: the upstream could not be reached or broke the exchange.
    pub(crate) fn bad_gateway(message: impl Into<String>) -> Self {
        ProxyError {
            origin: ErrorSource::Upstream,
            status: StatusCode::BAD_GATEWAY,
            message: message.into(),
            allow: None,
        }
    }

    /// 504: the upstream did not answer in time.
    pub(crate) fn gateway_timeout(message: impl Into<String>) -> Self {
        ProxyError {
            origin: ErrorSource::Upstream,
            status: StatusCode::GATEWAY_TIMEOUT,
            message: message.into(),
            allow: None,
        }
    }

    /// 405: the resource exists but not for this method; `allow` lists the ones it takes.
    pub(crate) fn method_not_allowed(allow: &'static str, message: impl Into<String>) -> Self {
        ProxyError {
            allow: Some(allow),
            ..ProxyError::client(StatusCode::METHOD_NOT_ALLOWED, message)
        }
    }

    /// 404: nothing at this path (under the login prefix).
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        ProxyError::client(StatusCode::NOT_FOUND, message)
    }

    /// 500: a bug or a value the gateway refuses to send.
    pub(crate) fn internal(message: impl Into<String>) -> Self {
        ProxyError {
            origin: ErrorSource::Internal,
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: message.into(),
            allow: None,
        }
    }

    /// 503: a store or backend the decision depends on is down (fail closed).
    pub(crate) fn unavailable(message: impl Into<String>) -> Self {
        ProxyError {
            origin: ErrorSource::Internal,
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: message.into(),
            allow: None,
        }
    }

    /// The response the client gets, in `format`: the status, a title and a generic message,
    /// nothing from `message`. `template` is the operator's `login.error_template`.
    pub(crate) fn to_response(
        &self,
        format: ErrorFormat,
        template: Option<&Template>,
    ) -> Response<Body> {
        let page = ErrorPage::for_status(&self.status);
        let mut resp = match format {
            ErrorFormat::Html => {
                let template = template.unwrap_or(Template::builtin_error());
                html_response(self.status, template.render_error(&page), template.csp())
            }
            ErrorFormat::Json => {
                let code: String = self
                    .status
                    .canonical_reason()
                    .unwrap_or("error")
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == ' ' || *c == '-')
                    .map(|c| match c {
                        ' ' | '-' => '_',
                        c => c.to_ascii_lowercase(),
                    })
                    .collect();
                let body = serde_json::json!({
                    "error": code,
                    "status": self.status.as_u16(),
                    "message": page.message,
                });
                fixed_response(self.status, body.to_string(), "application/json")
            }
            ErrorFormat::Plain => plain_response(
                self.status,
                self.status.canonical_reason().unwrap_or("Error"),
            ),
        };
        if let Some(allow) = self.allow {
            resp.headers_mut()
                .insert(header::ALLOW, header::HeaderValue::from_static(allow));
        }
        resp
    }
}

/// A gateway page: `text/html`, not cached, not framed, with `csp` as its
/// `Content-Security-Policy` (the built-in pages' [`crate::login::builtin_csp`]).
pub(crate) fn html_response(status: StatusCode, html: String, csp: Option<&str>) -> Response<Body> {
    let mut resp = Response::new(full_body(html));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    h.insert(
        header::HeaderName::from_static("x-frame-options"),
        header::HeaderValue::from_static("DENY"),
    );
    if let Some(csp) = csp.and_then(|c| header::HeaderValue::from_str(c).ok()) {
        h.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    resp
}

/// A small `text/plain` response.
pub(crate) fn plain_response(status: StatusCode, text: &str) -> Response<Body> {
    fixed_response(status, format!("{text}\n"), "text/plain; charset=utf-8")
}

/// A response of `status` with `body` of type `content_type`, not cached.
fn fixed_response(status: StatusCode, body: String, content_type: &'static str) -> Response<Body> {
    let mut resp = Response::new(full_body(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
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

//! Phase 4, **challenge**: what an anonymous request to a protected route gets.
//!
//! Contract: a browser (`Accept` naming `text/html`) gets `302` to `<prefix>/login?next=<path>`
//! where `next` is the normalized path and query of this request (always a local path, so it
//! passes `next` validation); every other client gets `401` with
//! `WWW-Authenticate: Basic realm="..."` when `login.basic_auth` is on (and a bare `401`
//! otherwise). Nothing from the request body is read.

use http::header::{self, HeaderValue};
use http::{HeaderMap, Response, StatusCode};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

use super::Body;
use super::context::RequestContext;
use super::error::plain_response;
use crate::runtime::Runtime;

/// Whether the client is a browser that can follow a redirect to the login page.
pub(crate) fn wants_html(headers: &HeaderMap) -> bool {
    accepts_html(headers.get_all(header::ACCEPT).iter())
}

/// [`wants_html`] over the `Accept` values.
pub(crate) fn accepts_html<'a>(accept: impl Iterator<Item = &'a HeaderValue>) -> bool {
    accepts(accept, |m| m.eq_ignore_ascii_case("text/html"))
}

/// Whether the client is an API client asking for JSON (`application/json` or a `+json` type),
/// from its `Accept` values.
pub(crate) fn accepts_json<'a>(accept: impl Iterator<Item = &'a HeaderValue>) -> bool {
    accepts(accept, |m| {
        m.eq_ignore_ascii_case("application/json")
            || (m.len() > 5
                && m.is_char_boundary(m.len() - 5)
                && m[m.len() - 5..].eq_ignore_ascii_case("+json"))
    })
}

/// Whether a media type named in `Accept` (parameters dropped, trimmed) satisfies `matches`.
fn accepts<'a>(
    accept: impl Iterator<Item = &'a HeaderValue>,
    matches: impl Fn(&str) -> bool,
) -> bool {
    accept
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.split(';').next().is_some_and(|m| matches(m.trim())))
}

/// The login URL with this request as `next`.
pub(crate) fn login_location(rt: &Runtime, next: &str) -> String {
    format!(
        "{}/login?next={}",
        rt.prefix,
        utf8_percent_encode(next, NON_ALPHANUMERIC)
    )
}

/// The `WWW-Authenticate` value for this runtime's realm.
pub(crate) fn basic_challenge(rt: &Runtime) -> Option<HeaderValue> {
    if !rt.config.login.basic_auth {
        return None;
    }
    let realm: String = rt
        .config
        .login
        .realm
        .chars()
        .filter(|c| !c.is_control())
        .flat_map(|c| match c {
            '"' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    HeaderValue::from_str(&format!("Basic realm=\"{realm}\", charset=\"UTF-8\"")).ok()
}

/// A `401` with the Basic challenge.
pub(crate) fn unauthorized(rt: &Runtime) -> Response<Body> {
    let mut resp = plain_response(StatusCode::UNAUTHORIZED, "Unauthorized");
    if let Some(v) = basic_challenge(rt) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp
}

/// The challenge for an anonymous request.
pub(crate) fn challenge(rt: &Runtime, ctx: &RequestContext, headers: &HeaderMap) -> Response<Body> {
    if wants_html(headers) {
        let mut next = ctx.path.clone();
        if let Some(q) = &ctx.query {
            next.push('?');
            next.push_str(q);
        }
        let mut resp = plain_response(StatusCode::FOUND, "Found");
        if let Ok(v) = HeaderValue::from_str(&login_location(rt, &next)) {
            resp.headers_mut().insert(header::LOCATION, v);
        }
        return resp;
    }
    unauthorized(rt)
}

//! Cookies: the `Cookie` header parser the proxy and the session lookup share, and the
//! `Set-Cookie` values of the session, the pre-session CSRF and the single sign-on cookies.

use std::time::Duration;

use smallvec::SmallVec;

use super::manager::SessionManager;

/// Every distinct value of cookie `name` in `headers`, in the order sent. Read pair by pair
/// over the raw bytes: a tossed cookie with a non-ASCII value shares the browser's one `Cookie`
/// header with the genuine cookie and must not hide it (only that pair is skipped).
pub(crate) fn cookie_values<'h>(
    headers: &'h http::HeaderMap,
    name: &str,
) -> SmallVec<[&'h str; 2]> {
    let mut out: SmallVec<[&'h str; 2]> = SmallVec::new();
    for (pair, pair_name) in cookie_pairs(headers) {
        if pair_name != name.as_bytes() {
            continue;
        }
        let Some(eq) = pair.iter().position(|b| *b == b'=') else {
            continue;
        };
        let Ok(value) = std::str::from_utf8(pair[eq + 1..].trim_ascii()) else {
            continue;
        };
        if value.is_ascii() && !out.contains(&value) {
            out.push(value);
        }
    }
    out
}

/// Every `;`-separated pair of the `Cookie` headers, trimmed, with its name (the part before
/// `=`, trimmed; the whole pair when it has none). Read over the raw bytes, so a pair with
/// non-ASCII bytes is one pair like any other. Empty pairs are included, as empty.
pub(crate) fn cookie_pairs(headers: &http::HeaderMap) -> impl Iterator<Item = (&[u8], &[u8])> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b';'))
        .map(|pair| {
            let pair = pair.trim_ascii();
            let name = pair
                .split(|b| *b == b'=')
                .next()
                .unwrap_or(pair)
                .trim_ascii();
            (pair, name)
        })
}

impl SessionManager {
    /// The session cookie's name.
    pub fn cookie_name(&self) -> &str {
        &self.cookie_name
    }

    /// A `Set-Cookie` value carrying session cookie `value`: `HttpOnly`, `SameSite` per config,
    /// `Path=/`, host-only, `Max-Age` = `session.ttl`, and `Secure` when `secure` (the caller
    /// resolves `session.secure: auto` against `public_url`).
    pub fn set_cookie(&self, value: &str, secure: bool) -> http::HeaderValue {
        self.build_cookie(
            &self.cookie_name,
            value,
            secure,
            Some(Duration::from_millis(self.ttl_ms)),
        )
    }

    /// A `Set-Cookie` value that removes the session cookie (logout).
    pub fn clear_cookie(&self, secure: bool) -> http::HeaderValue {
        self.build_cookie(&self.cookie_name, "", secure, None)
    }

    /// Name of the pre-session (login form) CSRF cookie.
    pub fn csrf_cookie_name(&self) -> &str {
        &self.csrf_cookie_name
    }

    /// A `Set-Cookie` value carrying the pre-session CSRF cookie from
    /// [`pre_session_csrf`](Self::pre_session_csrf).
    pub fn set_csrf_cookie(&self, value: &str, secure: bool) -> http::HeaderValue {
        self.build_cookie(
            &self.csrf_cookie_name,
            value,
            secure,
            Some(Duration::from_millis(self.pre_csrf_ms)),
        )
    }

    /// A `Set-Cookie` value that removes the pre-session CSRF cookie (after login).
    pub fn clear_csrf_cookie(&self, secure: bool) -> http::HeaderValue {
        self.build_cookie(&self.csrf_cookie_name, "", secure, None)
    }

    fn build_cookie(
        &self,
        name: &str,
        value: &str,
        secure: bool,
        max_age: Option<Duration>,
    ) -> http::HeaderValue {
        let mut c = ::cookie::Cookie::build((name.to_string(), value.to_string()))
            .http_only(true)
            .secure(secure)
            .same_site(self.same_site)
            .path("/")
            .build();
        match max_age {
            Some(age) => c.set_max_age(::cookie::time::Duration::seconds(age.as_secs() as i64)),
            None => c.make_removal(),
        }
        // Names come from the config and values are base64url: always a valid header.
        http::HeaderValue::from_str(&c.to_string())
            .unwrap_or_else(|_| http::HeaderValue::from_static("invalid=; Max-Age=0"))
    }

    /// A `Set-Cookie` value for the single sign-on pre-login cookie `name` (holding a
    /// [`pre_session_csrf`](Self::pre_session_csrf) cookie and the login's entry and `next`):
    /// `SameSite=Lax` whatever `session.same_site` says, because the provider sends the browser
    /// back with a cross-site navigation, which a `Strict` cookie would not follow. Removed when
    /// `value` is `None`.
    pub fn sso_cookie(&self, name: &str, value: Option<&str>, secure: bool) -> http::HeaderValue {
        let mut c = ::cookie::Cookie::build((name.to_string(), value.unwrap_or("").to_string()))
            .http_only(true)
            .secure(secure)
            .same_site(::cookie::SameSite::Lax)
            .path("/")
            .build();
        match value {
            Some(_) => c.set_max_age(::cookie::time::Duration::seconds(
                (self.pre_csrf_ms / 1000) as i64,
            )),
            None => c.make_removal(),
        }
        http::HeaderValue::from_str(&c.to_string())
            .unwrap_or_else(|_| http::HeaderValue::from_static("invalid=; Max-Age=0"))
    }
}

//! Whether a browser request comes from our own site: the login CSRF defence on `POST login` and
//! `POST logout`, by the `Origin` header browsers attach to every POST (and `Referer` when a
//! browser or a privacy extension leaves `Origin` out).
//!
//! Allowed: our `public_url`'s origin, or an `http(s)` origin on a `login.allowed_redirect_hosts`
//! host (the same set [`super::validate_next`] lets a redirect reach). `Origin: null` (a sandboxed
//! frame, a `data:` page, some cross-origin redirects) is refused: nothing vouches for it.

use http::HeaderMap;
use http::header;
use url::Url;

use super::validate_next;

/// The verdict on a request's `Origin` / `Referer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SourceVerdict {
    /// `Origin` (or, without it, `Referer`) names an allowed origin.
    SameSite,
    /// Neither header: not a browser (`curl`, a script); the CSRF token still applies, and no
    /// browser today posts a form without `Origin`.
    Unknown,
    /// Another site, `null`, several values or an unreadable one: refuse.
    CrossSite,
}

/// Judges where a POST came from by its `Origin` header, or its `Referer` when `Origin` is
/// absent. The caller must refuse [`SourceVerdict::CrossSite`].
pub(crate) fn request_source(
    headers: &HeaderMap,
    public_url: &Url,
    allowed_hosts: &[String],
) -> SourceVerdict {
    let judge = |ok: bool| {
        if ok {
            SourceVerdict::SameSite
        } else {
            SourceVerdict::CrossSite
        }
    };
    let mut origins = headers.get_all(header::ORIGIN).iter();
    match (origins.next(), origins.next()) {
        (Some(origin), None) => {
            return judge(
                origin
                    .to_str()
                    .is_ok_and(|o| origin_allowed(o, public_url, allowed_hosts)),
            );
        }
        (Some(_), Some(_)) => return SourceVerdict::CrossSite,
        (None, _) => {}
    }
    let mut referers = headers.get_all(header::REFERER).iter();
    match (referers.next(), referers.next()) {
        (None, _) => SourceVerdict::Unknown,
        (Some(referer), None) => judge(
            referer
                .to_str()
                .ok()
                .and_then(referer_origin)
                .is_some_and(|o| origin_allowed(&o, public_url, allowed_hosts)),
        ),
        (Some(_), Some(_)) => SourceVerdict::CrossSite,
    }
}

/// Whether `origin` (`scheme://host[:port]`, as browsers send it in `Origin`) is our
/// `public_url`'s origin or an `http(s)` origin on one of `allowed_hosts`.
pub(super) fn origin_allowed(origin: &str, public_url: &Url, allowed_hosts: &[String]) -> bool {
    // An origin is `scheme://host[:port]`, nothing after it (`null` has no `://`).
    let authority = origin.split_once("://").map_or("", |(_, rest)| rest);
    if authority.is_empty() || authority.contains(['/', '?', '#', '@', '\\']) {
        return false;
    }
    validate_next(&format!("{origin}/"), public_url, allowed_hosts).is_some()
}

/// The origin of a `Referer` URL; `None` when it is not an `http(s)` URL or carries userinfo.
fn referer_origin(referer: &str) -> Option<String> {
    let url = Url::parse(referer).ok()?;
    if !matches!(url.scheme(), "http" | "https")
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return None;
    }
    Some(url.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn verdict(pairs: &[(&str, &str)]) -> SourceVerdict {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        let public = Url::parse("https://gw.example.org").unwrap();
        request_source(&h, &public, &["app.example.org".to_string()])
    }

    #[test]
    fn origin_decides_then_referer_then_unknown() {
        use SourceVerdict::*;
        assert_eq!(verdict(&[("origin", "https://gw.example.org")]), SameSite);
        assert_eq!(
            verdict(&[("origin", "https://GW.example.org:443")]),
            SameSite
        );
        assert_eq!(verdict(&[("origin", "https://app.example.org")]), SameSite);
        for bad in [
            "https://evil.example",
            "null",
            "http://gw.example.org",
            "https://gw.example.org.evil.example",
            "https://gw.example.org/x",
            "https://x@gw.example.org",
            "gw.example.org",
            "",
        ] {
            assert_eq!(verdict(&[("origin", bad)]), CrossSite, "{bad:?}");
        }
        // Origin wins over a good Referer.
        assert_eq!(
            verdict(&[
                ("origin", "https://evil.example"),
                ("referer", "https://gw.example.org/_auth/login")
            ]),
            CrossSite
        );
        assert_eq!(
            verdict(&[
                ("origin", "https://gw.example.org"),
                ("origin", "https://gw.example.org")
            ]),
            CrossSite
        );
        assert_eq!(
            verdict(&[("referer", "https://gw.example.org/_auth/login?next=/")]),
            SameSite
        );
        assert_eq!(
            verdict(&[("referer", "https://evil.example/https://gw.example.org/")]),
            CrossSite
        );
        assert_eq!(verdict(&[("referer", "about:blank")]), CrossSite);
        assert_eq!(verdict(&[]), Unknown);
    }
}

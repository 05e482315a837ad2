//! Validation of the `next` target a user is sent to after logging in (open-redirect defence).
//!
//! The only inputs are the raw `next` value, our configured public origin and the operator's
//! allow-list: the request's `Host` or `X-Forwarded-Host` can never widen what is accepted.

use percent_encoding::percent_decode_str;
use url::{Position, Url};

/// Longest `next` accepted, in bytes; longer values are refused rather than truncated.
pub(super) const MAX_NEXT_LEN: usize = 4096;

/// How many rounds of percent-decoding are inspected for smuggled characters; a value still
/// changing after that many rounds is refused.
const DECODE_ROUNDS: usize = 4;

/// Returns the target to redirect to after login, or `None` when `next` is unsafe or unusable
/// (the caller then redirects to `/`).
///
/// Accepted: a path-absolute local reference (`/app?x=1#frag`), returned normalized and
/// percent-encoded as a path-absolute string; or an absolute `http`/`https` URL whose host,
/// after `url` parsing and IDNA normalization, is exactly our `public_url`'s origin (same scheme,
/// host and port) or one of `allowed_hosts` (each `host` or `host:port`, see
/// [`normalize_allowed_host`]), returned in its serialized form.
///
/// Refused: scheme-relative (`//evil`), backslashes and control characters anywhere (raw or
/// percent-encoded, through several rounds of decoding), other schemes (`javascript:`, `data:`),
/// userinfo, hosts that only resemble ours (look-alike subdomains, punycode, non-ASCII forms),
/// and anything longer than [`MAX_NEXT_LEN`].
pub(crate) fn validate_next(
    next: &str,
    public_url: &Url,
    allowed_hosts: &[String],
) -> Option<String> {
    if next.is_empty() || next.len() > MAX_NEXT_LEN || !layers_are_clean(next) {
        return None;
    }
    if next.starts_with('/') {
        return local_target(next, public_url);
    }
    absolute_target(next, public_url, allowed_hosts)
}

/// Normalizes one `login.allowed_redirect_hosts` entry (`host` or `host:port`) the way
/// [`validate_next`] compares hosts: lower-case, IDNA to punycode. Config loading should call it
/// and refuse the file when it returns an error, so a typo does not silently allow nothing.
pub(crate) fn normalize_allowed_host(entry: &str) -> Result<String, InvalidAllowedHost> {
    let invalid = || InvalidAllowedHost {
        entry: entry.to_string(),
    };
    if entry.is_empty()
        || entry
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || "/\\@?#".contains(c))
    {
        return Err(invalid());
    }
    let url = Url::parse(&format!("http://{entry}/")).map_err(|_| invalid())?;
    let host = url.host_str().ok_or_else(invalid)?;
    Ok(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    })
}

/// An `allowed_redirect_hosts` entry that is not a plain `host` or `host:port`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid allowed redirect host `{entry}`; expected a host name or `host:port`")]
pub(crate) struct InvalidAllowedHost {
    entry: String,
}

/// True when neither `raw` nor any of its percent-decoded forms holds a control character, a
/// backslash, or (for local paths) a leading `//`.
fn layers_are_clean(raw: &str) -> bool {
    let mut layer = raw.to_string();
    for round in 0..=DECODE_ROUNDS {
        if layer.chars().any(|c| is_invisible(c) || c == '\\') {
            return false;
        }
        // A path whose decoded form becomes scheme-relative is refused: some upstream apps
        // decode the path before building their own redirects.
        if raw.starts_with('/') && (layer.starts_with("//") || layer.starts_with("/\\")) {
            return false;
        }
        let decoded = percent_decode_str(&layer).decode_utf8_lossy().into_owned();
        if decoded == layer {
            return true;
        }
        if round == DECODE_ROUNDS {
            return false;
        }
        layer = decoded;
    }
    false
}

/// Control characters, and the Unicode separators and format characters that render as nothing
/// or reorder text, so a target cannot hide what it is.
fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2069}'
                | '\u{FEFF}'
        )
}

fn local_target(next: &str, public_url: &Url) -> Option<String> {
    let second = next[1..].chars().next();
    if matches!(second, Some('/') | Some('\\')) {
        return None;
    }
    let joined = public_url.join(next).ok()?;
    if joined.origin() != public_url.origin() {
        return None;
    }
    let target = &joined[Position::BeforePath..];
    // Dot segments can collapse to `//host` after normalization (`/.//evil.com`).
    if !target.starts_with('/') || target.starts_with("//") {
        return None;
    }
    Some(target.to_string())
}

fn absolute_target(next: &str, public_url: &Url, allowed_hosts: &[String]) -> Option<String> {
    let lower = next.get(..8)?.to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &next[8..]
    } else if lower.starts_with("http://") {
        &next[7..]
    } else {
        return None;
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    // A host written with non-ASCII or percent-escapes may normalize to ours while looking like
    // something else to a person (or the reverse); only plain ASCII hosts are accepted.
    if authority.is_empty()
        || !authority.is_ascii()
        || authority.contains(['@', '%', ' '])
        || rest[authority_end..].starts_with("//")
    {
        return None;
    }
    let url = Url::parse(next).ok()?;
    if !matches!(url.scheme(), "http" | "https")
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return None;
    }
    let host = url.host_str()?;
    if url.origin() == public_url.origin() {
        return Some(url.to_string());
    }
    // An allowed host is never reached by a downgrade from an HTTPS origin.
    if public_url.scheme() == "https" && url.scheme() != "https" {
        return None;
    }
    let with_port = url.port().map(|p| format!("{host}:{p}"));
    let allowed = allowed_hosts.iter().any(|entry| {
        normalize_allowed_host(entry).is_ok_and(|entry| {
            if entry.contains(':') && !entry.ends_with(']') {
                let explicit = url.port_or_known_default().map(|p| format!("{host}:{p}"));
                Some(&entry) == with_port.as_ref() || Some(&entry) == explicit.as_ref()
            } else {
                entry == host
            }
        })
    });
    allowed.then(|| url.to_string())
}

#[cfg(test)]
mod tests {
    // Open-redirect defence: `validate_next` against attack and legitimate targets.

    use super::MAX_NEXT_LEN;
    use crate::login::{normalize_allowed_host, validate_next};
    use url::Url;

    fn public() -> Url {
        Url::parse("https://example.org").expect("valid url")
    }

    fn allowed() -> Vec<String> {
        vec![
            "docs.example.org".to_string(),
            "partner.example.net:8443".to_string(),
        ]
    }

    /// (input, expected output; `None` means refused).
    const CASES: &[(&str, Option<&str>)] = &[
        // Legitimate local targets.
        ("/", Some("/")),
        ("/app", Some("/app")),
        ("/app?x=1#frag", Some("/app?x=1#frag")),
        (
            "/app/dashboard?tab=users&sort=desc",
            Some("/app/dashboard?tab=users&sort=desc"),
        ),
        ("/docs/a%2Fb", Some("/docs/a%2Fb")),
        ("/a/b/../c", Some("/a/c")),
        ("/search?q=a b", Some("/search?q=a%20b")),
        ("/café", Some("/caf%C3%A9")),
        ("/user/@me", Some("/user/@me")),
        ("/path;jsessionid=1", Some("/path;jsessionid=1")),
        // Legitimate absolute targets: our origin, allowed hosts.
        (
            "https://example.org/app?x=1",
            Some("https://example.org/app?x=1"),
        ),
        ("https://EXAMPLE.org/app", Some("https://example.org/app")),
        ("https://example.org:443/", Some("https://example.org/")),
        (
            "https://docs.example.org/guide",
            Some("https://docs.example.org/guide"),
        ),
        (
            "https://partner.example.net:8443/x",
            Some("https://partner.example.net:8443/x"),
        ),
        // Scheme-relative and slash tricks.
        ("//evil.com", None),
        ("//evil.com/path", None),
        ("///evil.com", None),
        ("/\\evil.com", None),
        ("\\/evil.com", None),
        ("\\\\evil.com", None),
        ("/app\\..\\..\\evil", None),
        ("/.//evil.com", None),
        ("/a/..//evil.com", None),
        // Encoded variants.
        ("%2f%2fevil.com", None),
        ("/%2f%2fevil.com", None),
        ("/%2F/evil.com", None),
        ("/%5cevil.com", None),
        ("/%255cevil.com", None),
        ("/%252f%252fevil.com", None),
        ("/%25252525252f%2f", None),
        // Control characters, raw and encoded.
        ("/app\ttab", None),
        ("/app\nSet-Cookie:x=1", None),
        ("/app\r\nLocation: https://evil.com", None),
        ("/app\0", None),
        ("/app%0d%0aSet-Cookie:x=1", None),
        ("/app%00", None),
        ("/app%09", None),
        ("/\u{7f}", None),
        ("/app\u{202e}gpj.exe", None),
        ("\t//evil.com", None),
        (" //evil.com", None),
        ("/ /evil.com", Some("/%20/evil.com")),
        // Other schemes.
        ("javascript:alert(1)", None),
        ("JaVaScRiPt:alert(1)", None),
        ("java\tscript:alert(1)", None),
        ("data:text/html,<script>alert(1)</script>", None),
        ("vbscript:msgbox(1)", None),
        ("ftp://example.org/", None),
        ("file:///etc/passwd", None),
        ("http:evil.com", None),
        ("https:/evil.com", None),
        ("https:///evil.com", None),
        // Userinfo.
        ("https://example.org@evil.com/", None),
        ("https://evil.com@example.org/", None),
        ("https://user:pass@example.org/", None),
        ("https://example.org%40evil.com/", None),
        // Look-alike hosts.
        ("https://evil.com/", None),
        ("https://evil-example.org/", None),
        ("https://example.org.evil.com/", None),
        ("https://notexample.org/", None),
        ("https://example.org./", None),
        ("https://sub.example.org/", None),
        ("https://docs.example.org.evil.com/", None),
        ("https://partner.example.net/x", None),
        ("https://partner.example.net:9443/x", None),
        // IDNA, punycode, full-width forms.
        ("https://ex\u{0430}mple.org/", None),
        ("https://xn--exmple-4nf.org/", None),
        (
            "https://\u{ff45}\u{ff58}\u{ff41}\u{ff4d}\u{ff50}\u{ff4c}\u{ff45}.org/",
            None,
        ),
        ("https://example\u{3002}org/", None),
        ("https://example\u{ff0e}org.evil.com/", None),
        ("\u{ff0f}\u{ff0f}evil.com", None),
        ("/\u{ff0f}evil.com", Some("/%EF%BC%8Fevil.com")),
        // Ports and downgrades.
        ("https://example.org:8443/", None),
        ("http://example.org/", None),
        ("http://docs.example.org/", None),
        // Empty and relative.
        ("", None),
        ("app", None),
        ("./app", None),
        ("?x=1", None),
        ("#frag", None),
    ];

    #[test]
    fn validate_next_table() {
        assert!(CASES.len() >= 40, "the table should stay thorough");
        let public = public();
        let allowed = allowed();
        let mut failures = Vec::new();
        for (input, expected) in CASES {
            let got = validate_next(input, &public, &allowed);
            if got.as_deref() != *expected {
                failures.push(format!("{input:?}: expected {expected:?}, got {got:?}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn accepted_targets_never_leave_our_origin_or_allow_list() {
        let public = public();
        let allowed = allowed();
        for (input, _) in CASES {
            let Some(target) = validate_next(input, &public, &allowed) else {
                continue;
            };
            if target.starts_with('/') {
                assert!(!target.starts_with("//"), "{input:?} -> {target:?}");
                let resolved = public.join(&target).expect("resolvable");
                assert_eq!(
                    resolved.origin(),
                    public.origin(),
                    "{input:?} -> {target:?}"
                );
            } else {
                let url = Url::parse(&target).expect("absolute");
                let host = url.host_str().expect("host");
                assert!(
                    host == "example.org"
                        || host == "docs.example.org"
                        || host == "partner.example.net",
                    "{input:?} -> {target:?}"
                );
            }
            assert!(
                target.is_ascii(),
                "{input:?} -> {target:?} must be header-safe"
            );
        }
    }

    #[test]
    fn over_long_next_is_refused_not_truncated() {
        let public = public();
        let at_limit = format!("/{}", "a".repeat(MAX_NEXT_LEN - 1));
        assert_eq!(
            validate_next(&at_limit, &public, &[]).as_deref(),
            Some(at_limit.as_str())
        );
        let over = format!("/{}", "a".repeat(MAX_NEXT_LEN));
        assert_eq!(validate_next(&over, &public, &[]), None);
    }

    #[test]
    fn plain_http_origin_with_port() {
        let public = Url::parse("http://127.0.0.1:8080").expect("valid url");
        assert_eq!(
            validate_next("http://127.0.0.1:8080/app", &public, &[]).as_deref(),
            Some("http://127.0.0.1:8080/app")
        );
        assert_eq!(
            validate_next("http://127.0.0.1:8081/app", &public, &[]),
            None
        );
        assert_eq!(
            validate_next("http://localhost:8080/app", &public, &[]),
            None
        );
        assert_eq!(validate_next("/app", &public, &[]).as_deref(), Some("/app"));
    }

    #[test]
    fn allow_list_entries_are_normalized_like_targets() {
        assert_eq!(
            normalize_allowed_host("Docs.Example.ORG").as_deref(),
            Ok("docs.example.org")
        );
        assert_eq!(
            normalize_allowed_host("bücher.example").as_deref(),
            Ok("xn--bcher-kva.example")
        );
        assert_eq!(
            normalize_allowed_host("h.example:8443").as_deref(),
            Ok("h.example:8443")
        );
        for bad in [
            "",
            "evil.com/path",
            "user@evil.com",
            "a b",
            "https://x",
            "h:99999",
        ] {
            assert!(
                normalize_allowed_host(bad).is_err(),
                "{bad:?} should be refused"
            );
        }
        // An upper-case / IDN entry matches its normalized target.
        let public = public();
        let allowed = vec!["Bücher.Example".to_string()];
        assert_eq!(
            validate_next("https://xn--bcher-kva.example/", &public, &allowed).as_deref(),
            Some("https://xn--bcher-kva.example/")
        );
    }
}

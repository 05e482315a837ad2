//! Phase 2, **route**: the normalized path and the access rule that applies to it.
//!
//! Path normalization (done once; the normalized path is both the one matched and the one
//! forwarded, so the gateway and the upstream never disagree about which resource is asked for):
//! - percent-escapes of unreserved characters (`A-Z a-z 0-9 - . _ ~`) are decoded, every other
//!   escape is kept with upper-case hex;
//! - refused with 400: a path that is not origin-form (`/...`), a bad escape (`%zz`, `%4`), an
//!   encoded `/` (`%2F`), `\` raw or encoded (`%5C`), NUL and other control characters raw or
//!   encoded (`%00`-`%1F`, `%7F`), raw spaces and non-ASCII bytes, dot segments `.` / `..` raw or encoded (`%2E`), `;`, double
//!   encoding (`%25` followed by two hex digits in the normalized segment, so `%25%32%65`, which
//!   normalizes to `%252e`, is caught too) and escapes that are not UTF-8 (overlong `%c0%ae`).
//!   `;` is refused rather than matched literally because servlet containers strip `;params`
//!   from segments before routing: `/admin;x=1/` would miss an `/admin` rule here and reach
//!   `/admin/` upstream;
//! - empty segments are collapsed (`//a///b` -> `/a/b`); a trailing `/` is kept.
//!
//! Matching: the first rule whose host (case-insensitive, port and a trailing `.` ignored), path prefix
//! (segment-aware: `/admin` and `/admin/` match `/admin` and `/admin/x`, never `/administrator`),
//! optional regex and methods all match. No rule matches -> `authenticated`. A rule without
//! `methods` applies to every method, so HEAD/OPTIONS/unknown methods get the same decision as GET.
//! Methods are compared case-insensitively (`post` meets a `POST` rule). A rule listing `GET` also matches `HEAD` (the same resource without its body), so a `HEAD`
//! can never slip past a GET-only restriction to a laxer rule below it.
//!
//! Paths are matched case-sensitively by default: `/ADMIN` does not meet an `/admin` rule. Behind
//! a case-insensitive upstream (IIS, Windows file systems) that would let `/ADMIN`, `/admin.` or
//! `/admin%20` reach what `/admin` protects, so `route_matching.case_insensitive: true` matches
//! prefixes and regexes with ASCII case folding and refuses segments ending in `.` or a space
//! (`%20`), which Windows strips. The path is still forwarded as sent (only normalized), so the
//! decision and the upstream designate the same resource.

use std::fmt;

use regex::{Regex, RegexBuilder};

use crate::config::{Access, RouteConfig, RouteMatchingConfig};

/// Why a path was refused (always a client error, 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PathError {
    /// Not origin-form.
    #[error("path must start with `/`")]
    NotOriginForm,
    /// `%` not followed by two hex digits.
    #[error("bad percent-escape")]
    BadEscape,
    /// `%2F`, `\`, `%5C`.
    #[error("encoded slash or backslash")]
    Separator,
    /// NUL, another control character, a space or a raw non-ASCII byte.
    #[error("control, space or non-ASCII character")]
    Control,
    /// `.` or `..` segment.
    #[error("dot segment")]
    DotSegment,
    /// `;` path parameter.
    #[error("path parameter")]
    PathParameter,
    /// `%25` followed by two hex digits: an upstream decoding once more would see an escape
    /// the gateway never matched on (`%252e%252e` -> `%2e%2e` -> `..`).
    #[error("double percent-encoding")]
    DoubleEncoding,
    /// Escapes that do not decode to UTF-8 (overlong forms such as `%c0%ae` for `.`).
    #[error("percent-escapes are not UTF-8")]
    InvalidUtf8,
    /// A segment ending in `.` or a space, which Windows strips (`/admin.` is `/admin` there);
    /// refused only with `route_matching.case_insensitive`.
    #[error("segment ends in a dot or a space")]
    TrailingDotOrSpace,
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Normalizes a request path (without the query). See the module doc for the rules.
pub(crate) fn normalize_path(raw: &str) -> Result<String, PathError> {
    if already_normal(raw.as_bytes()) {
        return Ok(raw.to_string());
    }
    normalize_slow(raw)
}

/// Whether `raw` is its own normal form: it starts with `/` and has no escape, `\\`, `;`,
/// control, space or non-ASCII byte, no empty segment but a trailing one, and no dot segment.
/// Most request paths are; [`normalize_slow`] gives them back unchanged (a test checks).
fn already_normal(raw: &[u8]) -> bool {
    if raw.first() != Some(&b'/') {
        return false;
    }
    let mut segment_start = 1;
    for (i, &b) in raw.iter().enumerate().skip(1) {
        match b {
            b'/' => {
                let segment = &raw[segment_start..i];
                if segment.is_empty() || segment == b"." || segment == b".." {
                    return false;
                }
                segment_start = i + 1;
            }
            b'%' | b'\\' | b';' | 0..=0x20 | 0x7f..=0xff => return false,
            _ => {}
        }
    }
    let last = &raw[segment_start..];
    last != b"." && last != b".."
}

/// The full normalization (percent-decoding, `//` collapsing, refusals).
pub(crate) fn normalize_slow(raw: &str) -> Result<String, PathError> {
    let bytes = raw.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(PathError::NotOriginForm);
    }
    let mut segments: Vec<String> = Vec::new();
    for segment in raw.split('/').skip(1) {
        let mut out = String::with_capacity(segment.len());
        let sb = segment.as_bytes();
        let mut i = 0;
        while i < sb.len() {
            let b = sb[i];
            match b {
                b'%' => {
                    let (Some(h), Some(l)) = (
                        sb.get(i + 1).copied().and_then(hex),
                        sb.get(i + 2).copied().and_then(hex),
                    ) else {
                        return Err(PathError::BadEscape);
                    };
                    let decoded = h * 16 + l;
                    match decoded {
                        b'/' | b'\\' => return Err(PathError::Separator),
                        0..=0x1f | 0x7f => return Err(PathError::Control),
                        b';' => return Err(PathError::PathParameter),
                        d if is_unreserved(d) => out.push(d as char),
                        d => out.push_str(&format!("%{d:02X}")),
                    }
                    i += 3;
                }
                b'\\' => return Err(PathError::Separator),
                b';' => return Err(PathError::PathParameter),
                0..=0x20 | 0x7f..=0xff => return Err(PathError::Control),
                _ => {
                    out.push(b as char);
                    i += 1;
                }
            }
        }
        if out == "." || out == ".." {
            return Err(PathError::DotSegment);
        }
        // Checked on the output, not the input: `%25%32%65` has no `%25` followed by two hex
        // digits, yet normalizes (unreserved escapes decoded) to `%252e`.
        if out
            .as_bytes()
            .windows(5)
            .any(|w| w.starts_with(b"%25") && hex(w[3]).is_some() && hex(w[4]).is_some())
        {
            return Err(PathError::DoubleEncoding);
        }
        if out.contains('%')
            && percent_encoding::percent_decode_str(&out)
                .decode_utf8()
                .is_err()
        {
            return Err(PathError::InvalidUtf8);
        }
        segments.push(out);
    }
    let trailing = segments.last().is_some_and(|s| s.is_empty());
    segments.retain(|s| !s.is_empty());
    let mut path = String::with_capacity(raw.len());
    for s in &segments {
        path.push('/');
        path.push_str(s);
    }
    if trailing || segments.is_empty() {
        path.push('/');
    }
    Ok(path)
}

/// One compiled route.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    host: Option<String>,
    prefix: Option<String>,
    regex: Option<Regex>,
    methods: Vec<String>,
    /// Who may reach it.
    pub(crate) access: Access,
}

/// A route's configuration could not be compiled. Routes are numbered from 1, as
/// `authgate check` lists them and the access log names them.
#[derive(Debug, thiserror::Error)]
#[error("route {}: {message}", index + 1)]
pub(crate) struct RouteError {
    /// Index in `routes:` (from 0).
    index: usize,
    message: String,
}

/// The decision of the route phase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RouteDecision {
    /// Index of the matching rule in `routes:`; `None` for the implicit default.
    pub(crate) index: Option<usize>,
    /// What applies.
    pub(crate) access: Access,
}

/// The rule's number counted from 1 (as `authgate check` lists them), or `default`.
impl fmt::Display for RouteDecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.index {
            Some(i) => write!(f, "{}", i + 1),
            None => f.write_str("default"),
        }
    }
}

/// The ordered, compiled routes of one config version.
#[derive(Debug, Clone, Default)]
pub(crate) struct RouteTable {
    routes: Vec<Route>,
    /// `route_matching.case_insensitive`: prefixes are stored lower-cased, regexes compiled
    /// case-insensitive, and request paths folded before matching.
    case_insensitive: bool,
}

fn host_without_port(host: &str) -> &str {
    if host.starts_with('[') {
        return match host.find(']') {
            Some(end) => &host[..=end],
            None => host,
        };
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

impl RouteTable {
    /// Compiles `routes:` with the default (case-sensitive) matching.
    pub(crate) fn compile(routes: &[RouteConfig]) -> Result<RouteTable, RouteError> {
        RouteTable::compile_with(routes, &RouteMatchingConfig::default())
    }

    /// Compiles `routes:` for `matching`. Prefixes are normalized like request paths.
    pub(crate) fn compile_with(
        routes: &[RouteConfig],
        matching: &RouteMatchingConfig,
    ) -> Result<RouteTable, RouteError> {
        let folded = matching.case_insensitive;
        let mut out = Vec::with_capacity(routes.len());
        for (index, r) in routes.iter().enumerate() {
            let err = |message: String| RouteError { index, message };
            let prefix = match &r.matcher.path {
                Some(p) => {
                    let n = normalize_path(&p.value)
                        .map_err(|e| err(format!("path `{}`: {e}", p.value)))?;
                    let n = n.trim_end_matches('/');
                    Some(if folded {
                        n.to_ascii_lowercase()
                    } else {
                        n.to_string()
                    })
                }
                None => None,
            };
            let regex = match &r.matcher.path_regex {
                Some(re) => Some(
                    RegexBuilder::new(&re.value)
                        .case_insensitive(folded)
                        .build()
                        .map_err(|e| err(format!("path_regex `{}`: {e}", re.value)))?,
                ),
                None => None,
            };
            out.push(Route {
                host: r.matcher.host.as_deref().map(|h| {
                    host_without_port(h)
                        .trim_end_matches('.')
                        .to_ascii_lowercase()
                }),
                prefix,
                regex,
                methods: r
                    .matcher
                    .methods
                    .iter()
                    .map(|m| match m.get() {
                        Some(m) => Ok(m.as_str().to_ascii_uppercase()),
                        None => Err(err(format!("method `{m}` is not an HTTP method"))),
                    })
                    .collect::<Result<_, _>>()?,
                access: r.access.value.clone(),
            });
        }
        Ok(RouteTable {
            routes: out,
            case_insensitive: folded,
        })
    }

    /// Normalizes a request path ([`normalize_path`]) and, with case-insensitive matching,
    /// refuses segments ending in `.` or a space: the path to match and to forward.
    pub(crate) fn normalize(&self, raw: &str) -> Result<String, PathError> {
        let path = normalize_path(raw)?;
        if self.case_insensitive
            && path
                .split('/')
                .any(|seg| seg.ends_with('.') || seg.ends_with("%20"))
        {
            return Err(PathError::TrailingDotOrSpace);
        }
        Ok(path)
    }

    /// The decision for a request to `host` (may carry a port; `None` when the request had no
    /// host) with `method` and the normalized `path`.
    pub(crate) fn decide(&self, host: Option<&str>, method: &str, path: &str) -> RouteDecision {
        // `api.example.org.` is the same name as `api.example.org` to DNS and to most virtual
        // hosts upstream: it must meet the same rule.
        let host = host.map(|h| host_without_port(h).trim_end_matches('.'));
        let folded;
        let path = if self.case_insensitive {
            folded = path.to_ascii_lowercase();
            folded.as_str()
        } else {
            path
        };
        for (index, r) in self.routes.iter().enumerate() {
            // Hosts (stored lower-cased) compare without case.
            if let Some(want) = &r.host
                && !host.is_some_and(|h| h.eq_ignore_ascii_case(want))
            {
                continue;
            }
            if let Some(prefix) = &r.prefix
                && !path_has_prefix(path, prefix)
            {
                continue;
            }
            if let Some(re) = &r.regex
                && !re.is_match(path)
            {
                continue;
            }
            if !r.methods.is_empty()
                && !r.methods.iter().any(|m| {
                    // Methods are case-sensitive on the wire, but some upstreams (Django
                    // among them) upper-case them: `post` must meet the rules written for
                    // `POST` (stored upper-cased).
                    m.eq_ignore_ascii_case(method)
                        || (method.eq_ignore_ascii_case("HEAD") && m == "GET")
                })
            {
                continue;
            }
            return RouteDecision {
                index: Some(index),
                access: r.access.clone(),
            };
        }
        RouteDecision {
            index: None,
            access: Access::Authenticated,
        }
    }
}

/// Segment-aware prefix test; `prefix` has no trailing `/` (`""` is the root).
pub(crate) fn path_has_prefix(path: &str, prefix: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast path answers exactly as the full normalization would: every string of up to
    /// six characters over an alphabet of the characters that matter.
    #[test]
    fn the_fast_path_agrees_with_the_full_normalization() {
        let alphabet = [b'/', b'a', b'.', b'%', b'2', b'e', b';', b'\\', b' '];
        let mut fast = 0;
        for len in 1..=6u32 {
            for mut n in 0..alphabet.len().pow(len) {
                let mut raw = Vec::with_capacity(len as usize);
                for _ in 0..len {
                    raw.push(alphabet[n % alphabet.len()]);
                    n /= alphabet.len();
                }
                let raw = std::str::from_utf8(&raw).unwrap();
                if already_normal(raw.as_bytes()) {
                    fast += 1;
                    assert_eq!(normalize_slow(raw).as_deref(), Ok(raw), "{raw:?}");
                }
                assert_eq!(normalize_path(raw), normalize_slow(raw), "{raw:?}");
            }
        }
        assert!(fast > 1000, "the fast path took only {fast} inputs");
    }

    #[test]
    fn normalizes_unreserved_escapes_and_slashes() {
        assert_eq!(normalize_path("/").unwrap(), "/");
        assert_eq!(normalize_path("//a///b").unwrap(), "/a/b");
        assert_eq!(normalize_path("/a/b/").unwrap(), "/a/b/");
        assert_eq!(normalize_path("/%61dmin").unwrap(), "/admin");
        assert_eq!(normalize_path("/a%20b%c3%a9").unwrap(), "/a%20b%C3%A9");
        assert_eq!(normalize_path("/a%7e").unwrap(), "/a~");
    }

    #[test]
    fn refuses_ambiguous_paths() {
        for (p, e) in [
            ("admin", PathError::NotOriginForm),
            ("*", PathError::NotOriginForm),
            ("/a%2fb", PathError::Separator),
            ("/a%2Fb", PathError::Separator),
            ("/a%5cb", PathError::Separator),
            ("/a\\b", PathError::Separator),
            ("/a%00", PathError::Control),
            ("/a%0a", PathError::Control),
            ("/a%7f", PathError::Control),
            ("/a/../admin", PathError::DotSegment),
            ("/a/./b", PathError::DotSegment),
            ("/a/%2e%2e/admin", PathError::DotSegment),
            ("/a/.%2E/admin", PathError::DotSegment),
            ("/%2e/admin", PathError::DotSegment),
            ("/..", PathError::DotSegment),
            ("/admin;x=1/", PathError::PathParameter),
            ("/admin%3b/", PathError::PathParameter),
            ("/a%zz", PathError::BadEscape),
            ("/a%4", PathError::BadEscape),
            ("/a/%252e%252e/admin", PathError::DoubleEncoding),
            ("/a%255c", PathError::DoubleEncoding),
            ("/a%25252e", PathError::DoubleEncoding),
            // split so that only the normalized path shows it
            ("/a/%25%32%65%25%32%65/admin", PathError::DoubleEncoding),
            ("/%25A%45", PathError::DoubleEncoding),
            ("/a%25%35c", PathError::DoubleEncoding),
            ("/a/%c0%ae%c0%ae/admin", PathError::InvalidUtf8),
            ("/a%ff", PathError::InvalidUtf8),
        ] {
            assert_eq!(normalize_path(p), Err(e), "{p}");
        }
        assert_eq!(normalize_path("/a/...").unwrap(), "/a/...");
    }

    proptest::proptest! {
        #[test]
        fn normalization_is_idempotent_and_unambiguous(
            raw in "/[a-zA-Z0-9%./;_~\\\\-]{0,40}"
        ) {
            if let Ok(n) = normalize_path(&raw) {
                proptest::prop_assert_eq!(normalize_path(&n), Ok(n.clone()));
                proptest::prop_assert!(!n.contains("//"));
                proptest::prop_assert!(!n.contains('\\') && !n.contains(';'));
                for seg in n.split('/') {
                    proptest::prop_assert!(seg != "." && seg != "..");
                }
                let lower = n.to_ascii_lowercase();
                for bad in ["%2f", "%5c", "%00", "%2e", "%3b"] {
                    proptest::prop_assert!(!lower.contains(bad), "{} in {}", bad, n);
                }
            }
        }

        #[test]
        fn prefix_matching_respects_segments(
            prefix in "(/[a-z]{1,4}){1,3}",
            rest in "[a-z/]{0,8}"
        ) {
            let path = format!("{prefix}{rest}");
            let matched = path_has_prefix(&path, &prefix);
            let expected = rest.is_empty() || rest.starts_with('/');
            proptest::prop_assert_eq!(matched, expected);
        }
    }

    fn table(yaml: &str) -> RouteTable {
        let routes: Vec<RouteConfig> = serde_saphyr::from_str(yaml).unwrap();
        RouteTable::compile(&routes).unwrap()
    }

    #[test]
    fn prefixes_are_segment_aware_and_first_match_wins() {
        let t = table(
            "- match: { path: /admin }\n  access: deny\n\
             - match: { path: /static/ }\n  access: public\n\
             - match: { host: API.example.org:443, path: / }\n  access: { users: [svc] }\n\
             - match: { path: /w, methods: [post] }\n  access: { groups: [writers] }\n",
        );
        let d = |h: Option<&str>, m: &str, p: &str| t.decide(h, m, p);
        assert_eq!(d(None, "GET", "/admin").access, Access::Deny);
        assert_eq!(d(None, "GET", "/admin/x").access, Access::Deny);
        assert_eq!(
            d(None, "GET", "/administrator").access,
            Access::Authenticated
        );
        assert_eq!(d(None, "GET", "/administrator").index, None);
        assert_eq!(d(None, "HEAD", "/static").access, Access::Public);
        assert_eq!(d(None, "GET", "/staticx").access, Access::Authenticated);
        assert_eq!(
            d(Some("api.EXAMPLE.org:8080"), "GET", "/x").access,
            Access::Users(vec!["svc".into()])
        );
        assert_eq!(d(Some("other"), "GET", "/x").access, Access::Authenticated);
        assert_eq!(
            d(None, "POST", "/w/1").access,
            Access::Groups(vec!["writers".into()])
        );
        assert_eq!(d(None, "GET", "/w/1").access, Access::Authenticated);
        let g = table("- match: { path: /r, methods: [GET] }\n  access: deny\n");
        assert_eq!(g.decide(None, "HEAD", "/r").access, Access::Deny);
        assert_eq!(g.decide(None, "POST", "/r").access, Access::Authenticated);
        assert_eq!(d(None, "GET", "/admin").index, Some(0));
    }

    #[test]
    fn case_insensitive_matching_folds_ascii_and_refuses_trailing_dots() {
        let yaml = "- match: { path: /Admin }\n  access: deny\n\
                    - match: { path_regex: '^/api/V[0-9]+/' }\n  access: public\n";
        let routes: Vec<RouteConfig> = serde_saphyr::from_str(yaml).unwrap();
        let sensitive = RouteTable::compile(&routes).unwrap();
        let folded = RouteTable::compile_with(
            &routes,
            &RouteMatchingConfig {
                case_insensitive: true,
            },
        )
        .unwrap();
        for p in ["/admin", "/ADMIN/x", "/aDmIn/"] {
            assert_eq!(folded.decide(None, "GET", p).access, Access::Deny, "{p}");
            assert_eq!(sensitive.decide(None, "GET", p).index, None, "{p}");
        }
        assert_eq!(sensitive.decide(None, "GET", "/Admin").access, Access::Deny);
        assert_eq!(
            folded.decide(None, "GET", "/API/v2/x").access,
            Access::Public
        );
        assert_eq!(folded.decide(None, "GET", "/administrator").index, None);
        for p in ["/admin.", "/admin%20", "/a./b", "/admin%2e", "/admin/x%20/"] {
            assert_eq!(
                folded.normalize(p),
                Err(PathError::TrailingDotOrSpace),
                "{p}"
            );
            assert!(sensitive.normalize(p).is_ok(), "{p}");
        }
        // Forwarded as sent: normalization never changes the case.
        assert_eq!(folded.normalize("/%41dmin/X").unwrap(), "/Admin/X");
        assert_eq!(folded.normalize("/a.b/c%20d").unwrap(), "/a.b/c%20d");
    }
}

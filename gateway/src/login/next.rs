//! Validation of the `next` target a user is sent to after logging in (open-redirect defence).
//!
//! The only inputs are the raw `next` value, our configured public origin and the operator's
//! allow-list: the request's `Host` or `X-Forwarded-Host` can never widen what is accepted.

use percent_encoding::percent_decode_str;
use url::{Position, Url};

/// Longest `next` accepted, in bytes; longer values are refused rather than truncated.
pub const MAX_NEXT_LEN: usize = 4096;

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
pub fn validate_next(next: &str, public_url: &Url, allowed_hosts: &[String]) -> Option<String> {
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
pub fn normalize_allowed_host(entry: &str) -> Result<String, InvalidAllowedHost> {
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
pub struct InvalidAllowedHost {
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

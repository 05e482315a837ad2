//! Phase 1, **sanitize**: what the client sent that must never reach the upstream or influence
//! the gateway.
//!
//! Contract:
//! - every incoming header whose name, lower-cased with `_` and `.` read as `-`, equals one of the
//!   configured identity headers or a forwarding header the gateway sets (see
//!   [`FORWARDING_HEADERS`]) is dropped, on every route, public included; a name that is not a
//!   valid header for the upstream after that folding cannot smuggle anything either, since the
//!   comparison happens on the folded form;
//! - every header whose folded name equals a hop-by-hop ([`HOP_BY_HOP`]), framing or routing
//!   ([`FRAMING_HEADERS`]) or credential ([`CREDENTIAL_HEADERS`]) header but that is not spelled
//!   exactly that (`Transfer_Encoding`, `Content.Length`, `Authori_zation`...) is dropped too: the
//!   gateway and hyper read only the exact spelling, while an upstream that folds `_` to `-`
//!   (CGI, WSGI) would read the look-alike as the real one — another body framing (a smuggled
//!   request), another host, a credential. Dropped rather than refused (400), as the identity
//!   look-alikes are: no client needs them, and the request the upstream receives is then exactly
//!   the one the gateway framed, routed and identified;
//! - hop-by-hop headers ([`HOP_BY_HOP`]) and every header named by `Connection` are dropped. They
//!   are dropped *before* the gateway sets its own headers, so `Connection: X-Remote-User` can only
//!   remove the client's copy, never ours;
//! - the exact credential headers (`Authorization` and the configured API-key headers, see
//!   [`CredentialHeaders`]) stay for identify and are removed by forward, whatever identified
//!   the request (`Authorization` stays with `upstream.pass_authorization`);
//! - the `Upgrade` request is remembered (and `Upgrade: h2c` refused by the caller) before the
//!   hop-by-hop headers go.

use std::collections::HashSet;
use std::sync::Arc;

use http::header::{
    self, AUTHORIZATION, CONNECTION, CONTENT_LENGTH, HOST, HeaderName, PROXY_AUTHENTICATE,
    PROXY_AUTHORIZATION, TE, TRAILER, TRANSFER_ENCODING, UPGRADE,
};
use http::header::{GetAll, HeaderValue};
use http::{HeaderMap, Method, Request, StatusCode};
use smallvec::SmallVec;

use super::Body;
use super::context::{IncomingForwarding, RequestContext};
use super::error::ProxyError;
use crate::runtime::Runtime;

/// Forwarding headers the gateway sets or that upstreams commonly trust for routing decisions;
/// clients never get to send them.
pub(crate) const FORWARDING_HEADERS: &[&str] = &[
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-prefix",
    "x-forwarded-uri",
    "x-forwarded-method",
    "x-forwarded-server",
    "forwarded",
    "x-real-ip",
    "x-client-ip",
    "x-original-url",
    "x-original-uri",
    "x-original-method",
    "x-rewrite-url",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

// The forwarding headers the request path reads or sets, as names (no parsing per request).
pub(crate) const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub(crate) const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub(crate) const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
pub(crate) const X_FORWARDED_URI: HeaderName = HeaderName::from_static("x-forwarded-uri");
pub(crate) const X_FORWARDED_METHOD: HeaderName = HeaderName::from_static("x-forwarded-method");
pub(crate) const X_ORIGINAL_URI: HeaderName = HeaderName::from_static("x-original-uri");
pub(crate) const X_ORIGINAL_URL: HeaderName = HeaderName::from_static("x-original-url");
pub(crate) const X_ORIGINAL_METHOD: HeaderName = HeaderName::from_static("x-original-method");

/// Hop-by-hop headers (RFC 9110 §7.6.1 plus the legacy ones proxies still see).
pub(crate) static HOP_BY_HOP: [HeaderName; 9] = [
    CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    TE,
    TRAILER,
    TRANSFER_ENCODING,
    UPGRADE,
    PROXY_AUTHENTICATE,
    PROXY_AUTHORIZATION,
];

/// Framing and routing headers that pass in their exact spelling (hyper frames the body by
/// `Content-Length`, sanitize reads `Host`); their look-alikes are dropped.
pub(crate) static FRAMING_HEADERS: [HeaderName; 2] = [CONTENT_LENGTH, HOST];

/// The headers the gateway reads credentials from whatever the config: `Authorization`. With
/// the configured `login.api_key_headers`, they make a config version's [`CredentialHeaders`].
pub(crate) static CREDENTIAL_HEADERS: [HeaderName; 1] = [AUTHORIZATION];

/// The credential headers of one config version: [`CREDENTIAL_HEADERS`] and the configured
/// API-key headers. Whatever identified the request (a session, these credentials, nobody),
/// forward removes them (`Authorization` stays only with `upstream.pass_authorization`; an API
/// key never does), and sanitize drops their look-alikes: the upstream and its logs never
/// receive a credential the gateway consumed. Built once per config version: the request path
/// only iterates it.
#[derive(Debug, Clone)]
pub(crate) struct CredentialHeaders {
    /// `login.api_key_headers`, in the configured order.
    api_keys: Arc<[HeaderName]>,
    /// What forward removes.
    strip: Arc<[HeaderName]>,
}

impl CredentialHeaders {
    /// The credential headers for these API-key headers; `pass_authorization` keeps
    /// `Authorization` out of the removed ones.
    pub(crate) fn new(api_keys: Vec<HeaderName>, pass_authorization: bool) -> CredentialHeaders {
        let always = if pass_authorization {
            &[][..]
        } else {
            &CREDENTIAL_HEADERS[..]
        };
        CredentialHeaders {
            strip: always.iter().chain(&api_keys).cloned().collect(),
            api_keys: api_keys.into(),
        }
    }

    /// The configured API-key headers, in order.
    pub(crate) fn api_keys(&self) -> &[HeaderName] {
        &self.api_keys
    }

    /// The headers forward removes.
    pub(crate) fn strip(&self) -> &[HeaderName] {
        &self.strip
    }
}

/// Headers the gateway answers with or reads itself, beyond the lists above: no identity header
/// may take their name.
const OWN_HEADERS: &[&str] = &["cookie", "set-cookie", "www-authenticate", "content-type"];

/// Every header whose exact spelling is handled by a phase (hop-by-hop, framing, credentials):
/// the names whose look-alikes sanitize drops.
fn exact_only() -> impl Iterator<Item = &'static HeaderName> {
    HOP_BY_HOP
        .iter()
        .chain(FRAMING_HEADERS.iter())
        .chain(CREDENTIAL_HEADERS.iter())
}

/// Whether an identity header may not be called `name` (in any spelling): a name the gateway
/// sets, reads, frames by or answers with. The config check uses this, so the names it refuses
/// and the names sanitize drops are one list.
pub(crate) fn managed_by_gateway(name: &str) -> bool {
    let folded = fold_name(name.trim());
    FORWARDING_HEADERS.contains(&folded.as_str())
        || OWN_HEADERS.contains(&folded.as_str())
        || exact_only().any(|h| h.as_str() == folded)
}

/// Whether `name` is one of [`HOP_BY_HOP`] (compared as names: no string comparison per
/// standard header).
pub(crate) fn is_hop_by_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.iter().any(|h| h == name)
}

/// The one header-name folding (sanitize, the reserved set and the config check all use it):
/// ASCII lower case, with `_` and `.` read as `-`, as CGI/WSGI upstreams read names.
fn fold_byte(b: u8) -> u8 {
    match b {
        b'_' | b'.' => b'-',
        b => b.to_ascii_lowercase(),
    }
}

/// `name` folded by [`fold_byte`]: the form two header names are compared in.
pub(crate) fn fold_name(name: &str) -> String {
    name.chars()
        .map(|c| match u8::try_from(c) {
            Ok(b) if b.is_ascii() => char::from(fold_byte(b)),
            _ => c,
        })
        .collect()
}

/// Whether `a` and `b` are the same name once both are folded by [`fold_byte`] (without
/// allocating: this runs for every header of every request).
pub(crate) fn same_folded(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .all(|(x, y)| fold_byte(x) == fold_byte(y))
}

/// The folded names that are never accepted from a client: the configured identity headers
/// plus [`FORWARDING_HEADERS`] in every spelling, and the look-alikes (not the exact spelling)
/// of the hop-by-hop, framing and credential headers. Built once per config version.
#[derive(Debug, Clone)]
pub(crate) struct Reserved {
    folded: HashSet<String>,
    /// The folded names whose exact spelling passes (see [`exact_only`]).
    lookalikes: HashSet<String>,
    /// Bit `n` set when a name of `folded` has `n` bytes (`n < 128`; longer names always go to
    /// the set): most headers of a request are rejected by one bit test, without hashing.
    lengths: u128,
    /// The same for `lookalikes` (only names with `_` or `.` are looked up there).
    lookalike_lengths: u128,
}

/// Bit `n` set for every name of `n < 128` bytes.
fn length_bits<'a>(names: impl IntoIterator<Item = &'a String>) -> u128 {
    names
        .into_iter()
        .filter(|n| n.len() < 128)
        .fold(0u128, |bits, n| bits | 1u128 << n.len())
}

impl Reserved {
    /// The reserved set for these configured identity header names (no API-key header).
    pub(crate) fn new<'a>(identity_headers: impl IntoIterator<Item = &'a str>) -> Self {
        Reserved::with_api_keys(identity_headers, &[])
    }

    /// The reserved set for these identity header names and API-key headers (whose exact
    /// spelling passes to identify, as `Authorization` does, and whose look-alikes go).
    pub(crate) fn with_api_keys<'a>(
        identity_headers: impl IntoIterator<Item = &'a str>,
        api_keys: &[HeaderName],
    ) -> Self {
        let folded: HashSet<String> = identity_headers
            .into_iter()
            .map(fold_name)
            .chain(FORWARDING_HEADERS.iter().map(|h| h.to_string()))
            .collect();
        let lookalikes: HashSet<String> = exact_only()
            .map(|h| h.as_str().to_string())
            .chain(api_keys.iter().map(|h| h.as_str().to_string()))
            .collect();
        Reserved {
            lengths: length_bits(&folded),
            lookalike_lengths: length_bits(&lookalikes),
            folded,
            lookalikes,
        }
    }

    /// Whether an incoming header with this name must be dropped.
    pub(crate) fn contains(&self, name: &str) -> bool {
        // Folding keeps the length (`_`, `.` and ASCII letters are one byte each).
        let may = |bits: u128| name.len() >= 128 || bits & (1u128 << name.len()) != 0;
        if !may(self.lengths | self.lookalike_lengths) {
            return false;
        }
        let separators = name.bytes().any(|b| b == b'_' || b == b'.');
        if separators || name.bytes().any(|b| b.is_ascii_uppercase()) {
            let folded = fold_name(name);
            // Case alone does not make a look-alike: `Content-Length` is `content-length`.
            (may(self.lengths) && self.folded.contains(&folded))
                || (separators && may(self.lookalike_lengths) && self.lookalikes.contains(&folded))
        } else {
            may(self.lengths) && self.folded.contains(name)
        }
    }
}

/// What the client asked to upgrade to, if anything (lower-cased `Upgrade` value) — only when
/// `Connection` also says `upgrade`, as RFC 9110 requires.
pub(crate) fn upgrade_request(headers: &HeaderMap) -> Option<String> {
    let connection = headers.get_all(CONNECTION);
    if !connection_tokens(&connection).any(|t| t.eq_ignore_ascii_case("upgrade")) {
        return None;
    }
    let value = headers.get(UPGRADE)?.to_str().ok()?;
    Some(value.trim().to_ascii_lowercase())
}

/// The comma-separated tokens of the `Connection` headers (`headers.get_all(CONNECTION)`),
/// trimmed.
fn connection_tokens<'a>(connection: &'a GetAll<'a, HeaderValue>) -> impl Iterator<Item = &'a str> {
    connection
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
}

/// What one pass over a header map found (see [`scan`]).
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// The names to drop: reserved, hop-by-hop, or named by `Connection`. Usually none or one
    /// (`Connection` itself), so they are kept inline, without allocating.
    pub(crate) doomed: SmallVec<[HeaderName; 4]>,
    /// How many values had a reserved name.
    pub(crate) reserved_values: usize,
    /// Whether a `Connection` header is present (only then can the request be an upgrade).
    pub(crate) connection: bool,
}

impl Scan {
    /// Removes the doomed headers from `headers` (the map [`scan`] read).
    pub(crate) fn remove_from(self, headers: &mut HeaderMap) {
        for name in &self.doomed {
            headers.remove(name);
        }
    }
}

/// Finds, in one pass over the names (no lookup per candidate name), what must not cross the
/// gateway: names in `reserved` (requests only), hop-by-hop headers, and every header named by
/// `Connection`.
pub(crate) fn scan(headers: &HeaderMap, reserved: Option<&Reserved>) -> Scan {
    let values = headers.get_all(CONNECTION);
    let connection = values.iter().next().is_some();
    // The tokens, split once (not once per header name): usually one (`keep-alive`).
    let tokens: SmallVec<[&str; 4]> = if connection {
        connection_tokens(&values).collect()
    } else {
        SmallVec::new()
    };
    let named_by_connection = |name: &str| tokens.iter().any(|t| same_folded(t, name));
    let mut doomed = SmallVec::new();
    let mut reserved_values = 0;
    for name in headers.keys() {
        let s = name.as_str();
        if reserved.is_some_and(|r| r.contains(s)) {
            reserved_values += headers.get_all(name).iter().count();
            doomed.push(name.clone());
        } else if is_hop_by_hop(name) || named_by_connection(s) {
            doomed.push(name.clone());
        }
    }
    Scan {
        doomed,
        reserved_values,
        connection,
    }
}

/// Drops reserved, hop-by-hop and `Connection`-named headers from `headers`. Returns the number
/// of headers dropped because they were reserved (for the log).
pub(crate) fn sanitize_headers(headers: &mut HeaderMap, reserved: &Reserved) -> usize {
    let found = scan(headers, Some(reserved));
    let n = found.reserved_values;
    found.remove_from(headers);
    n
}

/// Sanitize: capture forwarding facts, normalize the path, drop reserved and hop-by-hop headers.
pub(crate) fn sanitize(
    rt: &Runtime,
    ctx: &mut RequestContext,
    req: &mut Request<Body>,
) -> Result<(), ProxyError> {
    let headers = req.headers();
    // One pass over the names finds what goes; the forwarding headers are among the reserved
    // names, so a request without any (the usual case) needs no lookup for each of them.
    let found = scan(headers, Some(&rt.reserved));
    if found.reserved_values > 0 {
        ctx.incoming = incoming_forwarding(headers);
    }
    // Two Host headers: the gateway and the upstream could each pick a different one
    // (RFC 9112 §3.2 requires a 400).
    let mut hosts = headers.get_all(header::HOST).iter();
    let host_header = hosts.next();
    if hosts.next().is_some() {
        return Err(ProxyError::bad_request("several Host headers"));
    }
    // `Host` and the target's authority (HTTP/2 `:authority`, an HTTP/1.1 absolute-form target)
    // naming different hosts: what the gateway routes on and what a client, cache or the
    // upstream takes for the target could differ (RFC 9113 §8.3.1; RFC 9112 §3.2.2 lets a server
    // ignore `Host` there, so another hop may route on the authority).
    if let (Some(host), Some(authority)) = (host_header, req.uri().authority())
        && !host
            .to_str()
            .is_ok_and(|h| same_authority(h, authority.as_str(), req.uri().scheme_str()))
    {
        return Err(ProxyError::bad_request(
            "Host and the request-target's authority disagree",
        ));
    }
    // The value as received (a shared reference into the parsed request, not a copy): it is
    // routed on, and sent upstream as `X-Forwarded-Host` (and `Host` with `preserve_host`).
    let host = host_header
        .filter(|h| h.to_str().is_ok())
        .cloned()
        .or_else(|| {
            req.uri()
                .authority()
                .and_then(|a| http::HeaderValue::from_str(a.as_str()).ok())
        })
        .filter(|h| h.to_str().is_ok_and(|h| !h.trim().is_empty()));
    // Without a host no `host:` rule can match, and the upstream would pick its default virtual
    // host (perhaps the protected one): refused (RFC 9112 §3.2 requires it for HTTP/1.1).
    let Some(host_str) = host.as_ref().and_then(|h| h.to_str().ok()) else {
        return Err(ProxyError::bad_request("no Host"));
    };
    // `x@admin.test` is not `admin.test` to the route table, but is to an upstream that parses
    // `Host` as a URL authority: only plain `host[:port]` passes.
    if !plain_host(host_str) {
        return Err(ProxyError::bad_request("malformed Host"));
    }
    ctx.host = host;
    ctx.peer_trusted = super::forward::is_trusted(ctx.peer.ip(), &rt.trusted_proxies);
    ctx.client_ip = super::forward::client_ip(
        ctx.peer.ip(),
        ctx.incoming.xff.as_deref(),
        &rt.trusted_proxies,
    );

    // The gateway is no forward proxy: `CONNECT` is only an HTTP/2 WebSocket (RFC 8441), routed
    // and authorized as the `GET` it becomes upstream.
    if req.method() == Method::CONNECT {
        match super::tunnel::extended_connect(req).as_deref() {
            Some("websocket") => {
                ctx.extended_connect = true;
                ctx.method = Method::GET;
            }
            Some(_) => {
                return Err(ProxyError::client(
                    StatusCode::NOT_IMPLEMENTED,
                    "unsupported :protocol",
                ));
            }
            None => {
                return Err(ProxyError::client(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "CONNECT refused",
                ));
            }
        }
    }

    ctx.query = req.uri().query().map(str::to_string);
    ctx.path = rt
        .routes
        .normalize(req.uri().path())
        .map_err(|e| ProxyError::bad_request(format!("ambiguous path: {e}")))?;

    let upgrade = if found.connection {
        upgrade_request(req.headers())
    } else {
        None
    };
    ctx.upgrade = match upgrade {
        Some(p) if p == "h2c" => return Err(ProxyError::bad_request("Upgrade: h2c refused")),
        Some(p) if p == "websocket" => Some(p),
        _ if ctx.extended_connect => Some("websocket".to_string()),
        _ => None,
    };
    ctx.spoofed_headers = found.reserved_values;
    found.remove_from(req.headers_mut());
    if ctx.spoofed_headers > 0 {
        tracing::debug!(
            count = ctx.spoofed_headers,
            "dropped client-sent reserved headers"
        );
    }
    Ok(())
}

/// The forwarding headers a client sent (read before sanitize drops them; believed only from a
/// trusted proxy).
fn incoming_forwarding(headers: &http::HeaderMap) -> IncomingForwarding {
    let joined = |name: HeaderName| {
        let mut values = headers.get_all(name).iter().filter_map(|v| v.to_str().ok());
        let first = values.next()?;
        let mut all = first.to_string();
        for v in values {
            all.push(',');
            all.push_str(v);
        }
        Some(all)
    };
    let mut uris: Vec<&str> = [X_ORIGINAL_URI, X_ORIGINAL_URL, X_FORWARDED_URI]
        .into_iter()
        .flat_map(|n| headers.get_all(n).iter())
        .filter_map(|v| v.to_str().ok())
        .collect();
    uris.sort_unstable();
    uris.dedup();
    IncomingForwarding {
        xff: joined(X_FORWARDED_FOR),
        proto: joined(X_FORWARDED_PROTO).map(|p| p.trim().to_ascii_lowercase()),
        host: joined(X_FORWARDED_HOST),
        uri_conflict: uris.len() > 1,
        uri: uris.first().map(|u| u.to_string()),
        method: joined(X_FORWARDED_METHOD).or_else(|| joined(X_ORIGINAL_METHOD)),
    }
}

/// Whether `host` is a plain `name[:port]`, `IPv4[:port]` or `[IPv6][:port]`: no userinfo, path,
/// percent-encoding, spaces or other characters that parsers could read differently.
fn plain_host(host: &str) -> bool {
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        if v6.is_empty()
            || !v6
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return false;
        }
        match after {
            "" => return true,
            p => match p.strip_prefix(':') {
                Some(port) => ("v6", Some(port)),
                None => return false,
            },
        }
    } else {
        match host.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        }
    };
    let name_ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    name_ok && port_ok
}

/// Whether `host` (a `Host` value) and `authority` (the request-target's) name the same host and
/// port: case-insensitively, the `scheme`'s default port (80, 443) standing for no port. Anything
/// else in either (userinfo...) makes them differ.
fn same_authority(host: &str, authority: &str, scheme: Option<&str>) -> bool {
    fn split(hp: &str) -> (&str, Option<&str>) {
        // `[v6]:port`: the port follows the bracket.
        let after = hp.rfind(']').map_or(0, |i| i + 1);
        match hp[after..].rfind(':') {
            Some(i) => (&hp[..after + i], Some(&hp[after + i + 1..])),
            None => (hp, None),
        }
    }
    let default = match scheme {
        Some(s) if s.eq_ignore_ascii_case("http") => Some(80),
        Some(s) if s.eq_ignore_ascii_case("https") => Some(443),
        _ => None,
    };
    let port = |p: Option<&str>| match p {
        None => Ok(default),
        Some(p) => p.parse::<u16>().map(Some).map_err(|_| ()),
    };
    let ((h1, p1), (h2, p2)) = (split(host.trim()), split(authority));
    h1.eq_ignore_ascii_case(h2) && port(p1).is_ok_and(|p| Ok(p) == port(p2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn reserved() -> Reserved {
        Reserved::new(["X-Remote-User", "X-Remote-Groups"])
    }

    #[test]
    fn every_spelling_of_an_identity_header_is_dropped() {
        let mut h = HeaderMap::new();
        for name in [
            "x-remote-user",
            "x_remote_user",
            "x.remote.user",
            "x-remote_user",
            "x-remote-groups",
            "x-forwarded-for",
            "x-http-method-override",
            "forwarded",
        ] {
            h.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_static("evil"),
            );
        }
        h.append("x-remote-user", HeaderValue::from_static("evil2"));
        h.insert("accept", HeaderValue::from_static("*/*"));
        let n = sanitize_headers(&mut h, &reserved());
        assert_eq!(n, 9);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("accept"));
    }

    #[test]
    fn look_alikes_of_framing_hop_by_hop_and_credential_headers_are_dropped() {
        let mut h = HeaderMap::new();
        let lookalikes = [
            "transfer_encoding",
            "transfer.encoding",
            "content_length",
            "content.length",
            "keep_alive",
            "proxy_connection",
            "proxy.authorization",
            "proxy_authenticate",
        ];
        // The exact spellings hyper and identify read pass (`transfer-encoding` is hop-by-hop);
        // names that only resemble them after folding are the application's.
        let kept = [
            "content-length",
            "host",
            "authorization",
            "host_",
            "authorization_",
            "x_content_length",
        ];
        for name in lookalikes.iter().chain(&kept) {
            h.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_static("1"),
            );
        }
        h.append("transfer-encoding", HeaderValue::from_static("chunked"));
        let n = sanitize_headers(&mut h, &reserved());
        assert_eq!(n, lookalikes.len());
        let mut left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        left.sort_unstable();
        let mut want = kept.to_vec();
        want.sort_unstable();
        assert_eq!(left, want);
    }

    #[test]
    fn api_key_headers_pass_exactly_go_as_look_alikes_and_are_always_stripped() {
        let key = HeaderName::from_static("x-api-key");
        let r = Reserved::with_api_keys(["X-Remote-User"], std::slice::from_ref(&key));
        assert!(!r.contains("x-api-key"));
        assert!(r.contains("x_api_key") && r.contains("x.api-key"));
        assert!(!Reserved::new(["X-Remote-User"]).contains("x_api_key"));
        let kept = CredentialHeaders::new(vec![key.clone()], true);
        assert_eq!(kept.strip(), std::slice::from_ref(&key));
        let stripped = CredentialHeaders::new(vec![key.clone()], false);
        assert_eq!(stripped.strip(), [AUTHORIZATION, key.clone()]);
        assert_eq!(stripped.api_keys(), [key]);
    }

    #[test]
    fn the_config_check_refuses_what_sanitize_manages() {
        for name in [
            "Authorization",
            "Transfer_Encoding",
            "content.length",
            "Host",
            "X-Original-URI",
            "X_Forwarded_For",
            "Set-Cookie",
            "Proxy-Connection",
        ] {
            assert!(managed_by_gateway(name), "{name}");
        }
        for name in ["X-Remote-User", "X-Auth-Request-User", "X-Email"] {
            assert!(!managed_by_gateway(name), "{name}");
        }
    }

    #[test]
    fn hop_by_hop_and_connection_named_headers_are_dropped() {
        let mut h = HeaderMap::new();
        h.insert("connection", HeaderValue::from_static("close, X-Custom"));
        h.insert("x-custom", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("5"));
        h.insert("te", HeaderValue::from_static("trailers"));
        h.insert("x-other", HeaderValue::from_static("kept"));
        sanitize_headers(&mut h, &reserved());
        assert_eq!(h.len(), 1);
        assert_eq!(h["x-other"], "kept");
    }

    /// Sanitize reads the incoming forwarding headers only when the scan found a reserved name:
    /// that is only right while every header it reads is reserved whatever the config.
    #[test]
    fn the_forwarding_headers_sanitize_reads_are_always_reserved() {
        let none = Reserved::new(std::iter::empty());
        for name in [
            X_FORWARDED_FOR,
            X_FORWARDED_PROTO,
            X_FORWARDED_HOST,
            X_FORWARDED_URI,
            X_FORWARDED_METHOD,
            X_ORIGINAL_URI,
            X_ORIGINAL_URL,
            X_ORIGINAL_METHOD,
        ] {
            assert!(none.contains(name.as_str()), "{name}");
        }
    }

    #[test]
    fn hop_by_hop_names_match_the_list() {
        for name in [
            "connection",
            "Keep-Alive",
            "proxy-connection",
            "TE",
            "trailer",
            "transfer-encoding",
            "upgrade",
            "proxy-authenticate",
            "Proxy-Authorization",
        ] {
            let name = HeaderName::from_bytes(name.as_bytes()).unwrap();
            assert!(is_hop_by_hop(&name), "{name}");
        }
        for name in ["accept", "x-connection", "keep-alive2", "host"] {
            assert!(!is_hop_by_hop(&HeaderName::from_static(name)), "{name}");
        }
    }

    #[test]
    fn upgrade_needs_connection_upgrade() {
        let mut h = HeaderMap::new();
        h.insert("upgrade", HeaderValue::from_static("WebSocket"));
        assert_eq!(upgrade_request(&h), None);
        h.insert(
            "connection",
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        assert_eq!(upgrade_request(&h).as_deref(), Some("websocket"));
    }

    #[test]
    fn authorities_compare_by_host_and_effective_port() {
        for (host, authority, scheme) in [
            ("gw.test", "gw.test", Some("http")),
            ("GW.test", "gw.TEST", Some("http")),
            ("gw.test", "gw.test:80", Some("http")),
            ("gw.test:443", "gw.test", Some("https")),
            ("gw.test:8080", "gw.test:8080", Some("http")),
            ("[::1]", "[::1]:80", Some("http")),
            ("gw.test", "gw.test", None),
        ] {
            assert!(
                same_authority(host, authority, scheme),
                "{host} {authority}"
            );
        }
        for (host, authority, scheme) in [
            ("app.test", "other.host", Some("http")),
            ("gw.test", "gw.test:443", Some("http")),
            ("gw.test", "gw.test:8080", Some("http")),
            ("gw.test", "user@gw.test", Some("http")),
            ("gw.test", "gw.test:", Some("http")),
            ("gw.test", "gw.test:80", None),
            ("gw.test", "gw.test.", Some("http")),
            ("[::1]", "[::2]", Some("http")),
        ] {
            assert!(
                !same_authority(host, authority, scheme),
                "{host} {authority}"
            );
        }
    }

    #[test]
    fn only_plain_hosts_pass() {
        for ok in [
            "gw.test",
            "GW.test:8080",
            "gw.test.",
            "127.0.0.1:80",
            "[::1]",
            "[::1]:443",
            "internal_host",
        ] {
            assert!(plain_host(ok), "{ok}");
        }
        for bad in [
            "x@admin.test",
            "admin.test@evil.example",
            "admin.test:80@evil",
            "admin.test/x",
            "admin.test\\x",
            "admin test",
            "admin.test:",
            "admin.test:8o",
            "admin.test:123456",
            "admin.test:80:80",
            "%61dmin.test",
            "[::1",
            "[::1]x",
            "[evil.example]",
            ":80",
            "admin.test,evil.example",
        ] {
            assert!(!plain_host(bad), "{bad}");
        }
    }
}

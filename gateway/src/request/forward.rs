//! Phase 6, **forward**: the upstream request and the exchange.
//!
//! Contract:
//! - the upstream request is the client's method, the normalized path plus the unchanged query,
//!   the sanitized headers, and the body streamed as it arrives (never buffered);
//! - identity headers are set from the user only (values with control characters refused -> 500
//!   with a log line; non-ASCII values percent-encoded as UTF-8, with `%` itself encoded, or
//!   refused, per `identity_headers.encoding`; a groups separator inside a group name is
//!   percent-encoded too, so no group name can forge another group); with
//!   `identity_headers.assertion`, a signed JWT of the same identity goes with them (see
//!   [`crate::assertion`]);
//! - `X-Forwarded-For` gets the client address appended to what a trusted proxy sent, and is
//!   replaced otherwise; `X-Forwarded-Proto` and `X-Forwarded-Host` likewise believe only a trusted
//!   proxy; `Host` is the client's with `preserve_host`, the upstream's otherwise;
//! - the gateway's own session cookie is removed from `Cookie`, other cookies pass;
//! - `Authorization` (any scheme) is removed whatever identified the request, session included,
//!   unless `upstream.pass_authorization`; the configured API-key headers always are (see
//!   [`CredentialHeaders`]);
//! - the response head must arrive within `upstream.timeout` (504), a connection failure is 502;
//!   hop-by-hop response headers are dropped and the body is streamed back;
//! - an `Upgrade` (WebSocket) is passed through: a valid `101` opens a tunnel (see
//!   [`super::tunnel`]) copying bytes both ways until either side closes or shutdown ends it.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;

use auth_core::User;
use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Request, Response, StatusCode, Uri, Version};
use http_body_util::BodyExt;
use ipnet::IpNet;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

use super::context::{IdentitySource, RequestContext};
use super::error::ProxyError;
use super::pool::UpstreamPool;
use super::sanitize::{CredentialHeaders, X_FORWARDED_FOR, X_FORWARDED_HOST, X_FORWARDED_PROTO};
use super::{Body, ConnInfo};
use crate::assertion::Asserter;
use crate::config::typed::Parsed;
use crate::config::{HeaderEncoding, IdentityHeadersConfig};
use crate::runtime::Runtime;

/// `%` and every non-ASCII byte (controls are refused before encoding).
const IDENTITY_ENCODE: &AsciiSet = &CONTROLS.add(b'%');

/// The identity headers of one config version, ready to set.
#[derive(Debug, Clone)]
pub(crate) struct HeaderPlan {
    user: HeaderName,
    email: Option<HeaderName>,
    name: Option<HeaderName>,
    groups: Option<HeaderName>,
    groups_separator: String,
    backend: Option<HeaderName>,
    extra: Vec<(HeaderName, String)>,
    encoding: HeaderEncoding,
    /// `identity_headers.assertion.header` (stripped from requests whether or not it is set).
    assertion_header: Option<HeaderName>,
    /// Signs the assertion (see [`crate::assertion`]); attached by the runtime, which holds the
    /// keys.
    asserter: Option<Arc<Asserter>>,
}

/// A configured identity header name is not a valid header name.
#[derive(Debug, thiserror::Error)]
#[error("identity header `{0}` is not a valid header name")]
pub(crate) struct BadHeaderName(String);

fn header_name(name: &Parsed<HeaderName>) -> Result<HeaderName, BadHeaderName> {
    name.get()
        .cloned()
        .ok_or_else(|| BadHeaderName(name.written().to_string()))
}

impl HeaderPlan {
    /// Compiles `identity_headers:`.
    pub(crate) fn new(cfg: &IdentityHeadersConfig) -> Result<HeaderPlan, BadHeaderName> {
        let opt = |h: &Option<serde_saphyr::Spanned<Parsed<HeaderName>>>| {
            h.as_ref().map(|s| header_name(&s.value)).transpose()
        };
        Ok(HeaderPlan {
            user: header_name(&cfg.user.value)?,
            email: opt(&cfg.email)?,
            name: opt(&cfg.name)?,
            groups: opt(&cfg.groups)?,
            groups_separator: cfg.groups_separator.clone(),
            backend: opt(&cfg.backend)?,
            extra: cfg
                .extra
                .iter()
                .map(|(h, attr)| Ok((header_name(h)?, attr.value.clone())))
                .collect::<Result<_, BadHeaderName>>()?,
            encoding: cfg.encoding,
            assertion_header: cfg
                .assertion
                .as_ref()
                .map(|a| header_name(&a.header.value))
                .transpose()?,
            asserter: None,
        })
    }

    /// This plan, also setting the identity assertion `asserter` signs.
    pub(crate) fn with_asserter(mut self, asserter: Option<Arc<Asserter>>) -> HeaderPlan {
        self.asserter = asserter;
        self
    }

    /// The identity assertion of this version, if configured.
    pub(crate) fn asserter(&self) -> Option<&Asserter> {
        self.asserter.as_deref()
    }

    /// Every header this plan sets (for the reserved set of sanitize).
    pub(crate) fn names(&self) -> Vec<&str> {
        let mut v = vec![self.user.as_str()];
        for h in [&self.email, &self.name, &self.groups, &self.backend]
            .into_iter()
            .flatten()
        {
            v.push(h.as_str());
        }
        v.extend(self.extra.iter().map(|(h, _)| h.as_str()));
        v.extend(self.assertion_header.iter().map(HeaderName::as_str));
        v
    }

    /// `v` as it may be sent: control characters refused; non-ASCII (and `%`) percent-encoded,
    /// or refused with `encoding: reject`. Borrowed when it goes as it is (the usual case).
    fn encode<'a>(&self, v: &'a str) -> Result<Cow<'a, str>, ProxyError> {
        if v.chars().any(|c| c.is_control()) {
            return Err(ProxyError::internal(
                "identity value holds a control character; refused",
            ));
        }
        if v.is_ascii() && !v.contains('%') {
            return Ok(Cow::Borrowed(v));
        }
        match self.encoding {
            HeaderEncoding::Percent => Ok(Cow::Owned(
                utf8_percent_encode(v, IDENTITY_ENCODE).to_string(),
            )),
            HeaderEncoding::Reject if v.is_ascii() => Ok(Cow::Borrowed(v)),
            HeaderEncoding::Reject => Err(ProxyError::internal(
                "identity value is not ASCII and encoding is `reject`",
            )),
        }
    }

    /// The header value of `text`: one copy when borrowed, none when already owned.
    fn header_value(text: Cow<'_, str>) -> Result<HeaderValue, ProxyError> {
        match text {
            Cow::Borrowed(t) => HeaderValue::from_str(t),
            Cow::Owned(t) => HeaderValue::from_maybe_shared(Bytes::from(t)),
        }
        .map_err(|_| ProxyError::internal("identity value is not a valid header value"))
    }

    fn value(&self, v: &str) -> Result<HeaderValue, ProxyError> {
        Self::header_value(self.encode(v)?)
    }

    /// One group name inside the groups header: a separator inside the name is percent-encoded
    /// (after `%` itself was), so the list stays unambiguous; with `encoding: reject` it is
    /// refused.
    fn encode_group<'a>(&self, g: &'a str) -> Result<Cow<'a, str>, ProxyError> {
        let encoded = self.encode(g)?;
        let sep = &self.groups_separator;
        if sep.is_empty() || !encoded.contains(sep.as_str()) {
            return Ok(encoded);
        }
        if self.encoding == HeaderEncoding::Reject {
            return Err(ProxyError::internal(
                "a group name contains the groups separator and encoding is `reject`",
            ));
        }
        let escaped: String = sep.bytes().map(|b| format!("%{b:02X}")).collect();
        Ok(Cow::Owned(encoded.replace(sep.as_str(), &escaped)))
    }

    /// Calls `set` with each identity header for `user`, in order. Fails (500) on a value that
    /// cannot be sent safely.
    fn each(
        &self,
        user: &User,
        mut set: impl FnMut(&HeaderName, HeaderValue),
    ) -> Result<(), ProxyError> {
        set(&self.user, self.value(&user.username)?);
        if let (Some(h), Some(v)) = (&self.email, &user.email) {
            set(h, self.value(v)?);
        }
        if let (Some(h), Some(v)) = (&self.name, &user.display_name) {
            set(h, self.value(v)?);
        }
        if let Some(h) = &self.groups {
            let mut joined = String::new();
            for (i, g) in user.groups.iter().enumerate() {
                if i > 0 {
                    joined.push_str(&self.groups_separator);
                }
                joined.push_str(&self.encode_group(g)?);
            }
            set(h, Self::header_value(Cow::Owned(joined))?);
        }
        if let Some(h) = &self.backend {
            set(h, self.value(&user.backend)?);
        }
        for (h, attr) in &self.extra {
            if let Some(values) = user.attributes.get(attr) {
                set(h, self.value(&values.join(&self.groups_separator))?);
            }
        }
        if let Some(a) = &self.asserter {
            let token = a
                .token_for(user)
                .map_err(|e| ProxyError::internal(e.to_string()))?;
            set(a.header_name(), token);
        }
        Ok(())
    }

    /// The identity headers for `user`, in order. Fails (500) on a value that cannot be sent
    /// safely.
    pub(crate) fn headers_for(
        &self,
        user: &User,
    ) -> Result<Vec<(HeaderName, HeaderValue)>, ProxyError> {
        let mut out = Vec::new();
        self.each(user, |h, v| out.push((h.clone(), v)))?;
        Ok(out)
    }

    /// Sets the identity headers for `user` in `headers` (replacing any of the same name).
    /// Fails (500) on a value that cannot be sent safely; `headers` must then not be sent.
    pub(crate) fn insert_into(
        &self,
        user: &User,
        headers: &mut HeaderMap,
    ) -> Result<(), ProxyError> {
        self.each(user, |h, v| {
            headers.insert(h.clone(), v);
        })
    }
}

/// The upstream's address, its connection pool and the per-version exchange settings.
#[derive(Debug, Clone)]
pub(crate) struct UpstreamTarget {
    /// `Host` sent upstream unless `preserve_host`.
    host: HeaderValue,
    pub(crate) pool: UpstreamPool,
    base_path: String,
    /// Time allowed for the response head.
    pub(crate) timeout: std::time::Duration,
    preserve_host: bool,
    /// The credential headers removed before forwarding.
    credentials: CredentialHeaders,
}

impl UpstreamTarget {
    /// Parses `upstream.url` (`http://host:port[/base]`); connections are opened within
    /// `connect_timeout`.
    pub(crate) fn new(
        url: &str,
        timeout: std::time::Duration,
        connect_timeout: std::time::Duration,
        preserve_host: bool,
    ) -> Result<UpstreamTarget, String> {
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("upstream url `{url}`: {e}"))?;
        let scheme = uri
            .scheme()
            .ok_or_else(|| format!("upstream url `{url}` needs a scheme"))?;
        if *scheme != http::uri::Scheme::HTTP {
            return Err(format!(
                "upstream url `{url}`: only http:// upstreams are supported"
            ));
        }
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| format!("upstream url `{url}` needs a host"))?;
        if uri.query().is_some() {
            return Err(format!("upstream url `{url}` must not have a query"));
        }
        let host = HeaderValue::from_str(authority.as_str())
            .map_err(|_| format!("upstream url `{url}`: the host is not a valid Host header"))?;
        Ok(UpstreamTarget {
            pool: UpstreamPool::new(&authority, connect_timeout),
            host,
            base_path: uri.path().trim_end_matches('/').to_string(),
            timeout,
            preserve_host,
            credentials: CredentialHeaders::new(Vec::new(), false),
        })
    }

    /// The credential headers to remove before forwarding (by default `Authorization`).
    pub(crate) fn credential_headers(mut self, credentials: CredentialHeaders) -> UpstreamTarget {
        self.credentials = credentials;
        self
    }

    /// The origin-form request target (`/base/path?query`) sent upstream.
    fn uri(&self, path: &str, query: Option<&str>) -> Result<Uri, ProxyError> {
        let mut pq = String::with_capacity(
            self.base_path.len() + path.len() + query.map_or(0, |q| q.len() + 1),
        );
        pq.push_str(&self.base_path);
        pq.push_str(path);
        if let Some(q) = query {
            pq.push('?');
            pq.push_str(q);
        }
        Uri::from_maybe_shared(Bytes::from(pq))
            .map_err(|e| ProxyError::bad_request(format!("cannot build upstream uri: {e}")))
    }
}

/// Whether `ip` is in one of the `trusted` networks.
pub(crate) fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    let ip = ip.to_canonical();
    trusted.iter().any(|n| n.contains(&ip))
}

/// The client address: the peer, or — when the peer is a trusted proxy — the right-most
/// address in its `X-Forwarded-For` that is not itself a trusted proxy.
pub(crate) fn client_ip(peer: IpAddr, xff: Option<&str>, trusted: &[IpNet]) -> IpAddr {
    let peer = peer.to_canonical();
    if !is_trusted(peer, trusted) {
        return peer;
    }
    let Some(xff) = xff else { return peer };
    let mut candidate = peer;
    for hop in xff.rsplit(',') {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) => {
                candidate = ip.to_canonical();
                if !is_trusted(candidate, trusted) {
                    return candidate;
                }
            }
            Err(_) => return candidate,
        }
    }
    candidate
}

/// `Cookie` headers without the gateway's own cookies; `None` when nothing is left. Read pair
/// by pair over the raw bytes, so a pair with non-ASCII bytes (which browsers send) is kept as
/// it is rather than taking the application's other cookies with it. A single header naming
/// none of the gateway's cookies goes as it came, without a copy.
pub(crate) fn strip_cookie(headers: &HeaderMap, cookie_names: &[&str]) -> Option<HeaderValue> {
    let mut values = headers.get_all(header::COOKIE).iter();
    let first = values.next()?;
    let single = values.next().is_none();
    let mut kept: smallvec::SmallVec<[&[u8]; 8]> = smallvec::SmallVec::new();
    let mut dropped = false;
    for (pair, name) in crate::session::cookie_pairs(headers) {
        if pair.is_empty() || cookie_names.iter().any(|n| n.as_bytes() == name) {
            dropped = true;
        } else {
            kept.push(pair);
        }
    }
    if kept.is_empty() {
        return None;
    }
    if single && !dropped {
        return Some(first.clone());
    }
    let mut joined = Vec::with_capacity(kept.iter().map(|p| p.len() + 2).sum());
    for (i, pair) in kept.iter().enumerate() {
        if i > 0 {
            joined.extend_from_slice(b"; ");
        }
        joined.extend_from_slice(pair);
    }
    HeaderValue::from_maybe_shared(Bytes::from(joined)).ok()
}

/// Removes upstream `Set-Cookie`s for the gateway's own cookie names: the application must not
/// be able to plant or overwrite the gateway's session (fixation).
pub(crate) fn drop_own_set_cookies(headers: &mut HeaderMap, cookie_names: &[&str]) {
    let values: Vec<HeaderValue> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .cloned()
        .collect();
    if values.is_empty() {
        return;
    }
    let kept: Vec<HeaderValue> = values
        .into_iter()
        .filter(|v| {
            let name = v
                .to_str()
                .ok()
                .and_then(|s| s.split(['=', ';']).next())
                .map(str::trim);
            !name.is_some_and(|n| cookie_names.contains(&n))
        })
        .collect();
    headers.remove(header::SET_COOKIE);
    for v in kept {
        headers.append(header::SET_COOKIE, v);
    }
}

/// What the forward phase needs from the runtime.
pub(crate) struct ForwardPlan<'a> {
    pub(crate) target: &'a UpstreamTarget,
    pub(crate) headers: &'a HeaderPlan,
    pub(crate) cookie_names: [&'a str; 2],
}

/// Turns the sanitized client request into the upstream request.
pub(crate) fn upstream_request(
    ctx: &RequestContext,
    plan: &ForwardPlan<'_>,
    mut req: Request<Body>,
) -> Result<Request<Body>, ProxyError> {
    // An origin-form target whose path was already normal is sent as it came (the query always
    // is): no new URI to build.
    let unchanged = plan.target.base_path.is_empty()
        && req.uri().scheme().is_none()
        && req.uri().authority().is_none()
        && req.uri().path() == ctx.path
        && req.uri().query() == ctx.query.as_deref();
    if !unchanged {
        *req.uri_mut() = plan.target.uri(&ctx.path, ctx.query.as_deref())?;
    }
    *req.version_mut() = Version::HTTP_11;
    let headers = req.headers_mut();

    if let Some(cookie) = strip_cookie(headers, &plan.cookie_names) {
        headers.insert(header::COOKIE, cookie);
    } else {
        headers.remove(header::COOKIE);
    }
    // Whatever identified the request (a session, these credentials, nobody on a public
    // route): the app and its logs never receive a credential sent to the gateway.
    for name in plan.target.credentials.strip() {
        headers.remove(name);
    }
    if let Some(user) = &ctx.user {
        plan.headers.insert_into(user, headers)?;
    }

    let xff = match (ctx.peer_trusted, ctx.incoming.xff.as_deref()) {
        (true, Some(prev)) if !prev.trim().is_empty() => {
            let peer = ctx.peer.ip().to_canonical();
            HeaderValue::from_str(&format!("{}, {peer}", prev.trim()))
                .map_err(|_| ProxyError::bad_request("bad X-Forwarded-For"))?
        }
        _ => match ctx.client_ip_header() {
            Some(v) => v.clone(),
            None => HeaderValue::from_str(&ctx.client_ip.to_string())
                .map_err(|_| ProxyError::internal("bad client address"))?,
        },
    };
    headers.insert(X_FORWARDED_FOR, xff);
    headers.insert(
        X_FORWARDED_PROTO,
        HeaderValue::from_static(if ctx.proto() == "https" {
            "https"
        } else {
            "http"
        }),
    );
    let forwarded_host = match (ctx.peer_trusted, &ctx.incoming.host) {
        (true, Some(h)) => HeaderValue::from_str(h).ok(),
        _ => ctx.host.clone(),
    };
    if let Some(v) = forwarded_host {
        headers.insert(X_FORWARDED_HOST, v);
    }
    let host = match (&ctx.host, plan.target.preserve_host) {
        (Some(h), true) => h.clone(),
        _ => plan.target.host.clone(),
    };
    headers.insert(header::HOST, host);
    if let Some(proto) = &ctx.upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(
            header::UPGRADE,
            HeaderValue::from_str(proto).map_err(|_| ProxyError::bad_request("bad Upgrade"))?,
        );
    }
    Ok(req)
}

/// Drops hop-by-hop headers (and those named by `Connection`) from an upstream response,
/// keeping `Connection`/`Upgrade` on a `101`.
pub(crate) fn clean_response_headers(status: StatusCode, headers: &mut HeaderMap) {
    let found = super::sanitize::scan(headers, None);
    if found.doomed.is_empty() {
        return;
    }
    let upgrade = (status == StatusCode::SWITCHING_PROTOCOLS)
        .then(|| headers.get(header::UPGRADE).cloned())
        .flatten();
    found.remove_from(headers);
    if let Some(u) = upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, u);
    }
}

/// Sends `req` upstream and returns the response with a streamed body. With an upgrade, a `101`
/// opens the tunnel (see [`super::tunnel`]).
pub(crate) async fn exchange(
    pool: &UpstreamPool,
    ctx: &mut RequestContext,
    timeout: std::time::Duration,
    req: Request<Body>,
    client_upgrade: Option<super::tunnel::ClientUpgrade>,
) -> Result<Response<Body>, ProxyError> {
    let started = std::time::Instant::now();
    // The response-head timeout runs from the end of the request body: a large upload must not
    // count against it. Most requests have no body: their clock starts now.
    let (req, body_sent) = if hyper::body::Body::is_end_stream(req.body()) {
        (req, None)
    } else {
        let (req, sent) = notify_on_end(req);
        (req, Some(sent))
    };
    let deadline = async move {
        if let Some(sent) = body_sent {
            let _ = sent.await;
        }
        tokio::time::sleep(timeout).await;
    };
    let result = tokio::select! {
        r = pool.send(req) => Ok(r),
        () = deadline => Err(()),
    };
    ctx.upstream_elapsed = Some(started.elapsed());
    let mut resp: Response<Body> = match result {
        Err(()) => {
            return Err(ProxyError::gateway_timeout(format!(
                "upstream sent no response head within {}",
                humantime::format_duration(timeout)
            )));
        }
        Ok(Err(e)) if e.is_connect() => {
            return Err(ProxyError::bad_gateway(format!(
                "upstream unreachable: {e}"
            )));
        }
        Ok(Err(e)) => {
            return Err(ProxyError::bad_gateway(format!(
                "upstream exchange failed: {e}"
            )));
        }
        Ok(Ok(resp)) => resp,
    };
    let status = resp.status();
    if status == StatusCode::SWITCHING_PROTOCOLS {
        let Some(client_upgrade) = client_upgrade else {
            return Err(ProxyError::bad_gateway(
                "upstream switched protocols without being asked",
            ));
        };
        client_upgrade.open(&mut resp)?;
    }
    clean_response_headers(status, resp.headers_mut());
    Ok(resp)
}

/// A request body that reports when it has been sent completely (or failed, or was dropped).
struct NotifyOnEnd {
    inner: Body,
    done: Option<tokio::sync::oneshot::Sender<()>>,
}

impl hyper::body::Body for NotifyOnEnd {
    type Data = bytes::Bytes;
    type Error = super::BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        let finished = match &polled {
            std::task::Poll::Ready(None | Some(Err(_))) => true,
            std::task::Poll::Ready(Some(Ok(_))) => self.inner.is_end_stream(),
            std::task::Poll::Pending => false,
        };
        if finished && let Some(done) = self.done.take() {
            let _ = done.send(());
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

fn notify_on_end(req: Request<Body>) -> (Request<Body>, tokio::sync::oneshot::Receiver<()>) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (parts, inner) = req.into_parts();
    let body = NotifyOnEnd {
        inner,
        done: Some(tx),
    };
    (Request::from_parts(parts, body.boxed()), rx)
}

/// Forward: build the upstream request and stream the exchange.
pub(crate) async fn forward(
    rt: &Runtime,
    conn: &ConnInfo,
    ctx: &mut RequestContext,
    mut req: Request<Body>,
) -> Result<Response<Body>, ProxyError> {
    if ctx.upgrade.is_some() && !websocket_origin_allowed(rt, ctx, req.headers()) {
        ctx.decision = "websocket_origin";
        return Ok(super::status_response(StatusCode::FORBIDDEN));
    }
    if ctx.extended_connect {
        super::tunnel::to_http11_websocket(&mut req);
    }
    let client_upgrade = ctx
        .upgrade
        .is_some()
        .then(|| super::tunnel::ClientUpgrade::take(&mut req, conn));
    let plan = ForwardPlan {
        target: &rt.upstream,
        headers: &rt.headers,
        cookie_names: [
            rt.services.sessions.cookie_name(),
            rt.services.sessions.csrf_cookie_name(),
        ],
    };
    let upstream_req = upstream_request(ctx, &plan, req)?;
    let mut resp = exchange(
        &rt.upstream.pool,
        ctx,
        rt.upstream.timeout,
        upstream_req,
        client_upgrade,
    )
    .await?;
    drop_own_set_cookies(resp.headers_mut(), &plan.cookie_names);
    if ctx.extended_connect {
        super::tunnel::to_http2_response(&mut resp)?;
    }
    Ok(resp)
}

/// Cross-site WebSocket hijacking defence: browsers attach cookies (and cached Basic
/// credentials) to WebSocket handshakes from any site, and only `Origin` tells them apart. A
/// WebSocket upgrade is forwarded only when `Origin` is our `public_url` origin or an
/// `http(s)` origin on a `login.allowed_redirect_hosts` host; without `Origin` (a non-browser
/// client) only when the user was not identified by the session cookie.
pub(crate) fn websocket_origin_allowed(
    rt: &Runtime,
    ctx: &RequestContext,
    headers: &http::HeaderMap,
) -> bool {
    let mut origins = headers.get_all(header::ORIGIN).iter();
    let (Some(origin), None) = (origins.next(), origins.next()) else {
        return headers.get(header::ORIGIN).is_none()
            && ctx.identity != Some(IdentitySource::Session);
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    // An origin is `scheme://host[:port]`, nothing after it.
    let authority = origin.split_once("://").map_or("", |(_, rest)| rest);
    if authority.is_empty() || authority.contains(['/', '?', '#', '@', '\\']) {
        return false;
    }
    crate::login::validate_next(
        &format!("{origin}/"),
        &rt.public_url,
        &rt.allowed_redirect_hosts,
    )
    .is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ip_believes_only_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let untrusted: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(client_ip(untrusted, Some("1.2.3.4"), &trusted), untrusted);
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(
            client_ip(proxy, Some("6.6.6.6, 1.2.3.4, 10.0.0.2"), &trusted),
            "1.2.3.4".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client_ip(proxy, None, &trusted), proxy);
    }

    #[test]
    fn gateway_cookie_is_removed_others_kept() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; gw_session=secret"),
        );
        h.append(header::COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(strip_cookie(&h, &["gw_session"]).unwrap(), "a=1; b=2");
        // A non-ASCII pair stays, and takes nothing else with it.
        let mut utf8 = HeaderMap::new();
        utf8.insert(
            header::COOKIE,
            HeaderValue::from_bytes("a=1; gw_session=s; name=zoë; b=2".as_bytes()).unwrap(),
        );
        assert_eq!(
            strip_cookie(&utf8, &["gw_session"]).unwrap().as_bytes(),
            "a=1; name=zoë; b=2".as_bytes()
        );
        // Nothing of ours: the header goes as it came.
        let mut theirs = HeaderMap::new();
        theirs.insert(header::COOKIE, HeaderValue::from_static("a=1;b=2"));
        assert_eq!(strip_cookie(&theirs, &["gw_session"]).unwrap(), "a=1;b=2");
        assert_eq!(
            crate::session::cookie_values(&h, "gw_session").as_slice(),
            ["secret"]
        );
        let mut only = HeaderMap::new();
        only.insert(header::COOKIE, HeaderValue::from_static("gw_session=x"));
        assert!(strip_cookie(&only, &["gw_session"]).is_none());
    }

    #[test]
    fn upstream_cannot_set_the_gateway_cookie() {
        let mut h = HeaderMap::new();
        h.append(
            header::SET_COOKIE,
            HeaderValue::from_static("gw_session=planted; Path=/"),
        );
        h.append(
            header::SET_COOKIE,
            HeaderValue::from_static("app=1; Path=/"),
        );
        drop_own_set_cookies(&mut h, &["gw_session", "gw_session_csrf"]);
        let left: Vec<_> = h.get_all(header::SET_COOKIE).iter().collect();
        assert_eq!(left, vec!["app=1; Path=/"]);
    }

    #[test]
    fn identity_values_are_encoded_or_refused() {
        let plan = HeaderPlan::new(&IdentityHeadersConfig::default()).unwrap();
        let user = User::new("zoë%").with_groups(["a", "b"]);
        let h = plan.headers_for(&user).unwrap();
        assert_eq!(h[0].1, "zo%C3%AB%25");
        let bad = User::new("eve\r\nX-Remote-User: admin");
        assert!(plan.headers_for(&bad).is_err());
        // A separator inside a group name cannot forge a second group.
        let sep = User::new("bob").with_groups(["x,admins", "té%m"]);
        let h = plan.headers_for(&sep).unwrap();
        let groups = h.iter().find(|(n, _)| n == "x-remote-groups").unwrap();
        assert_eq!(groups.1, "t%C3%A9%25m,x%2Cadmins");
        let reject_cfg = IdentityHeadersConfig {
            encoding: HeaderEncoding::Reject,
            ..IdentityHeadersConfig::default()
        };
        let reject = HeaderPlan::new(&reject_cfg).unwrap();
        assert!(
            reject
                .headers_for(&User::new("bob").with_groups(["x,admins"]))
                .is_err()
        );
        assert!(reject.headers_for(&User::new("zoë")).is_err());
        assert_eq!(reject.headers_for(&User::new("50%")).unwrap()[0].1, "50%");
    }
}

//! The gateway's own endpoints under `login.prefix` (default `/_auth`):
//! - `GET login`: the login form, with a fresh pre-session CSRF pair (cookie + hidden field);
//! - `POST login`: refused (403) when `Origin` (or, without it, `Referer`) names another site
//!   than `public_url` or an `allowed_redirect_hosts` host (login CSRF: an attacker's page must
//!   not sign a visitor into the attacker's account); body capped at
//!   `server.max_login_body_bytes` (413) and read within `server.header_read_timeout` (408),
//!   CSRF verified (403),
//!   lockout and chain (a locked pair gets the same 401 as a wrong password; chain `Unavailable`
//!   is 503); on success any old session is destroyed and a new one created (rotation), then
//!   `303` to the validated `next` (or `/`); on failure the form again with a generic error, 401;
//! - `GET logout`: a confirmation form (a link alone never logs anyone out); `POST logout`:
//!   `Origin` / `Referer` checked as for login, CSRF verified against the session, the session destroyed in the store, the cookie cleared,
//!   `303` to the validated `next` or the login page;
//! - `GET oidc/{entry}/start` and `GET oidc/{entry}/callback`: single sign-on, in `sso.rs`
//!   (the request service sends `oidc/` there; this module only links to it, [`start_url`]),
//!   ending in the same session creation as `POST login` ([`start_session`]);
//! - `GET jwks.json`: the public keys of the identity assertion ([`crate::assertion`]), 404
//!   when `identity_headers.assertion` is off;
//! - `GET whoami`: JSON `{username, email, name, groups, backend}`, 401 when anonymous;
//! - `check` (any method): forward-auth for nginx `auth_request`, Traefik `ForwardAuth` and
//!   Caddy `forward_auth`. The original request is read from `X-Original-URI` (or
//!   `X-Original-URL`, `X-Forwarded-Uri`), `X-Forwarded-Method` and `X-Forwarded-Host`, and
//!   **only from a peer in `server.trusted_proxies`**: anyone else gets 403, because a proxy that
//!   forgot to set those headers would otherwise let the client pick the path being checked.
//!   A missing or ambiguous URI (including one starting with `//`, which names a host), or an
//!   `X-Forwarded-Proto` other than `http` or `https`, is 400 (never 2xx). Then the one access
//!   decision ([`crate::request::authorize::decide`], as on the proxy path) answers: 200 with the
//!   identity headers, 401 (with the Basic challenge, and `X-Auth-Login` naming the login URL
//!   with `next`), or 403.
//!
//! Forward-auth wiring (the proxy's address must be in `server.trusted_proxies`):
//! ```text
//! # nginx
//! location = /_auth/check {
//!     internal;
//!     proxy_pass http://127.0.0.1:8080;
//!     proxy_pass_request_body off;
//!     proxy_set_header Content-Length "";
//!     proxy_set_header X-Original-URI $request_uri;
//!     proxy_set_header X-Forwarded-Method $request_method;
//!     proxy_set_header X-Forwarded-Host $host;   # for routes that match on host
//! }
//! location / {
//!     auth_request /_auth/check;
//!     auth_request_set $gw_user $upstream_http_x_remote_user;
//!     proxy_set_header X-Remote-User $gw_user;
//!     proxy_pass http://app;
//! }
//! # Traefik (dynamic config)
//! middlewares:
//!   gateway:
//!     forwardAuth:
//!       address: http://127.0.0.1:8080/_auth/check
//!       authResponseHeaders: [X-Remote-User, X-Remote-Email, X-Remote-Groups]
//! # Caddy
//! forward_auth 127.0.0.1:8080 {
//!     uri /_auth/check
//!     copy_headers X-Remote-User X-Remote-Email X-Remote-Groups
//! }
//! ```

use auth_core::User;
use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;

use crate::config::Access;
use crate::login::{self, LoginPage};
use crate::request::authorize::{Decision, Via, Who, decide};
use crate::request::challenge::{login_location, unauthorized};
use crate::request::context::RequestContext;
use crate::request::error::{ProxyError, full_body, html_response};
use crate::request::route::path_has_prefix;
use crate::request::{Body, identify, status_response};
use crate::runtime::Runtime;
use crate::state::Gateway;

const GENERIC_LOGIN_ERROR: &str = "Invalid username or password.";

pub(crate) fn redirect(status: StatusCode, location: &str) -> Response<Body> {
    let mut resp = status_response(status);
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// The 403 page (`user` signed in but refused, or a `deny` route).
pub(crate) fn forbidden_page(rt: &Runtime, user: Option<&User>) -> Response<Body> {
    let html = match user {
        Some(u) => login::render_forbidden(&u.username, &format!("{}/logout", rt.prefix)),
        None => login::render_error(StatusCode::FORBIDDEN, "Access to this page is not allowed."),
    };
    html_response(StatusCode::FORBIDDEN, html, Some(login::builtin_csp()))
}

fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let mut resp = Response::new(full_body(value.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Dispatches a request whose normalized path is under the prefix.
pub(crate) async fn handle(
    _gw: &Gateway,
    rt: &Runtime,
    ctx: &mut RequestContext,
    req: Request<Body>,
) -> Result<Response<Body>, ProxyError> {
    let rest = ctx.path[rt.prefix.len()..].to_string();
    let get = ctx.method == Method::GET || ctx.method == Method::HEAD;
    let post = ctx.method == Method::POST;
    match rest.as_str() {
        "/login" if get => Ok(login_form(rt, ctx, None, StatusCode::OK, "")),
        "/login" if post => login_submit(rt, ctx, req).await,
        "/logout" if get => logout_confirm(rt, ctx, req.headers()).await,
        "/logout" if post => logout(rt, ctx, req).await,
        "/whoami" if get => whoami(rt, ctx, req.headers()).await,
        "/check" => check(rt, ctx, req.headers()).await,
        "/jwks.json" if get => jwks(rt),
        "/login" | "/logout" => Err(ProxyError::method_not_allowed(
            "GET, HEAD, POST",
            format!("{} {}", ctx.method, ctx.path),
        )),
        "/whoami" => Err(ProxyError::method_not_allowed(
            "GET, HEAD",
            format!("{} {}", ctx.method, ctx.path),
        )),
        _ => Err(ProxyError::not_found(format!(
            "no gateway endpoint at {}",
            ctx.path
        ))),
    }
}

/// The login page's link to start signing in with `entry`, carrying `next`.
pub(crate) fn start_url(rt: &Runtime, entry: &str, next: &str) -> String {
    let entry: String = url::form_urlencoded::byte_serialize(entry.as_bytes()).collect();
    let mut url = format!("{}/oidc/{entry}/start", rt.prefix);
    if next != "/" {
        url.push_str("?next=");
        url.extend(url::form_urlencoded::byte_serialize(next.as_bytes()));
    }
    url
}

/// `GET jwks.json`: the public keys of the identity assertion (404 when it is off).
fn jwks(rt: &Runtime) -> Result<Response<Body>, ProxyError> {
    let Some(a) = rt.headers.asserter() else {
        return Err(ProxyError::not_found("identity_headers.assertion is off"));
    };
    let mut resp = Response::new(full_body(a.jwks_json()));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/jwk-set+json"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    Ok(resp)
}

pub(crate) fn query_param(ctx: &RequestContext, name: &str) -> Option<String> {
    let q = ctx.query.as_deref()?;
    url::form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn valid_next(rt: &Runtime, next: Option<&str>) -> Option<String> {
    next.and_then(|n| login::validate_next(n, &rt.public_url, &rt.allowed_redirect_hosts))
}

/// Renders the login form with a fresh CSRF pair; `next` from the query when `form_next` is
/// `None`.
fn login_form(
    rt: &Runtime,
    ctx: &mut RequestContext,
    form_next: Option<&str>,
    status: StatusCode,
    username: &str,
) -> Response<Body> {
    ctx.decision = "login_form";
    login_page(rt, ctx, form_next, status, username, None)
}

/// The login page (as [`login_form`], without setting the decision) with `message` as its
/// error when given; the single sign-on buttons of the chain's redirect-login entries, and the
/// password form when some entry takes passwords.
pub(crate) fn login_page(
    rt: &Runtime,
    ctx: &mut RequestContext,
    form_next: Option<&str>,
    status: StatusCode,
    username: &str,
    message: Option<&str>,
) -> Response<Body> {
    let next = match form_next {
        Some(n) => valid_next(rt, Some(n)),
        None => valid_next(rt, query_param(ctx, "next").as_deref()),
    }
    .unwrap_or_else(|| "/".to_string());
    let sessions = &rt.services.sessions;
    let (cookie, token) = sessions.pre_session_csrf();
    ctx.set_cookies
        .push(sessions.set_csrf_cookie(&cookie, rt.secure_cookies));
    let action = format!("{}/login", rt.prefix);
    let error = message.or((status != StatusCode::OK).then_some(match status {
        StatusCode::FORBIDDEN => "Your sign-in form expired. Please try again.",
        StatusCode::BAD_REQUEST => "The form could not be read. Please try again.",
        _ => GENERIC_LOGIN_ERROR,
    }));
    let links: Vec<(String, &str)> = rt
        .chain
        .entries()
        .iter()
        .filter_map(|e| {
            let login = e.backend.redirect_login()?;
            Some((start_url(rt, &e.name, &next), login.label()))
        })
        .collect();
    let sso: Vec<login::SsoLink<'_>> = links
        .iter()
        .map(|(href, label)| login::SsoLink { href, label })
        .collect();
    let password_form = sso.is_empty()
        || rt
            .chain
            .entries()
            .iter()
            .any(|e| e.backend.accepts(auth_core::CredentialKind::Password));
    let page = LoginPage {
        title: &rt.config.login.title,
        action: &action,
        next: &next,
        csrf_token: &token,
        error,
        username,
        sso: &sso,
        password_form,
    };
    let (html, csp) = match &rt.services.template {
        Some(t) => (t.render(&page), t.csp().map(str::to_string)),
        None => (
            login::render_login(&page),
            Some(login::builtin_csp().to_string()),
        ),
    };
    html_response(status, html, csp.as_deref())
}

/// Reads a form body of at most `server.max_login_body_bytes` (413), within
/// `server.header_read_timeout` (408).
async fn read_form(rt: &Runtime, req: Request<Body>) -> Result<Bytes, ProxyError> {
    let max = rt.config.server.max_login_body_bytes;
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > max as u64
    {
        return Err(ProxyError::client(
            StatusCode::PAYLOAD_TOO_LARGE,
            "login body too large",
        ));
    }
    // The header read timeout does not cover bodies: without a bound, a client dribbling a
    // login form holds the connection and its task forever.
    let limit = rt.config.server.header_read_timeout.get();
    tokio::time::timeout(limit, read_body(req.into_body(), max))
        .await
        .map_err(|_| ProxyError::client(StatusCode::REQUEST_TIMEOUT, "login body too slow"))?
}

async fn read_body(mut body: Body, max: usize) -> Result<Bytes, ProxyError> {
    let mut out = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ProxyError::bad_request(format!("reading the form: {e}")))?;
        if let Some(data) = frame.data_ref() {
            if out.len() + data.len() > max {
                return Err(ProxyError::client(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "login body too large",
                ));
            }
            out.extend_from_slice(data);
        }
    }
    Ok(out.freeze())
}

/// The 403 page for a login or logout POST sent from another site, or `None` when the request's
/// `Origin` / `Referer` allow it. Neither header: a non-browser client (every browser sends
/// `Origin` on POST), let through to the CSRF token check.
fn cross_site_refusal(rt: &Runtime, headers: &HeaderMap, what: &str) -> Option<Response<Body>> {
    let source = login::request_source(headers, &rt.public_url, &rt.allowed_redirect_hosts);
    if source != login::SourceVerdict::CrossSite {
        return None;
    }
    tracing::warn!(
        form = what,
        "{what} form posted from another site (Origin / Referer)"
    );
    Some(html_response(
        StatusCode::FORBIDDEN,
        login::render_error(
            StatusCode::FORBIDDEN,
            "This form was sent from another site. Open the sign-in page and try again.",
        ),
        Some(login::builtin_csp()),
    ))
}

async fn login_submit(
    rt: &Runtime,
    ctx: &mut RequestContext,
    req: Request<Body>,
) -> Result<Response<Body>, ProxyError> {
    if let Some(refused) = cross_site_refusal(rt, req.headers(), "login") {
        ctx.decision = "login_cross_site";
        return Ok(refused);
    }
    let headers = req.headers().clone();
    let body = read_form(rt, req).await?;
    let form = match login::parse_login_form(&body) {
        Ok(f) => f,
        Err(e) => {
            tracing::debug!(error = %e, "unreadable login form");
            return Ok(login_form(rt, ctx, None, StatusCode::BAD_REQUEST, ""));
        }
    };
    let sessions = &rt.services.sessions;
    // Any of the CSRF cookies sent (a tossed one may come first) that pairs with the form's token.
    let csrf_ok = crate::session::cookie_values(&headers, sessions.csrf_cookie_name())
        .iter()
        .take(4)
        .any(|c| sessions.verify_pre_session_csrf(c, &form.csrf));
    if !csrf_ok {
        ctx.decision = "login_csrf";
        return Ok(login_form(
            rt,
            ctx,
            form.next.as_deref(),
            StatusCode::FORBIDDEN,
            &form.username,
        ));
    }
    let user = identify::authenticate_password(
        rt,
        ctx,
        &form.credentials(),
        crate::audit::LoginMethod::Form,
    )
    .await?;
    let Some(user) = user else {
        let resp = login_form(
            rt,
            ctx,
            form.next.as_deref(),
            StatusCode::UNAUTHORIZED,
            &form.username,
        );
        // Same page and status whether locked or wrong: only the log tells them apart.
        ctx.decision = if ctx.locked {
            "login_locked"
        } else {
            "login_failed"
        };
        return Ok(resp);
    };
    start_session(rt, ctx, &headers, user, None, form.next.as_deref()).await
}

/// Ends a login, whichever way the user proved who they are (the form, single sign-on): every
/// session the browser still names is destroyed (rotation), a new one is created for `user`,
/// the pre-session cookie cleared, and `303` to the validated `next` (or `/`).
pub(crate) async fn start_session(
    rt: &Runtime,
    ctx: &mut RequestContext,
    headers: &HeaderMap,
    user: std::sync::Arc<User>,
    tokens: Option<&auth_core::ProviderTokens>,
    next: Option<&str>,
) -> Result<Response<Body>, ProxyError> {
    let sessions = &rt.services.sessions;
    // Every session the browser still names ends here (a tossed cookie may have come first).
    for old in crate::session::cookie_values(headers, sessions.cookie_name())
        .iter()
        .take(crate::session::MAX_SESSION_COOKIES)
    {
        sessions.destroy(old).await.map_err(identify::store_down)?;
    }
    let version = user.credential_version.as_deref();
    let cookie = match sessions.create_with_tokens(&user, version, tokens).await {
        // The cookie store cannot hold the provider's ID token with this user: without it, the
        // provider's logout goes without `id_token_hint`.
        Err(crate::session::SessionError::TooLarge(_))
            if tokens.is_some_and(|t| t.id_token.is_some()) =>
        {
            let mut smaller = tokens.cloned().unwrap_or_default();
            smaller.id_token = None;
            sessions
                .create_with_tokens(&user, version, Some(&smaller))
                .await
        }
        other => other,
    }
    .map_err(identify::store_down)?;
    ctx.set_cookies
        .push(sessions.set_cookie(&cookie, rt.secure_cookies));
    ctx.set_cookies
        .push(sessions.clear_csrf_cookie(rt.secure_cookies));
    ctx.decision = "login";
    let next = valid_next(rt, next).unwrap_or_else(|| "/".to_string());
    ctx.user = Some(user);
    Ok(redirect(StatusCode::SEE_OTHER, &next))
}

async fn logout_confirm(
    rt: &Runtime,
    ctx: &mut RequestContext,
    headers: &HeaderMap,
) -> Result<Response<Body>, ProxyError> {
    identify::identify_session_only(rt, ctx, headers).await?;
    let Some(session) = &ctx.session else {
        ctx.decision = "logout_form";
        return Ok(redirect(
            StatusCode::SEE_OTHER,
            &format!("{}/login", rt.prefix),
        ));
    };
    ctx.decision = "logout_form";
    let token = rt.services.sessions.csrf_token(session);
    let mut action = format!("{}/logout", rt.prefix);
    if let Some(next) = valid_next(rt, query_param(ctx, "next").as_deref()) {
        action.push_str("?next=");
        action.extend(url::form_urlencoded::byte_serialize(next.as_bytes()));
    }
    let username = ctx.user.as_ref().map(|u| u.username.as_str());
    let html = login::render_logout_confirm(&action, &token, username);
    Ok(html_response(
        StatusCode::OK,
        html,
        Some(login::builtin_csp()),
    ))
}

async fn logout(
    rt: &Runtime,
    ctx: &mut RequestContext,
    req: Request<Body>,
) -> Result<Response<Body>, ProxyError> {
    if let Some(refused) = cross_site_refusal(rt, req.headers(), "logout") {
        ctx.decision = "logout_cross_site";
        return Ok(refused);
    }
    let headers = req.headers().clone();
    let body = read_form(rt, req).await?;
    let token = login::parse_logout_form(&body).unwrap_or_default();
    identify::identify_session_only(rt, ctx, &headers).await?;
    let sessions = &rt.services.sessions;
    let login_url = format!("{}/login", rt.prefix);
    let Some(session) = &ctx.session else {
        ctx.decision = "logout";
        ctx.set_cookies
            .push(sessions.clear_cookie(rt.secure_cookies));
        return Ok(redirect(StatusCode::SEE_OTHER, &login_url));
    };
    if !sessions.verify_csrf(Some(session), &token) {
        ctx.decision = "logout_csrf";
        return Ok(html_response(
            StatusCode::FORBIDDEN,
            login::render_error(
                StatusCode::FORBIDDEN,
                "The sign-out form expired. Please try again.",
            ),
            Some(login::builtin_csp()),
        ));
    }
    // The provider's logout URL (RP-initiated logout), read before the session and its ID token
    // are gone; the browser goes there once the gateway's session has ended.
    let login_page = format!(
        "{}{login_url}",
        rt.public_url.as_str().trim_end_matches('/')
    );
    let provider_logout = rt
        .chain
        .entry(&session.entry)
        .and_then(|e| e.backend.redirect_login())
        .and_then(|l| l.logout_url(session.provider_tokens(), &login_page));
    if let Some(cookie) = &ctx.session_cookie {
        sessions
            .destroy(cookie)
            .await
            .map_err(|e| ProxyError::unavailable(format!("session store: {e}")))?;
    }
    if let Some(user) = &ctx.user {
        rt.services.audit.emit(crate::audit::Event::Logout {
            user: &user.username,
            backend: &user.backend,
            client_ip: ctx.client_ip,
        });
    }
    ctx.set_cookies.clear();
    ctx.set_cookies
        .push(sessions.clear_cookie(rt.secure_cookies));
    ctx.decision = "logout";
    if let Some(url) = provider_logout {
        ctx.decision = "logout_provider";
        return Ok(redirect(StatusCode::SEE_OTHER, &url));
    }
    let next = valid_next(rt, query_param(ctx, "next").as_deref()).unwrap_or(login_url);
    Ok(redirect(StatusCode::SEE_OTHER, &next))
}

async fn whoami(
    rt: &Runtime,
    ctx: &mut RequestContext,
    headers: &HeaderMap,
) -> Result<Response<Body>, ProxyError> {
    identify::identify(rt, ctx, headers).await?;
    let Some(user) = &ctx.user else {
        ctx.decision = "challenge";
        return Ok(unauthorized(rt));
    };
    ctx.decision = "whoami";
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({
            "username": user.username,
            "email": user.email,
            "name": user.display_name,
            "groups": user.groups,
            "backend": user.backend,
        }),
    ))
}

async fn check(
    rt: &Runtime,
    ctx: &mut RequestContext,
    headers: &HeaderMap,
) -> Result<Response<Body>, ProxyError> {
    if !ctx.peer_trusted {
        ctx.decision = "check_untrusted";
        tracing::warn!(peer = %ctx.peer, "forward-auth check from a peer not in trusted_proxies");
        return Ok(status_response(StatusCode::FORBIDDEN));
    }
    // The scheme of the original request is the proxy's to say; one that is neither `http` nor
    // `https` (or several, joined) means the proxy is misconfigured or passes what the client
    // sent: the check cannot know what it is vouching for.
    if ctx
        .incoming
        .proto
        .as_deref()
        .is_some_and(|p| p != "http" && p != "https")
    {
        return Err(ProxyError::bad_request(
            "X-Forwarded-Proto is neither http nor https",
        ));
    }
    let Some(uri) = ctx.incoming.uri.clone() else {
        return Err(ProxyError::bad_request(
            "check without X-Original-URI / X-Forwarded-Uri",
        ));
    };
    if ctx.incoming.uri_conflict {
        return Err(ProxyError::bad_request("several different original URIs"));
    }
    let (path, query) = match uri.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (uri.as_str(), None),
    };
    // As a URI reference, `//host/x` names another host (a network-path reference): a proxy
    // sending it may have meant either, so it is refused rather than collapsed to `/host/x`.
    if path.starts_with("//") {
        return Err(ProxyError::bad_request(
            "original URI is a network-path reference",
        ));
    }
    let path = rt
        .routes
        .normalize(path)
        .map_err(|e| ProxyError::bad_request(format!("ambiguous original URI: {e}")))?;
    let method = match ctx.incoming.method.as_deref() {
        Some(m) => Method::from_bytes(m.trim().as_bytes())
            .map_err(|_| ProxyError::bad_request("bad X-Forwarded-Method"))?,
        None => Method::GET,
    };
    let host = ctx
        .incoming
        .host
        .clone()
        .or_else(|| ctx.host_str().map(str::to_string));
    ctx.path = path.clone();
    ctx.query = query.map(str::to_string);
    let decision = if path_has_prefix(&path, &rt.prefix) {
        crate::request::route::RouteDecision {
            index: None,
            access: Access::Public,
        }
    } else {
        rt.routes.decide(host.as_deref(), method.as_str(), &path)
    };
    let access = decision.access.clone();
    ctx.route = Some(decision);
    let mut decision = decide(&access, Who::NotAsked);
    if decision == Decision::Identify {
        identify::identify(rt, ctx, headers).await?;
        decision = decide(&access, Who::identified(ctx.user.as_deref()));
    }
    ctx.decision = decision.label(Via::Check);
    match (decision, ctx.user.clone()) {
        (Decision::Public, _) => Ok(status_response(StatusCode::OK)),
        (Decision::Deny | Decision::Forbidden, _) => Ok(status_response(StatusCode::FORBIDDEN)),
        (Decision::Challenge, _) => {
            let mut resp = unauthorized(rt);
            let mut next = path;
            if let Some(q) = query {
                next.push('?');
                next.push_str(q);
            }
            if let Ok(v) = HeaderValue::from_str(&login_location(rt, &next)) {
                resp.headers_mut()
                    .insert(header::HeaderName::from_static("x-auth-login"), v);
            }
            Ok(resp)
        }
        (Decision::Allow, Some(user)) => {
            let mut resp = status_response(StatusCode::OK);
            for (name, value) in rt.headers.headers_for(&user)? {
                resp.headers_mut().insert(name, value);
            }
            Ok(resp)
        }
        (Decision::Allow | Decision::Identify, _) => {
            Err(ProxyError::internal("no decision after identification"))
        }
    }
}

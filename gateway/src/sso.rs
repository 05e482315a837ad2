//! Single sign-on endpoints under `login.prefix`, for each chain entry whose backend is a
//! [`RedirectLogin`] (`type: oidc`):
//! - `GET oidc/{entry}/start?next=...`: a fresh pre-login cookie (a signed pre-session pair, the
//!   entry and the `next` target; `SameSite=Lax` so it survives the provider's cross-site
//!   redirect back), then `303` to the provider's authorization URL. `state` is the pair's
//!   token; the `nonce` and the PKCE verifier are derived from the cookie with the session
//!   secret, so only the browser that started the login can finish it and nothing is stored
//!   server-side. A provider that cannot be reached: the login page with "unavailable" (503),
//!   the password form still there.
//! - `GET oidc/{entry}/callback?code=...&state=...[&iss=...]`: the cookie must be present, name
//!   this entry and pair with `state` (else 403, "the sign-in expired"); a provider `error` is
//!   shown as a generic message on the login page (the code is logged, never the description
//!   raw); the backend checks `iss` (RFC 9207), redeems the code and checks the ID token.
//!   Success ends in the same session creation as the login form
//!   ([`crate::endpoints::start_session`]: old sessions destroyed, a new one keeping the
//!   provider's refresh and ID token, `303` to the validated `next`); provisioning as for any
//!   login. The cookie is
//!   cleared whatever the result, so a callback cannot be replayed by the same browser, and the
//!   provider refuses a code used twice.

use std::sync::Arc;

use auth_core::{LoginBinding, Outcome, RedirectLogin, SignIn};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use http::{HeaderMap, Method, Response, StatusCode};

use crate::audit::{Event, FailureReason, LoginMethod};
use crate::endpoints::{login_page, query_param, redirect, start_session};
use crate::request::Body;
use crate::request::context::RequestContext;
use crate::request::error::ProxyError;
use crate::request::identify::audit_failure;
use crate::runtime::Runtime;

/// Suffix of the pre-login cookie's name (after the CSRF cookie's).
const COOKIE_SUFFIX: &str = "_sso";

/// Purposes of the secrets derived from the pre-login cookie.
const NONCE: &[u8] = b"oidc nonce";
const PKCE: &[u8] = b"oidc pkce";

/// Dispatches `rest` (`/oidc/{entry}/{start|callback}`).
pub(crate) async fn handle(
    rt: &Runtime,
    ctx: &mut RequestContext,
    headers: &HeaderMap,
    rest: &str,
) -> Result<Response<Body>, ProxyError> {
    let Some((entry, action)) = rest.strip_prefix("/oidc/").and_then(|r| r.rsplit_once('/')) else {
        return Err(not_found(ctx));
    };
    let Some(login) = rt
        .chain
        .entry(entry)
        .and_then(|e| e.backend.redirect_login())
    else {
        return Err(not_found(ctx));
    };
    if ctx.method != Method::GET && ctx.method != Method::HEAD {
        return Err(ProxyError::method_not_allowed(
            "GET, HEAD",
            format!("{} {}", ctx.method, ctx.path),
        ));
    }
    match action {
        "start" => start(rt, ctx, entry, login).await,
        "callback" => callback(rt, ctx, headers, entry, login).await,
        _ => Err(not_found(ctx)),
    }
}

/// The time limit of one call to the entry's provider: the chain entry's `timeout`.
fn entry_timeout(rt: &Runtime, entry: &str) -> std::time::Duration {
    rt.chain
        .entry(entry)
        .map(|e| e.timeout)
        .unwrap_or(std::time::Duration::from_secs(5))
}

fn not_found(ctx: &RequestContext) -> ProxyError {
    ProxyError::not_found(format!("no gateway endpoint at {}", ctx.path))
}

fn cookie_name(rt: &Runtime) -> String {
    format!("{}{COOKIE_SUFFIX}", rt.services.sessions.csrf_cookie_name())
}

/// The callback URL of `entry`, as registered at the provider.
pub(crate) fn redirect_uri(rt: &Runtime, entry: &str) -> String {
    let base = rt.public_url.as_str().trim_end_matches('/');
    let entry: String = url::form_urlencoded::byte_serialize(entry.as_bytes()).collect();
    format!("{base}{}/oidc/{entry}/callback", rt.prefix)
}

/// What the pre-login cookie holds: the pre-session cookie, the entry and `next`.
struct PreLogin<'a> {
    pair: &'a str,
    entry: String,
    next: String,
}

impl<'a> PreLogin<'a> {
    fn encode(pair: &str, entry: &str, next: &str) -> String {
        format!("{pair}~{}~{}", B64.encode(entry), B64.encode(next))
    }

    fn decode(value: &'a str) -> Option<PreLogin<'a>> {
        let mut parts = value.split('~');
        let (pair, entry, next) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let text = |s: &str| String::from_utf8(B64.decode(s).ok()?).ok();
        Some(PreLogin {
            pair,
            entry: text(entry)?,
            next: text(next)?,
        })
    }
}

fn binding(rt: &Runtime, entry: &str, pair: &str, state: &str) -> Option<LoginBinding> {
    let sessions = &rt.services.sessions;
    let derive = |purpose: &[u8]| {
        let mut p = purpose.to_vec();
        p.push(0);
        p.extend_from_slice(entry.as_bytes());
        sessions.pre_session_derived(pair, &p)
    };
    Some(LoginBinding {
        redirect_uri: redirect_uri(rt, entry),
        state: state.to_string(),
        nonce: derive(NONCE)?,
        pkce_verifier: derive(PKCE)?,
    })
}

async fn start(
    rt: &Runtime,
    ctx: &mut RequestContext,
    entry: &str,
    login: &dyn RedirectLogin,
) -> Result<Response<Body>, ProxyError> {
    let next = query_param(ctx, "next")
        .and_then(|n| crate::login::validate_next(&n, &rt.public_url, &rt.allowed_redirect_hosts))
        .unwrap_or_else(|| "/".to_string());
    let sessions = &rt.services.sessions;
    let (pair, state) = sessions.pre_session_csrf();
    let Some(binding) = binding(rt, entry, &pair, &state) else {
        return Err(ProxyError::internal("cannot derive the sign-on secrets"));
    };
    let timeout = entry_timeout(rt, entry);
    let url = match tokio::time::timeout(timeout, login.authorization_url(&binding)).await {
        Ok(Ok(url)) => url,
        result => {
            let error = match result {
                Ok(Err(e)) => e.to_string(),
                _ => format!("timed out after {timeout:?}"),
            };
            tracing::warn!(entry, %error, "single sign-on cannot start: provider unavailable");
            ctx.decision = "sso_unavailable";
            audit_failure(rt, ctx, LoginMethod::Sso, None, FailureReason::BackendError);
            return Ok(unavailable_page(rt, ctx, login, &next));
        }
    };
    ctx.decision = "sso_start";
    let value = PreLogin::encode(&pair, entry, &next);
    ctx.set_cookies
        .push(sessions.sso_cookie(&cookie_name(rt), Some(&value), rt.secure_cookies));
    Ok(redirect(StatusCode::SEE_OTHER, &url))
}

fn unavailable_page(
    rt: &Runtime,
    ctx: &mut RequestContext,
    login: &dyn RedirectLogin,
    next: &str,
) -> Response<Body> {
    let message = format!(
        "Sign-in with {} is unavailable right now. Please try again later.",
        login.label()
    );
    login_page(
        rt,
        ctx,
        Some(next),
        StatusCode::SERVICE_UNAVAILABLE,
        "",
        Some(&message),
    )
}

async fn callback(
    rt: &Runtime,
    ctx: &mut RequestContext,
    headers: &HeaderMap,
    entry: &str,
    login: &dyn RedirectLogin,
) -> Result<Response<Body>, ProxyError> {
    let sessions = &rt.services.sessions;
    let name = cookie_name(rt);
    // Whatever happens next, this attempt is over.
    ctx.set_cookies
        .push(sessions.sso_cookie(&name, None, rt.secure_cookies));
    let state = query_param(ctx, "state").unwrap_or_default();
    // Any of the cookies sent (a tossed one may come first) that pairs with `state`.
    let pre = crate::session::cookie_values(headers, &name)
        .iter()
        .take(4)
        .filter_map(|v| PreLogin::decode(v))
        .find(|p| p.entry == entry && sessions.verify_pre_session_csrf(p.pair, &state));
    let Some(pre) = pre else {
        tracing::info!(
            entry,
            "single sign-on callback without a matching pre-login cookie (expired, another browser, or forged)"
        );
        ctx.decision = "sso_state";
        audit_failure(rt, ctx, LoginMethod::Sso, None, FailureReason::SsoState);
        return Ok(login_page(
            rt,
            ctx,
            None,
            StatusCode::FORBIDDEN,
            "",
            Some("Your sign-in attempt expired or was started elsewhere. Please try again."),
        ));
    };
    let next = pre.next.clone();
    if let Some(error) = query_param(ctx, "error") {
        // The provider's words are logged, not shown: they may name internals.
        tracing::info!(entry, error = %error.escape_debug(), "the provider ended the sign-in with an error");
        ctx.decision = "sso_provider_error";
        audit_failure(
            rt,
            ctx,
            LoginMethod::Sso,
            None,
            FailureReason::ProviderRefused,
        );
        let message = if error == "access_denied" {
            format!("Sign-in with {} was cancelled or refused.", login.label())
        } else {
            format!(
                "Sign-in with {} did not complete. Please try again.",
                login.label()
            )
        };
        return Ok(login_page(
            rt,
            ctx,
            Some(&next),
            StatusCode::UNAUTHORIZED,
            "",
            Some(&message),
        ));
    }
    let Some(code) = query_param(ctx, "code").filter(|c| !c.is_empty() && c.len() <= 4096) else {
        ctx.decision = "sso_no_code";
        audit_failure(
            rt,
            ctx,
            LoginMethod::Sso,
            None,
            FailureReason::ProviderRefused,
        );
        return Ok(login_page(
            rt,
            ctx,
            Some(&next),
            StatusCode::BAD_REQUEST,
            "",
            Some("The sign-in response could not be read. Please try again."),
        ));
    };
    let Some(binding) = binding(rt, entry, pre.pair, &state) else {
        return Err(ProxyError::internal("cannot derive the sign-on secrets"));
    };
    let timeout = entry_timeout(rt, entry);
    let iss = query_param(ctx, "iss");
    let finished = tokio::time::timeout(timeout, login.finish(&binding, &code, iss.as_deref()));
    let SignIn { outcome, tokens } = match finished.await {
        Ok(signed_in) => signed_in,
        Err(_) => Outcome::Unavailable(auth_core::BackendError::timeout(timeout)).into(),
    };
    let trace = |label: &'static str, detail: Option<String>| auth_core::TraceStep {
        entry: entry.to_string(),
        outcome: label,
        detail,
        elapsed: ctx.started.elapsed(),
    };
    let step = match &outcome {
        Outcome::Denied(reason) => trace(outcome.label(), Some(reason.clone())),
        Outcome::Unavailable(e) => trace(outcome.label(), Some(e.to_string())),
        other => trace(other.label(), None),
    };
    ctx.trace = vec![step];
    match outcome {
        Outcome::Authenticated(mut user) => {
            user.backend = entry.to_string();
            crate::request::identify::provision(rt, &user).await;
            rt.services.audit.emit(Event::LoginSuccess {
                method: LoginMethod::Sso,
                user: &user.username,
                backend: entry,
                client_ip: ctx.client_ip,
                trace: &ctx.trace,
            });
            start_session(rt, ctx, headers, Arc::new(user), Some(&tokens), Some(&next)).await
        }
        Outcome::Unavailable(e) => {
            tracing::warn!(entry, error = %e, "single sign-on failed: provider unavailable");
            ctx.decision = "sso_unavailable";
            Ok(unavailable_page(rt, ctx, login, &next))
        }
        Outcome::Denied(reason) => {
            tracing::info!(entry, %reason, "single sign-on: user not allowed");
            ctx.decision = "sso_denied";
            audit_failure(rt, ctx, LoginMethod::Sso, None, FailureReason::Denied);
            Ok(login_page(
                rt,
                ctx,
                Some(&next),
                StatusCode::FORBIDDEN,
                "",
                Some("Your account is not allowed to sign in here."),
            ))
        }
        Outcome::Rejected | Outcome::NotFound => {
            ctx.decision = "sso_failed";
            audit_failure(
                rt,
                ctx,
                LoginMethod::Sso,
                None,
                FailureReason::ProviderRefused,
            );
            let message = format!("Sign-in with {} failed. Please try again.", login.label());
            Ok(login_page(
                rt,
                ctx,
                Some(&next),
                StatusCode::UNAUTHORIZED,
                "",
                Some(&message),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::PreLogin;

    #[test]
    fn the_pre_login_cookie_round_trips_and_refuses_other_shapes() {
        let value = PreLogin::encode("payload.mac", "corp", "/app?x=1&y=~2");
        let back = PreLogin::decode(&value).expect("decodes");
        assert_eq!(back.pair, "payload.mac");
        assert_eq!(back.entry, "corp");
        assert_eq!(back.next, "/app?x=1&y=~2");
        for bad in ["", "a~b", "a~b~c~d", "p~!!~Lw", "p~Y29ycA~%%"] {
            assert!(PreLogin::decode(bad).is_none(), "{bad}");
        }
        // Not UTF-8 once decoded.
        assert!(PreLogin::decode("p~_w~Lw").is_none());
    }
}

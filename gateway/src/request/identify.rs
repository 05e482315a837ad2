//! Phase 3, **identify**: who is asking.
//!
//! Contract:
//! - the session cookie first: the store is asked (a store error is `503`, fail closed); a
//!   session due for revalidation is re-read through `chain.get_user(entry, id)`; a user gone,
//!   an entry gone from the chain or a changed credential version destroys the session and the
//!   request continues as anonymous (with the cookie cleared);
//! - else `Authorization: Bearer` (a token for the backends that accept tokens; cached, no
//!   lockout since there is no username; a malformed token is `400`);
//! - else `Authorization: Basic` when `login.basic_auth` is on: malformed (not base64, no `:`,
//!   not UTF-8, longer than [`MAX_AUTHORIZATION_BYTES`]) is `400` — never anonymous-then-2xx; a locked
//!   (username, client IP) pair or client is answered like a wrong password, in as much time,
//!   without running the chain;
//!   a cached success is used; otherwise the chain runs (backends hash passwords off the
//!   reactor) and failures count towards the lockout;
//! - else, when `Authorization` brought no credentials this config reads, an API key from a
//!   `login.api_key_headers` header (for the backends that accept `api_key`; no lockout; two
//!   values, in one header or across several, are `400`: which key was meant is never guessed).
//!   A success is cached for at most [`API_KEY_CACHE_TTL`], whatever `cache.credentials_ttl`
//!   says, so a revoked key is refused within that time on every replica sharing the store.
//!   Token and key logins make no session;
//! - a chain `Unavailable` is `503`; `Rejected`, `NotFound`, `Denied` leave the request
//!   anonymous (the challenge follows);
//! - every password, token or key checked here is audited ([`crate::audit`]) with its outcome
//!   and, for a failure, its reason (wrong password, unknown user, locked, policy, denied,
//!   backend error), also noted in the context for the metrics; a success answered from the
//!   credential cache is not audited again. A session that revalidation ends is audited, and
//!   so are the lockouts a failure starts (and their end when they run out);
//! - whatever identified the request, the credential headers read here are never forwarded
//!   (forward removes them: `Authorization` unless `upstream.pass_authorization`, the API-key
//!   headers always).

use std::sync::Arc;

use auth_core::{ChainOutcome, Credentials, Outcome, User};
use base64::Engine;
use http::HeaderMap;
use http::header::{self, HeaderName};

use super::context::{IdentitySource, RequestContext};
use super::error::ProxyError;
use crate::audit::{Event, FailureReason, LockEnd, LockScope, LoginMethod, SessionEnd};
use crate::credential_cache::CacheHit;
use crate::runtime::Runtime;
use crate::session::{CookieLookup, RefreshTurn, Session};

/// The longest an API-key success is cached, whatever `cache.credentials_ttl` says: the bound
/// on how long a revoked key keeps working.
pub(crate) const API_KEY_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// The longest `Authorization` value accepted.
pub(crate) const MAX_AUTHORIZATION_BYTES: usize = 4096;

/// `Authorization` could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AuthorizationError {
    /// Over [`MAX_AUTHORIZATION_BYTES`].
    #[error("Basic credentials too long")]
    TooLong,
    /// Not base64.
    #[error("Basic credentials are not base64")]
    Base64,
    /// Not UTF-8.
    #[error("Basic credentials are not UTF-8")]
    Utf8,
    /// No `:`.
    #[error("Basic credentials have no `:`")]
    NoColon,
    /// Several `Authorization` headers.
    #[error("several Authorization headers")]
    Duplicate,
    /// `Bearer` without a well-formed token.
    #[error("malformed Bearer token")]
    Bearer,
    /// Several API-key values (one header repeated, or several configured headers).
    #[error("several API keys")]
    SeveralApiKeys,
    /// An API-key value that is not visible ASCII.
    #[error("malformed API key")]
    ApiKey,
}

/// Reads the API key from the configured `headers` (`login.api_key_headers`): `Ok(None)` when
/// none is present; more than one value in all is an error, never a choice.
pub(crate) fn api_key_credentials(
    headers: &HeaderMap,
    names: &[HeaderName],
) -> Result<Option<Credentials>, AuthorizationError> {
    let mut found = None;
    for name in names {
        for value in headers.get_all(name) {
            if found.is_some() {
                return Err(AuthorizationError::SeveralApiKeys);
            }
            found = Some((name, value));
        }
    }
    let Some((name, value)) = found else {
        return Ok(None);
    };
    if value.len() > MAX_AUTHORIZATION_BYTES {
        return Err(AuthorizationError::TooLong);
    }
    let key = value
        .to_str()
        .map_err(|_| AuthorizationError::ApiKey)?
        .trim_matches(is_ows);
    Ok(Some(Credentials::ApiKey {
        header: name.as_str().to_string(),
        key: key.to_string(),
    }))
}

/// Reads `Authorization: Basic` (password credentials) or `Authorization: Bearer` (a token):
/// `Ok(None)` when absent or another scheme.
pub(crate) fn authorization_credentials(
    headers: &HeaderMap,
) -> Result<Option<Credentials>, AuthorizationError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(AuthorizationError::Duplicate);
    }
    if value.len() > MAX_AUTHORIZATION_BYTES {
        return Err(AuthorizationError::TooLong);
    }
    let bytes = value.as_bytes();
    let Some(space) = bytes.iter().position(|b| *b == b' ') else {
        return Ok(None);
    };
    if bytes[..space].eq_ignore_ascii_case(b"bearer") {
        let token = std::str::from_utf8(&bytes[space + 1..])
            .map_err(|_| AuthorizationError::Bearer)?
            .trim_matches(is_ows);
        // RFC 6750 b68token: no spaces, controls or other separators.
        let token68 = !token.is_empty()
            && token.trim_end_matches('=').bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
            });
        if !token68 {
            return Err(AuthorizationError::Bearer);
        }
        return Ok(Some(Credentials::Bearer(token.to_string())));
    }
    if !bytes[..space].eq_ignore_ascii_case(b"basic") {
        return Ok(None);
    }
    let encoded = std::str::from_utf8(&bytes[space + 1..])
        .map_err(|_| AuthorizationError::Base64)?
        .trim_matches(is_ows);
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| AuthorizationError::Base64)?;
    let text = String::from_utf8(decoded).map_err(|_| AuthorizationError::Utf8)?;
    let (user, password) = text.split_once(':').ok_or(AuthorizationError::NoColon)?;
    Ok(Some(Credentials::password(user, password)))
}

/// HTTP optional whitespace (space, tab): the only padding allowed around credentials. A wider
/// `trim()` would also strip Unicode spaces (U+00A0...) that proxies in front do not.
fn is_ows(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// The result of the chain, reduced to what the request path needs.
#[derive(Debug)]
pub(crate) enum ChainVerdict {
    /// Authenticated.
    User(User),
    /// Wrong credentials, unknown user or denied: anonymous.
    Refused,
}

/// Maps a chain outcome: `Unavailable` is a 503.
pub(crate) fn verdict(outcome: ChainOutcome) -> Result<ChainVerdict, ProxyError> {
    match outcome {
        ChainOutcome::Authenticated { user, .. } => Ok(ChainVerdict::User(user)),
        ChainOutcome::Unavailable { entry, error } => Err(ProxyError::unavailable(format!(
            "backend `{entry}` unavailable: {error}"
        ))),
        ChainOutcome::Rejected | ChainOutcome::NotFound | ChainOutcome::Denied { .. } => {
            Ok(ChainVerdict::Refused)
        }
    }
}

/// Runs the phase: fills `ctx.user` (and `ctx.session`) or leaves the request anonymous.
pub(crate) async fn identify(
    rt: &Runtime,
    ctx: &mut RequestContext,
    headers: &HeaderMap,
) -> Result<(), ProxyError> {
    if identify_session(rt, ctx, headers).await? {
        return Ok(());
    }
    let bad = |e: AuthorizationError| ProxyError::bad_request(e.to_string());
    let mut creds = authorization_credentials(headers).map_err(bad)?;
    // `Authorization` first; an API key only when it brought nothing this config reads.
    let read = match &creds {
        Some(Credentials::Bearer(_)) => true,
        Some(Credentials::Password { .. }) => rt.config.login.basic_auth,
        _ => false,
    };
    if !read {
        creds = api_key_credentials(headers, rt.credentials.api_keys()).map_err(bad)?;
    }
    match creds {
        Some(creds @ Credentials::Password { .. }) if rt.config.login.basic_auth => {
            // Boxed (as below): a chain run's state is large; the session path should not carry
            // it in its future.
            if let Some(user) =
                super::boxed(|| authenticate_password(rt, ctx, &creds, LoginMethod::Basic)).await?
            {
                ctx.user = Some(user);
                ctx.identity = Some(IdentitySource::Basic);
            }
        }
        Some(creds @ Credentials::Bearer(_)) => {
            if let Some(user) = super::boxed(|| authenticate_token(rt, ctx, &creds)).await? {
                ctx.user = Some(user);
                ctx.identity = Some(IdentitySource::Bearer);
            }
        }
        Some(creds @ Credentials::ApiKey { .. }) => {
            if let Some(user) = super::boxed(|| authenticate_token(rt, ctx, &creds)).await? {
                ctx.user = Some(user);
                ctx.identity = Some(IdentitySource::ApiKey);
            }
        }
        _ => {}
    }
    Ok(())
}

/// Only the session part of identify (logout: Basic credentials do not make a session).
pub(crate) async fn identify_session_only(
    rt: &Runtime,
    ctx: &mut RequestContext,
    headers: &HeaderMap,
) -> Result<(), ProxyError> {
    identify_session(rt, ctx, headers).await.map(|_| ())
}

/// The session part of identify. Returns whether a live session identified the user.
async fn identify_session(
    rt: &Runtime,
    ctx: &mut RequestContext,
    headers: &HeaderMap,
) -> Result<bool, ProxyError> {
    let sessions = &rt.services.sessions;
    let (cookie, session) = match sessions.lookup(headers).await.map_err(store_down)? {
        CookieLookup::Absent => return Ok(false),
        CookieLookup::Invalid => {
            ctx.set_cookies
                .push(sessions.clear_cookie(rt.secure_cookies));
            return Ok(false);
        }
        CookieLookup::Valid { value, session } => (value, *session),
        CookieLookup::Ambiguous => {
            tracing::warn!("several session cookies load different sessions (cookie tossing?)");
            return Err(ProxyError::bad_request(
                "several different session cookies: clear this site's cookies and sign in again",
            ));
        }
    };
    let mut session = session;
    // Replicas sharing a Redis store take turns to refresh a session at its provider.
    let mut refreshing = false;
    if sessions.needs_revalidation(&session)
        && session.provider_tokens().is_some()
        && let Some(entry) = rt.chain.entry(&session.entry)
    {
        match sessions
            .refresh_turn(&session, entry.timeout + REFRESH_LOCK_MARGIN)
            .await
            .map_err(store_down)?
        {
            RefreshTurn::Mine => refreshing = true,
            RefreshTurn::Refreshed(newer) => session = *newer,
        }
    }
    // The session's new cookie value (`cookie` store) after it was touched or revalidated.
    let reissued;
    let user = if sessions.needs_revalidation(&session) || rt.chain.entry(&session.entry).is_none()
    {
        let revalidated = super::boxed(|| revalidate(rt, &session)).await;
        if refreshing && !matches!(revalidated, Ok(Revalidated::User(..))) {
            sessions.refresh_done(&session).await;
        }
        match revalidated? {
            Revalidated::User(user, tokens) => {
                reissued = sessions
                    .revalidated_with_tokens(&session, &user, tokens.as_ref())
                    .await;
                if refreshing {
                    sessions.refresh_done(&session).await;
                }
                Arc::new(*user)
            }
            Revalidated::Ended(reason) => {
                rt.services.audit.emit(Event::SessionEnded {
                    user: &session.user.username,
                    backend: &session.entry,
                    reason,
                    client_ip: ctx.client_ip,
                });
                tracing::info!(
                    entry = &*session.entry,
                    user = %session.user.username,
                    ?reason,
                    "session void: user gone, entry gone, credentials changed or refresh refused"
                );
                rt.services
                    .cache
                    .invalidate_user(&session.entry, session.user_id());
                sessions.destroy(&cookie).await.map_err(store_down)?;
                ctx.set_cookies
                    .push(sessions.clear_cookie(rt.secure_cookies));
                return Ok(false);
            }
        }
    } else {
        reissued = sessions.touch(&session).await;
        // Shared with the session (and the memory store): no copy.
        session.user.clone()
    };
    if let Some(v) = reissued {
        ctx.set_cookies
            .push(sessions.set_cookie(&v, rt.secure_cookies));
    }
    ctx.user = Some(user);
    ctx.identity = Some(IdentitySource::Session);
    ctx.session = Some(session);
    ctx.session_cookie = Some(cookie);
    Ok(true)
}

/// How much longer than the entry's `timeout` a replica holds a session's refresh lock.
const REFRESH_LOCK_MARGIN: std::time::Duration = std::time::Duration::from_secs(2);

/// What revalidating a session found.
enum Revalidated {
    /// The user, now; and the provider's new tokens when a refresh rotated them.
    User(Box<User>, Option<auth_core::ProviderTokens>),
    /// The session must end.
    Ended(SessionEnd),
}

/// Restores the user of `session` once `session.revalidate` has passed: through the entry's
/// redirect login when the session holds provider tokens to refresh
/// ([`auth_core::RedirectLogin::revalidate`]; the refreshed user is provisioned as at login),
/// else through `get_user`. A provider that cannot be reached follows the entry's `on_error`:
/// `deny` answers 503 (the session stays), `next` restores the user through `get_user`.
async fn revalidate(rt: &Runtime, session: &Session) -> Result<Revalidated, ProxyError> {
    let Some(entry) = rt.chain.entry(&session.entry) else {
        return Ok(Revalidated::Ended(SessionEnd::EntryGone));
    };
    let unavailable = |e: &dyn std::fmt::Display| {
        ProxyError::unavailable(format!(
            "revalidating a session through `{}`: {e}",
            &session.entry
        ))
    };
    if let (Some(login), Some(tokens)) = (entry.backend.redirect_login(), session.provider_tokens())
    {
        let checked =
            tokio::time::timeout(entry.timeout, login.revalidate(session.user_id(), tokens));
        let signed_in = match checked.await {
            Ok(signed_in) => signed_in,
            Err(_) => {
                Some(Outcome::Unavailable(auth_core::BackendError::timeout(entry.timeout)).into())
            }
        };
        if let Some(auth_core::SignIn { outcome, tokens }) = signed_in {
            match outcome {
                Outcome::Authenticated(mut user) => {
                    user.backend = entry.name.clone();
                    provision(rt, &user).await;
                    return Ok(Revalidated::User(Box::new(user), Some(tokens)));
                }
                Outcome::Rejected => return Ok(Revalidated::Ended(SessionEnd::RefreshRefused)),
                Outcome::Denied(_) => return Ok(Revalidated::Ended(SessionEnd::NotAllowed)),
                Outcome::NotFound => return Ok(Revalidated::Ended(SessionEnd::UserGone)),
                Outcome::Unavailable(e) if entry.on_error == auth_core::OnError::Deny => {
                    return Err(unavailable(&e));
                }
                Outcome::Unavailable(e) => {
                    tracing::warn!(
                        entry = &*session.entry,
                        error = %e,
                        "cannot refresh a session at the provider; on_error: next, restored from the user store"
                    );
                }
            }
        }
    }
    let fresh = super::boxed(|| rt.chain.get_user(&session.entry, session.user_id()))
        .await
        .map_err(|e| unavailable(&e))?;
    let sessions = &rt.services.sessions;
    Ok(match fresh {
        Some(user) if sessions.version_matches(session, user.credential_version.as_deref()) => {
            Revalidated::User(Box::new(user), None)
        }
        None => Revalidated::Ended(SessionEnd::UserGone),
        Some(_) => Revalidated::Ended(SessionEnd::CredentialsChanged),
    })
}

/// The cache's "username" for bearer tokens: no Basic username can carry a NUL and a colon.
const BEARER_CACHE_USER: &str = "\0bearer:";

/// The same for API keys, followed by the header's name.
const API_KEY_CACHE_USER: &str = "\0api_key:";

/// Checks a bearer token or an API key through the chain (backends that do not accept the kind
/// are skipped); results are cached for at most [`API_KEY_CACHE_TTL`] (a token's `exp` and a
/// key's revocation are not known to the cache), and the entry's `provision` applies as for a
/// password. There is no username, so no lockout.
async fn authenticate_token(
    rt: &Runtime,
    ctx: &mut RequestContext,
    creds: &Credentials,
) -> Result<Option<Arc<User>>, ProxyError> {
    let method = match creds {
        Credentials::ApiKey { .. } => LoginMethod::ApiKey,
        _ => LoginMethod::Bearer,
    };
    let (cache_user, token, max_ttl) = match creds {
        // A token carries its own expiry, which the cache does not know: a short TTL keeps an
        // expired or revoked token from outliving its `exp` by more than a second.
        Credentials::Bearer(token) => (
            std::borrow::Cow::Borrowed(BEARER_CACHE_USER),
            token,
            Some(API_KEY_CACHE_TTL),
        ),
        // Per header: a backend may take a key in one header and not another.
        Credentials::ApiKey { header, key } => (
            std::borrow::Cow::Owned(format!("{API_KEY_CACHE_USER}{header}")),
            key,
            Some(API_KEY_CACHE_TTL),
        ),
        Credentials::Password { .. } => return Ok(None),
    };
    let cache = &rt.services.cache;
    match cache.get(&cache_user, token.as_bytes()) {
        Some(CacheHit::Success(hit)) => return Ok(Some(hit.user.clone())),
        Some(CacheHit::Failure) => {
            audit_failure(rt, ctx, method, None, FailureReason::CachedFailure);
            return Ok(None);
        }
        None => {}
    }
    let context = auth_core::Context {
        client_ip: Some(ctx.client_ip),
        entry: String::new(),
    };
    let result = rt.chain.authenticate(creds, &context).await;
    ctx.trace = result.trace;
    match audited_verdict(rt, ctx, method, None, result.outcome)? {
        ChainVerdict::User(user) => {
            provision(rt, &user).await;
            cache.insert_success_within(
                &cache_user,
                token.as_bytes(),
                &user.backend,
                &user,
                user.credential_version.as_deref(),
                max_ttl,
            );
            Ok(Some(Arc::new(user)))
        }
        ChainVerdict::Refused => {
            cache.insert_failure_within(&cache_user, token.as_bytes(), max_ttl);
            Ok(None)
        }
    }
}

/// Checks a username and password: the credential policy first (refused at once, whatever the
/// lockout says), then the lockout (a locked pair or client is refused without running the
/// chain, exactly like a wrong password and after as long as one takes), then the
/// credential cache for Basic (the form always runs the chain), then the chain. Failures count
/// towards the lockout; `Unavailable` (chain or lockout store) is 503. Every outcome but a
/// cached success is audited.
pub(crate) async fn authenticate_password(
    rt: &Runtime,
    ctx: &mut RequestContext,
    creds: &Credentials,
    method: LoginMethod,
) -> Result<Option<Arc<User>>, ProxyError> {
    let Credentials::Password { username, password } = creds else {
        return Ok(None);
    };
    let use_cache = method == LoginMethod::Basic;
    let attempted = Some(username.as_str());
    let services = &rt.services;
    let context = auth_core::Context {
        client_ip: Some(ctx.client_ip),
        entry: String::new(),
    };
    // Credentials the policy refuses are refused at once, locked account or not, before the
    // lockout is asked: otherwise an empty password would answer at once for an open account
    // and after the locked delay for a locked one, and tell which is which. They never reach a
    // backend, so they neither count towards the lockout nor feed its delay samples.
    if auth_core::policy::check(creds).is_err() {
        ctx.trace = rt.chain.authenticate(creds, &context).await.trace;
        audit_failure(rt, ctx, method, attempted, FailureReason::Policy);
        return Ok(None);
    }
    if services
        .lockout
        .is_locked(username, ctx.client_ip)
        .await
        .map_err(lockout_down)?
    {
        ctx.locked = true;
        audit_failure(rt, ctx, method, attempted, FailureReason::Locked);
        tokio::time::sleep(services.lockout.refusal_delay()).await;
        return Ok(None);
    }
    if use_cache {
        match services.cache.get(username, password.as_bytes()) {
            Some(CacheHit::Success(hit)) => return Ok(Some(hit.user.clone())),
            Some(CacheHit::Failure) => {
                audit_failure(rt, ctx, method, attempted, FailureReason::CachedFailure);
                return Ok(None);
            }
            None => {}
        }
    }
    let started = std::time::Instant::now();
    let result = rt.chain.authenticate(creds, &context).await;
    ctx.trace = result.trace;
    match audited_verdict(rt, ctx, method, attempted, result.outcome)? {
        ChainVerdict::User(user) => {
            if let Err(e) = services
                .lockout
                .record_success(username, ctx.client_ip)
                .await
            {
                tracing::warn!(error = %e, "could not reset the lockout counter");
            }
            provision(rt, &user).await;
            if use_cache {
                services.cache.insert_success(
                    username,
                    password.as_bytes(),
                    &user.backend,
                    &user,
                    user.credential_version.as_deref(),
                );
            }
            Ok(Some(Arc::new(user)))
        }
        ChainVerdict::Refused => {
            let record = services
                .lockout
                .record_failure_detail(username, ctx.client_ip)
                .await
                .map_err(lockout_down)?;
            services.lockout.note_refusal(started.elapsed());
            ctx.locked = record.locked;
            for lock in record.started {
                audit_lockout(rt, lock);
            }
            if use_cache {
                services.cache.insert_failure(username, password.as_bytes());
            }
            Ok(None)
        }
    }
}

/// [`verdict`], auditing the login's success or failure (`attempted` is the username typed, if
/// any).
fn audited_verdict(
    rt: &Runtime,
    ctx: &mut RequestContext,
    method: LoginMethod,
    attempted: Option<&str>,
    outcome: ChainOutcome,
) -> Result<ChainVerdict, ProxyError> {
    if let ChainOutcome::Authenticated { user, entry } = &outcome {
        rt.services.audit.emit(Event::LoginSuccess {
            method,
            user: &user.username,
            backend: entry,
            client_ip: ctx.client_ip,
            trace: &ctx.trace,
        });
    } else {
        let reason = FailureReason::of(&outcome, &ctx.trace);
        audit_failure(rt, ctx, method, attempted, reason);
    }
    verdict(outcome)
}

/// Notes a failed login for the metrics and audits it.
pub(crate) fn audit_failure(
    rt: &Runtime,
    ctx: &mut RequestContext,
    method: LoginMethod,
    attempted: Option<&str>,
    reason: FailureReason,
) {
    ctx.auth_failure = Some(reason);
    rt.services.audit.emit(Event::LoginFailure {
        method,
        attempted,
        reason,
        client_ip: ctx.client_ip,
        trace: &ctx.trace,
    });
}

/// Audits a lockout that just started, and its end when its time runs out (unless an operator
/// cleared it first).
fn audit_lockout(rt: &Runtime, lock: crate::protection::LockStarted) {
    let scope = if lock.user.is_some() {
        LockScope::User
    } else {
        LockScope::Client
    };
    let audit = rt.services.audit.clone();
    audit.emit(Event::LockoutStart {
        scope,
        user: lock.user.as_deref(),
        client_ip: &lock.client,
        seconds: lock.lasts.as_secs(),
    });
    if !audit.enabled() {
        return;
    }
    let lockout = rt.services.lockout.clone();
    tokio::spawn(async move {
        // A little after the end, so the store agrees it is over.
        tokio::time::sleep(lock.lasts + std::time::Duration::from_millis(50)).await;
        if lockout.ran_out(&lock) {
            audit.emit(Event::LockoutEnd {
                scope,
                user: lock.user.as_deref(),
                client_ip: &lock.client,
                reason: LockEnd::Expired,
            });
        }
    });
}

/// Mirrors a user the chain just authenticated into the local store when their entry says
/// `provision: create | update`. A failure is logged and does not refuse the login.
pub(crate) async fn provision(rt: &Runtime, user: &User) {
    let Some(entry) = rt.chain.entry(&user.backend) else {
        return;
    };
    if entry.provision == auth_core::Provision::None {
        return;
    }
    let Some(store) = &rt.services.users else {
        tracing::warn!(entry = %entry.name, "provisioning configured but no user store is open");
        return;
    };
    if let Err(e) = auth_backends::provision(store, user, &entry.name, entry.provision).await {
        tracing::warn!(entry = %entry.name, user = %user.username, error = %e, "provisioning failed");
    }
}

/// A session store failure: 503.
pub(crate) fn store_down(e: crate::session::SessionError) -> ProxyError {
    ProxyError::unavailable(format!("session store: {e}"))
}

fn lockout_down(e: crate::protection::ProtectionError) -> ProxyError {
    ProxyError::unavailable(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn with(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn reads_basic() {
        let c = authorization_credentials(&with("Basic YWxpY2U6cDpx"))
            .unwrap()
            .unwrap();
        assert_eq!(c, Credentials::password("alice", "p:q"));
        assert_eq!(authorization_credentials(&HeaderMap::new()).unwrap(), None);
    }

    #[test]
    fn only_spaces_and_tabs_pad_credentials() {
        // Found by fuzzing: `trim()` also removed U+00A0 around the token.
        let nbsp = HeaderValue::from_bytes(b"Basic YWxpY2U6cHc= \xc2\xa0").unwrap();
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, nbsp);
        assert_eq!(
            authorization_credentials(&h),
            Err(AuthorizationError::Base64)
        );
        let nbsp = HeaderValue::from_bytes(b"Bearer tok-alice\xc2\xa0").unwrap();
        h.insert(header::AUTHORIZATION, nbsp);
        assert_eq!(
            authorization_credentials(&h),
            Err(AuthorizationError::Bearer)
        );
        assert_eq!(
            authorization_credentials(&with("Basic \t YWxpY2U6cHc= \t")).unwrap(),
            Some(Credentials::password("alice", "pw"))
        );
    }

    #[test]
    fn one_api_key_is_read_from_the_configured_headers() {
        let names = [
            HeaderName::from_static("x-api-key"),
            HeaderName::from_static("x-other-key"),
        ];
        let mut h = HeaderMap::new();
        assert_eq!(api_key_credentials(&h, &names), Ok(None));
        h.insert("x-other-key", HeaderValue::from_static(" ag_1_2\t"));
        assert_eq!(
            api_key_credentials(&h, &names),
            Ok(Some(Credentials::ApiKey {
                header: "x-other-key".into(),
                key: "ag_1_2".into()
            }))
        );
        assert_eq!(api_key_credentials(&h, &[]), Ok(None));
        let mut two = h.clone();
        two.append("x-other-key", HeaderValue::from_static("ag_1_2"));
        assert_eq!(
            api_key_credentials(&two, &names),
            Err(AuthorizationError::SeveralApiKeys)
        );
        h.insert("x-api-key", HeaderValue::from_static("k"));
        assert_eq!(
            api_key_credentials(&h, &names),
            Err(AuthorizationError::SeveralApiKeys)
        );
        let mut bad = HeaderMap::new();
        bad.insert("x-api-key", HeaderValue::from_bytes(b"k\xc3\xa9").unwrap());
        assert_eq!(
            api_key_credentials(&bad, &names),
            Err(AuthorizationError::ApiKey)
        );
    }

    #[test]
    fn malformed_basic_is_an_error() {
        assert_eq!(
            authorization_credentials(&with("Basic !!!")),
            Err(AuthorizationError::Base64)
        );
        // "alice" without colon
        assert_eq!(
            authorization_credentials(&with("Basic YWxpY2U=")),
            Err(AuthorizationError::NoColon)
        );
        // 0xff 0x3a
        assert_eq!(
            authorization_credentials(&with("Basic /zo=")),
            Err(AuthorizationError::Utf8)
        );
        assert_eq!(
            authorization_credentials(&with("Bearer a b")),
            Err(AuthorizationError::Bearer)
        );
        assert_eq!(
            authorization_credentials(&with("Bearer ")),
            Err(AuthorizationError::Bearer)
        );
        assert_eq!(
            authorization_credentials(&with("Bearer abc.DEF-_~+/==")).unwrap(),
            Some(Credentials::Bearer("abc.DEF-_~+/==".into()))
        );
        let long = format!("Basic {}", "A".repeat(MAX_AUTHORIZATION_BYTES));
        assert_eq!(
            authorization_credentials(&with(&long)),
            Err(AuthorizationError::TooLong)
        );
        let mut two = with("Basic YWxpY2U6cA==");
        two.append(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic YQ=="),
        );
        assert_eq!(
            authorization_credentials(&two),
            Err(AuthorizationError::Duplicate)
        );
    }
}

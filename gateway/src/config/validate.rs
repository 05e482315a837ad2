//! Semantic checks run once the file parses: every problem is reported, not just the first.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;

use auth_core::registry::BackendRegistration;
use auth_core::{CredentialKind, Provision, Service};
use auth_storage::StoreUrl;
use http::HeaderName;
use serde_saphyr::{Location, Spanned};

use super::Diagnostic;
use super::key_locations::KeyLocations;
use super::load::location;
use super::model::{Access, Config, RouteConfig, SecureSetting, StoreSetting};
use super::typed::Parsed;
use crate::request::sanitize;

/// The shortest session secret accepted, in bytes.
pub(super) const MIN_SECRET_BYTES: usize = 32;

struct Checker<'a> {
    file: &'a Path,
    keys: &'a KeyLocations,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

impl Checker<'_> {
    fn key(&self, path: &str) -> Location {
        self.keys.at(path)
    }

    fn error(&mut self, at: Location, message: impl Into<String>) {
        self.errors.push(Diagnostic::error(self.file, at, message));
    }

    fn warn(&mut self, at: Location, message: impl Into<String>) {
        self.warnings
            .push(Diagnostic::warning(self.file, at, message));
    }
}

/// Checks a parsed config; returns `(errors, warnings)`.
pub(crate) fn check(
    config: &Config,
    registrations: &[Option<&'static BackendRegistration>],
    file: &Path,
    base_dir: &Path,
    keys: &KeyLocations,
) -> (Vec<Diagnostic>, Vec<Diagnostic>) {
    let mut c = Checker {
        file,
        keys,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    server(&mut c, config, base_dir);
    upstream(&mut c, config);
    identity_headers(&mut c, config);
    assertion_key(&mut c, config, base_dir);
    session(&mut c, config);
    login(&mut c, config, base_dir);
    protection(&mut c, config);
    redis_ca_file(
        &mut c,
        base_dir,
        "session",
        &config.session.store,
        config.session.redis_ca_file.as_ref(),
    );
    redis_ca_file(
        &mut c,
        base_dir,
        "protection",
        &config.protection.store,
        config.protection.redis_ca_file.as_ref(),
    );
    users_db(&mut c, config);
    chain(&mut c, config, registrations);
    routes(&mut c, config);
    method_fall_through(&mut c, config);
    (c.errors, c.warnings)
}

fn listen_address(
    c: &mut Checker<'_>,
    what: &str,
    addr: &Spanned<Parsed<SocketAddr>>,
) -> Option<SocketAddr> {
    let parsed = addr.value.get().copied();
    if parsed.is_none() {
        c.error(
            location(addr),
            format!(
                "invalid {what} address `{}`; expected IP:PORT, e.g. `127.0.0.1:8080` or `[::1]:8080`",
                addr.value
            ),
        );
    }
    parsed
}

fn server(c: &mut Checker<'_>, config: &Config, base_dir: &Path) {
    let server = &config.server;
    let listens = server.listen.to_vec();
    if listens.is_empty() {
        c.error(
            c.key("server.listen"),
            "`server.listen` is empty; give at least one address",
        );
    }
    let mut seen: HashSet<SocketAddr> = HashSet::new();
    for addr in listens {
        if let Some(a) = listen_address(c, "listen", addr) {
            if a.port() != 0 && !seen.insert(a) {
                c.error(
                    location(addr),
                    format!("listen address `{a}` is given twice"),
                );
            }
            if let Some(admin) = &config.admin
                && a.port() != 0
                && admin.listen.value.get() == Some(&a)
            {
                c.error(
                    location(&admin.listen),
                    format!("the admin listener cannot share `{a}` with `server.listen`"),
                );
            }
        }
    }
    if let Some(admin) = &config.admin {
        listen_address(c, "admin listen", &admin.listen);
    }

    let public_url = &server.public_url;
    match public_url.value.get() {
        Some(u) if (u.scheme() == "http" || u.scheme() == "https") && u.has_host() => {
            if u.query().is_some() || u.fragment().is_some() {
                c.error(
                    location(public_url),
                    format!("`public_url` `{}` must not have a query or fragment", public_url.value),
                );
            }
            if u.scheme() == "http" && server.tls.is_some() {
                c.warn(
                    location(public_url),
                    "`public_url` is http:// but `server.tls` is set; use https://",
                );
            }
        }
        _ => c.error(
            location(public_url),
            format!(
                "`public_url` must be an absolute http(s) URL such as `https://gw.example.org`, not `{}`",
                public_url.value
            ),
        ),
    }

    for cidr in &server.trusted_proxies {
        let text = cidr.value.written().trim();
        if cidr.value.get().is_none() {
            c.error(
                location(cidr),
                format!(
                    "invalid CIDR `{}` in `trusted_proxies`; expected e.g. `10.0.0.0/8` or `192.168.1.10`",
                    cidr.value
                ),
            );
        } else if text.ends_with("/0") {
            c.warn(
                location(cidr),
                format!(
                    "`{text}` trusts X-Forwarded-For from every address; clients can spoof their IP"
                ),
            );
        }
    }

    if let Some(tls) = &server.tls {
        for (what, path) in [("certificate", &tls.cert), ("key", &tls.key)] {
            let resolved = base_dir.join(&path.value);
            if !resolved.is_file() {
                c.error(
                    location(path),
                    format!("TLS {what} file `{}` does not exist", resolved.display()),
                );
            }
        }
    }
    if server.max_header_bytes == 0 || server.max_login_body_bytes == 0 {
        c.error(
            c.key("server"),
            "`server.max_header_bytes` and `server.max_login_body_bytes` must be positive",
        );
    }
}

fn upstream(c: &mut Checker<'_>, config: &Config) {
    let up = &config.upstream;
    if up.demo {
        if !up.url.value.written().is_empty() {
            c.warn(
                location(&up.url),
                "`upstream.url` is ignored because `upstream.demo` is true",
            );
        }
        return;
    }
    if up.url.value.written().is_empty() {
        c.error(
            c.key("upstream.url"),
            "`upstream.url` is required (or set `upstream.demo: true` to serve the built-in demo app)",
        );
        return;
    }
    match up.url.value.get().ok_or(up.url.value.error().unwrap_or_default()) {
        Ok(u) if u.scheme() == "http" && u.has_host() => {
            if u.query().is_some() || u.fragment().is_some() {
                c.error(
                    location(&up.url),
                    format!("`upstream.url` `{}` must not have a query or fragment", up.url.value),
                );
            }
        }
        Ok(u) if u.scheme() != "http" => c.error(
            location(&up.url),
            format!(
                "`upstream.url` scheme `{}` is not supported; use http:// (put the app on a private address)",
                u.scheme()
            ),
        ),
        Ok(_) => c.error(
            location(&up.url),
            format!("`upstream.url` `{}` has no host", up.url.value),
        ),
        Err(e) => c.error(
            location(&up.url),
            format!("invalid `upstream.url` `{}`: {e}", up.url.value),
        ),
    }
}

fn identity_headers(c: &mut Checker<'_>, config: &Config) {
    let h = &config.identity_headers;
    let mut named: Vec<(String, &Spanned<Parsed<HeaderName>>)> = vec![("user".into(), &h.user)];
    for (key, value) in [
        ("email", &h.email),
        ("name", &h.name),
        ("groups", &h.groups),
        ("backend", &h.backend),
    ] {
        if let Some(v) = value {
            named.push((key.into(), v));
        }
    }
    if let Some(a) = &h.assertion {
        named.push(("assertion.header".into(), &a.header));
        if a.ttl.get().as_secs() == 0 {
            c.error(
                c.key("identity_headers.assertion.ttl"),
                "`identity_headers.assertion.ttl` must be at least 1s",
            );
        }
    }
    let mut by_header: BTreeMap<String, String> = BTreeMap::new();
    for (key, header) in &named {
        header_name(
            c,
            &format!("identity_headers.{key}"),
            &header.value,
            location(header),
            &mut by_header,
        );
    }
    for (header, attribute) in &h.extra {
        header_name(
            c,
            "identity_headers.extra",
            header,
            c.key(&format!("identity_headers.extra.{header}")),
            &mut by_header,
        );
        if attribute.value.trim().is_empty() {
            c.error(
                location(attribute),
                format!("`identity_headers.extra.{header}` names no attribute"),
            );
        }
    }
    // Compared with the identity headers: a key header can never carry an identity.
    for header in &config.login.api_key_headers {
        header_name(
            c,
            "login.api_key_headers",
            &header.value,
            location(header),
            &mut by_header,
        );
    }
    if h.groups_separator.is_empty() {
        c.error(
            c.key("identity_headers.groups_separator"),
            "`identity_headers.groups_separator` must not be empty",
        );
    }
}

/// A named assertion key file must hold a key of the configured algorithm (a generated one is
/// made at start, not by `check`).
fn assertion_key(c: &mut Checker<'_>, config: &Config, base_dir: &Path) {
    let Some(a) = &config.identity_headers.assertion else {
        return;
    };
    match &a.key_file {
        Some(file) => {
            let path = base_dir.join(&file.value);
            if let Err(e) = crate::assertion::check_key_file(&path, a.algorithm) {
                c.error(
                    location(file),
                    format!("`identity_headers.assertion.key_file`: {e}"),
                );
            }
        }
        // As for the session secret: replicas would each generate their own key, and an app
        // would fetch the keys of one and get tokens from another.
        None if config.session.store.value.get() != Some(&StoreSetting::Memory) => c.error(
            c.key("identity_headers.assertion"),
            "`identity_headers.assertion` with a shared `session.store` needs `key_file`, the same on every replica: a generated key differs per replica",
        ),
        None => {}
    }
}

fn header_name(
    c: &mut Checker<'_>,
    what: &str,
    parsed: &Parsed<HeaderName>,
    at: Location,
    seen: &mut BTreeMap<String, String>,
) {
    let name = parsed.written();
    if parsed.get().is_none() {
        c.error(
            at,
            format!("`{what}`: `{name}` is not a valid HTTP header name (letters, digits and `-`, no spaces)"),
        );
        return;
    }
    // Compared as sanitize compares incoming names, against the names sanitize manages.
    let normalized = sanitize::fold_name(name.trim());
    if sanitize::managed_by_gateway(name) {
        c.error(
            at,
            format!(
                "`{what}`: `{name}` is a header the gateway manages itself; choose another name"
            ),
        );
        return;
    }
    if let Some(first) = seen.get(&normalized) {
        c.error(
            at,
            format!("`{what}`: header `{name}` is also used by `{first}` (names compare case-insensitively, with `_` and `.` read as `-`)"),
        );
    } else {
        seen.insert(normalized, what.to_string());
    }
}

fn session(c: &mut Checker<'_>, config: &Config) {
    let s = &config.session;
    let store = s.store.value.get();
    if store.is_none() {
        c.error(
            location(&s.store),
            format!(
                "unknown `session.store` `{}`; expected {}",
                auth_storage::redact(s.store.value.written().trim()),
                auth_storage::expected_forms(&["memory", "cookie"], true, true)
            ),
        );
    }
    match &s.secret {
        Some(secret) => {
            let len = secret.value.expose().len();
            if len < MIN_SECRET_BYTES {
                c.error(
                    location(secret),
                    format!("`session.secret` is {len} bytes; it must be at least {MIN_SECRET_BYTES} (e.g. `openssl rand -base64 48`)"),
                );
            }
            if secret.value.is_literal() {
                c.warn(
                    location(secret),
                    "`session.secret` is written in the file; prefer `env:NAME` or `file:PATH`",
                );
            }
        }
        None if store == Some(&StoreSetting::Cookie) => c.error(
            location(&s.store),
            "`session.store: cookie` needs `session.secret` (at least 32 bytes, from `env:NAME` or `file:PATH`), shared by every replica: a generated secret differs per replica",
        ),
        None if store.is_some_and(|s| *s != StoreSetting::Memory) => c.error(
            location(&s.store),
            "a shared `session.store` needs `session.secret` (at least 32 bytes, from `env:NAME` or `file:PATH`), the same on every replica: a generated secret differs per replica",
        ),
        None => {}
    }
    if let Some(name) = &s.cookie_name {
        cookie_name(c, config, name);
    }
    if s.ttl.get().is_zero() {
        c.error(c.key("session.ttl"), "`session.ttl` must be longer than 0");
    }
    if s.idle_timeout.get().is_zero() {
        c.error(
            c.key("session.idle_timeout"),
            "`session.idle_timeout` must be longer than 0",
        );
    }
    if s.idle_timeout > s.ttl {
        c.warn(
            c.key("session.idle_timeout"),
            format!(
                "`session.idle_timeout` ({}) is longer than `session.ttl` ({}), so it never applies",
                s.idle_timeout, s.ttl
            ),
        );
    }
    if s.secure == SecureSetting::Auto
        && let Some(u) = config.server.public_url.value.get()
        && u.scheme() == "http"
        && !matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"))
    {
        c.warn(
            location(&config.server.public_url),
            "`public_url` is plain http:// on a non-local host, so with `session.secure: auto` the \
             cookie is Secure and browsers will not send it back; serve https:// (or set `secure: false` for a test)",
        );
    }
    if s.secure == SecureSetting::Never {
        c.warn(
            c.key("session.secure"),
            "`session.secure: false` sends the session cookie over plain HTTP; use it for local development only",
        );
    }
}

/// A configured `session.cookie_name`: a valid token, and a `__Host-` / `__Secure-` prefix only
/// where browsers will accept the cookie (they match the prefixes case-insensitively and drop
/// a prefixed cookie that breaks the rules: every login would then silently fail).
fn cookie_name(c: &mut Checker<'_>, config: &Config, name: &str) {
    let at = c.key("session.cookie_name");
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    {
        c.error(
            at,
            format!("`session.cookie_name` `{name}` is not a valid cookie name"),
        );
        return;
    }
    let lower = name.to_ascii_lowercase();
    let prefix = if lower.starts_with("__host-") {
        &name[..7]
    } else if lower.starts_with("__secure-") {
        &name[..9]
    } else {
        return;
    };
    if prefix != "__Host-" && prefix != "__Secure-" {
        c.error(
            at,
            format!(
                "`session.cookie_name` `{name}`: write the prefix as `__Host-` or `__Secure-` (browsers match `{prefix}` either way, other software may not)"
            ),
        );
        return;
    }
    // The gateway never sets `Domain` and always `Path=/`: `__Host-` then only needs Secure.
    if !config.secure_cookies() {
        let why = match config.session.secure {
            SecureSetting::Never => "`session.secure` is false".to_string(),
            _ => format!(
                "`session.secure: auto` is false for the plain-HTTP local `public_url` `{}`",
                config.server.public_url.value
            ),
        };
        c.error(
            at,
            format!(
                "`session.cookie_name` `{name}`: a `{prefix}` cookie must be Secure, but {why}; browsers would refuse it (set `secure: true` and serve https://, or drop the prefix)"
            ),
        );
    }
}

fn login(c: &mut Checker<'_>, config: &Config, base_dir: &Path) {
    let l = &config.login;
    let prefix = &l.prefix.value;
    if !prefix.starts_with('/') || prefix.len() < 2 || prefix.ends_with('/') {
        c.error(
            location(&l.prefix),
            format!("`login.prefix` `{prefix}` must start with `/`, not end with `/` and not be `/` alone (e.g. `/_auth`)"),
        );
    }
    for host in &l.allowed_redirect_hosts {
        if host.is_empty() || host.contains('/') || (host.contains(':') && !host.starts_with('[')) {
            c.error(
                c.key("login.allowed_redirect_hosts"),
                format!("`login.allowed_redirect_hosts`: `{host}` must be a bare host name such as `app.example.org`"),
            );
        }
    }
    if let Some(template) = &l.template {
        let resolved = base_dir.join(&template.value);
        if !resolved.is_file() {
            c.error(
                location(template),
                format!("login template `{}` does not exist", resolved.display()),
            );
        }
    }
    if let Some(template) = &l.error_template {
        let resolved = base_dir.join(&template.value);
        if let Err(e) = crate::login::load_error_template(&resolved) {
            c.error(location(template), format!("`login.error_template`: {e}"));
        }
    }
}

fn protection(c: &mut Checker<'_>, config: &Config) {
    let p = &config.protection;
    let redis = matches!(
        p.store.value.get(),
        Some(StoreSetting::Url(StoreUrl::Redis(_)))
    );
    if p.store.value.get() != Some(&StoreSetting::Memory) && !redis {
        c.error(
            location(&p.store),
            format!(
                "unknown `protection.store` `{}`; expected {}",
                auth_storage::redact(p.store.value.written().trim()),
                auth_storage::expected_forms(&["memory"], false, true)
            ),
        );
    }
    if config.session.secret.is_none() && redis {
        c.error(
            location(&p.store),
            "a shared `protection.store` needs `session.secret` (at least 32 bytes, from `env:NAME` or `file:PATH`), the same on every replica: a generated secret differs per replica",
        );
    }
    for (key, value) in [("window", p.window), ("lockout", p.lockout)] {
        if value.get().is_zero() {
            c.error(
                c.key(&format!("protection.{key}")),
                format!("`protection.{key}` must be longer than 0"),
            );
        }
    }
    if p.max_failures == 0 {
        c.error(
            c.key("protection.max_failures"),
            "`protection.max_failures` must be at least 1",
        );
    }
    if p.max_failures_per_ip == Some(0) {
        c.error(
            c.key("protection.max_failures_per_ip"),
            "`protection.max_failures_per_ip` must be at least 1 (leave it out for 10 x `max_failures`)",
        );
    }
}

/// `<section>.redis_ca_file`: only with a `rediss://` store (never a silent plain-text
/// connection), and a readable PEM file holding a certificate.
fn redis_ca_file(
    c: &mut Checker<'_>,
    base_dir: &Path,
    section: &str,
    store: &Spanned<Parsed<StoreSetting>>,
    ca: Option<&Spanned<String>>,
) {
    let Some(ca) = ca else { return };
    if !matches!(store.value.get(), Some(StoreSetting::Url(StoreUrl::Redis(u))) if u.is_tls()) {
        c.error(
            location(ca),
            format!(
                "`{section}.redis_ca_file` needs a `rediss://` (Redis over TLS) `{section}.store`"
            ),
        );
        return;
    }
    let path = base_dir.join(&ca.value);
    match std::fs::read_to_string(&path) {
        Ok(pem) if pem.contains("-----BEGIN CERTIFICATE-----") => {}
        Ok(_) => c.error(
            location(ca),
            format!(
                "`{section}.redis_ca_file` `{}` holds no PEM certificate",
                path.display()
            ),
        ),
        Err(e) => c.error(
            location(ca),
            format!(
                "`{section}.redis_ca_file` `{}` cannot be read: {e}",
                path.display()
            ),
        ),
    }
}

fn users_db(c: &mut Checker<'_>, config: &Config) {
    if let Some(db) = &config.users_db
        && db.value.get().is_none()
    {
        c.error(
            location(db),
            format!(
                "unknown `users_db` `{}`; expected {}",
                auth_storage::redact(db.value.written().trim()),
                auth_storage::expected_forms(&[], true, false)
            ),
        );
    }
}

/// `registrations` are the entries' types, in order (`None` for an unknown type).
fn chain(
    c: &mut Checker<'_>,
    config: &Config,
    registrations: &[Option<&'static BackendRegistration>],
) {
    if config.chain.is_empty() {
        c.error(
            c.key("chain"),
            "the `chain` is empty: add at least one backend (`authgate backends` lists the types)",
        );
        return;
    }
    let mut names: HashMap<&str, Location> = HashMap::new();
    for (i, entry) in config.chain.iter().enumerate() {
        let name = entry.name.value.as_str();
        let reads_user_store = registrations
            .get(i)
            .copied()
            .flatten()
            .is_some_and(|r| r.needs(Service::UserStore));
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
            c.error(
                location(&entry.name),
                format!("chain entry name `{name}` must be non-empty printable ASCII without spaces (it is sent in a header)"),
            );
        } else if let Some(first) = names.get(name) {
            c.error(
                location(&entry.name),
                format!(
                    "duplicate chain entry name `{name}` (first used at line {}); names must be unique",
                    first.line()
                ),
            );
        } else {
            names.insert(name, location(&entry.name));
        }
        if entry.timeout.get().is_zero() {
            c.error(
                location(&entry.name),
                format!("entry `{name}`: `timeout` must be longer than 0"),
            );
        }
        if reads_user_store && entry.provision != Provision::None {
            c.error(
                location(&entry.type_name),
                format!(
                    "entry `{name}`: a `{}` entry cannot provision into the store it reads",
                    entry.type_name.value
                ),
            );
        }
        // A sign-in at another site leaves no password to check again: its users' sessions are
        // restored from the local store, so the entry must provision into it.
        let signs_in_elsewhere = registrations
            .get(i)
            .copied()
            .flatten()
            .is_some_and(|r| r.accepts(CredentialKind::Redirect));
        if signs_in_elsewhere && entry.provision == Provision::None {
            c.error(
                location(&entry.type_name),
                format!(
                    "entry `{name}`: an `{}` entry needs `provision: create` or `update`: its users' sessions are restored from the local store",
                    entry.type_name.value
                ),
            );
        }
    }
}

fn routes(c: &mut Checker<'_>, config: &Config) {
    for (i, route) in config.routes.iter().enumerate() {
        let m = &route.matcher;
        if let Some(path) = &m.path
            && !path.value.starts_with('/')
        {
            c.error(
                location(path),
                format!("route path `{}` must start with `/`", path.value),
            );
        }
        if let Some(re) = &m.path_regex
            && let Err(e) = regex::Regex::new(&re.value)
        {
            let detail = e.to_string();
            let last = detail.lines().last().unwrap_or("").trim();
            let last = last.strip_prefix("error: ").unwrap_or(last);
            c.error(
                location(re),
                format!("invalid `path_regex` `{}`: {}", re.value, last),
            );
        }
        for method in &m.methods {
            if method.get().is_none() || method.written() != method.written().to_ascii_uppercase() {
                c.error(
                    c.key(&format!("routes[{i}].match.methods")),
                    format!(
                        "route method `{method}` must be an upper-case HTTP method such as `GET`"
                    ),
                );
            }
        }
        if let Some(host) = &m.host
            && (host.is_empty() || host.contains('/'))
        {
            c.error(
                c.key(&format!("routes[{i}].match.host")),
                format!("route host `{host}` must be a bare host name"),
            );
        }
        match &route.access.value {
            Access::Groups(g) if g.is_empty() => c.error(
                location(&route.access),
                "`access: {groups: []}` lets nobody in; list at least one group (or use `deny`)",
            ),
            Access::Users(u) if u.is_empty() => c.error(
                location(&route.access),
                "`access: {users: []}` lets nobody in; list at least one user (or use `deny`)",
            ),
            _ => {}
        }
    }
}

/// Apache's `<Limit>` trap: a rule with `methods` matches only those methods, so every other
/// method on its paths (`OPTIONS`, `TRACE`, `PROPFIND`, `DELETE`...) falls through to a later,
/// broader rule or the default, which the operator rarely meant when the method rule was the
/// stricter one. Warns, naming the rules (counted from 1) and the fix, when the first later
/// rule (or the default `authenticated`) that takes some other method on all of the method
/// rule's paths lets in someone the method rule would not. A later rule with exactly the same
/// `host`/`path`/`path_regex` is the operator's explicit answer for the other methods and never
/// warns.
fn method_fall_through(c: &mut Checker<'_>, config: &Config) {
    for (i, rule) in config.routes.iter().enumerate() {
        let methods = &rule.matcher.methods;
        if methods.is_empty() {
            continue;
        }
        // Methods already decided for this rule's paths; HEAD follows GET.
        let mut handled: HashSet<&str> = methods.iter().map(Parsed::written).collect();
        if handled.contains("GET") {
            handled.insert("HEAD");
        }
        let mut landing: Option<(String, &Access)> = None;
        let mut settled = false;
        for (j, later) in config.routes.iter().enumerate().skip(i + 1) {
            if !covers(later, rule) {
                continue;
            }
            let all_methods = later.matcher.methods.is_empty();
            // A rule for exactly these paths is the operator's explicit answer for its methods.
            let explicit = same_paths(later, rule);
            let takes_other = all_methods
                || later
                    .matcher
                    .methods
                    .iter()
                    .any(|m| !handled.contains(m.written()));
            if !explicit && takes_other && !at_most(&later.access.value, &rule.access.value) {
                landing = Some((format!("route {}", j + 1), &later.access.value));
                break;
            }
            if all_methods {
                settled = true;
                break;
            }
            handled.extend(later.matcher.methods.iter().map(Parsed::written));
        }
        let default = Access::Authenticated;
        if landing.is_none() && !settled && !at_most(&default, &rule.access.value) {
            landing = Some(("the default rule".to_string(), &default));
        }
        let Some((target, access)) = landing else {
            continue;
        };
        c.warn(
            c.key(&format!("routes[{i}].match.methods")),
            format!(
                "route {n} (`{access_i}` for {methods}) matches only those methods: every other method on its \
                 paths (OPTIONS, TRACE, PROPFIND, DELETE...) falls through to {target} (`{access_j}`); \
                 add a rule with the same match and no `methods` right below route {n} (e.g. `access: deny`, \
                 or the access everyone else should get)",
                n = i + 1,
                access_i = describe_access(&rule.access.value),
                methods = methods.iter().map(Parsed::written).collect::<Vec<_>>().join(", "),
                access_j = describe_access(access),
            ),
        );
    }
}

/// Whether `later` matches every path and host `rule` matches (for some method).
fn covers(later: &RouteConfig, rule: &RouteConfig) -> bool {
    let (l, r) = (&later.matcher, &rule.matcher);
    let host_ok = match (&l.host, &r.host) {
        (None, _) => true,
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        (Some(_), None) => false,
    };
    if !host_ok {
        return false;
    }
    match (&l.path, &l.path_regex) {
        (None, None) => true,
        (Some(lp), None) => {
            let lp = lp.value.as_str();
            match (&r.path, &r.path_regex) {
                (Some(rp), _) => path_prefix_covers(lp, &rp.value),
                (None, _) => lp == "/",
            }
        }
        // A regex covers only the same regex: anything else is undecidable here.
        (_, Some(lr)) => {
            l.path.is_none()
                && r.path.is_none()
                && r.path_regex.as_ref().is_some_and(|rr| rr.value == lr.value)
        }
    }
}

/// Whether every path under prefix `inner` is under prefix `outer` (segment-aware).
fn path_prefix_covers(outer: &str, inner: &str) -> bool {
    let outer = outer.trim_end_matches('/');
    let inner = inner.trim_end_matches('/');
    outer.is_empty() || inner == outer || inner.starts_with(&format!("{outer}/"))
}

/// Whether `later` matches exactly `rule`'s hosts and paths.
fn same_paths(later: &RouteConfig, rule: &RouteConfig) -> bool {
    let (l, r) = (&later.matcher, &rule.matcher);
    let host = match (&l.host, &r.host) {
        (None, None) => true,
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        _ => false,
    };
    host && l.path.as_ref().map(|p| p.value.trim_end_matches('/'))
        == r.path.as_ref().map(|p| p.value.trim_end_matches('/'))
        && l.path_regex.as_ref().map(|p| &p.value) == r.path_regex.as_ref().map(|p| &p.value)
}

/// Whether everyone `a` lets in is also let in by `b`.
fn at_most(a: &Access, b: &Access) -> bool {
    match (a, b) {
        (Access::Deny, _) | (_, Access::Public) => true,
        (Access::Public, _) | (_, Access::Deny) => false,
        (_, Access::Authenticated) => true,
        (Access::Authenticated, _) => false,
        (Access::Groups(x), Access::Groups(y)) => x.iter().all(|g| y.contains(g)),
        (Access::Users(x), Access::Users(y)) => x.iter().all(|u| y.contains(u)),
        _ => false,
    }
}

fn describe_access(a: &Access) -> String {
    match a {
        Access::Public => "public".into(),
        Access::Authenticated => "authenticated".into(),
        Access::Deny => "deny".into(),
        Access::Groups(g) => format!("groups: {}", g.join(", ")),
        Access::Users(u) => format!("users: {}", u.join(", ")),
    }
}

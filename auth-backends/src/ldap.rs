//! The `ldap` backend: authenticates by binding to an LDAP directory as the user, either at a DN
//! built from a template (direct bind) or at the DN found by a search made with a service account
//! (search-then-bind), and maps the entry and its groups to a [`User`].
//!
//! Connections are opened per request (connect, optional StartTLS, binds, searches, unbind), each
//! step bounded by `connect_timeout` / `timeout`: no pooled connection can be left bound as the
//! wrong identity, and a directory that comes back is used again at once.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use auth_core::mapping::group_name_from_dn;
use auth_core::{
    AttributeMapping, Backend, BackendError, BuildContext, BuildError, Context, Credentials,
    Duration, Outcome, Record, Secret, User, async_trait, auth_backend,
};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, Scope, SearchEntry, ldap_escape};

/// LDAP result code `invalidCredentials` (RFC 4511).
const INVALID_CREDENTIALS: u32 = 49;

/// Authenticates against an LDAP directory (OpenLDAP, 389 DS, Active Directory) by binding as the
/// user. Either set `user_dn` (direct bind), or `user_base` + `user_filter` (search, with
/// `bind_dn`/`bind_password` as the service account, anonymously without them, then bind). An
/// empty password is refused before any bind (RFC 4513 unauthenticated bind). When a search finds
/// several entries for one username the answer is `Denied` (ambiguous; never a login, and no
/// other backend is tried for that name). With `user_dn`, a wrong password and an unknown user
/// look the same to the directory (`invalidCredentials`): both are `Rejected`. An unknown user
/// (search mode) costs a bind too, at a DN that cannot exist. Each request opens its own
/// connection (no pool). `get_user` searches `user_base` for the mapping's `id` attribute (with
/// the default mapping: `user_filter` with the id as the username; `id: dn` reads the entry at
/// that DN) as the service account, anonymously without one. The credential version is the
/// entry's `pwdChangedTime` (password policy overlay) or else its `modifyTimestamp`: any change
/// to the entry, a new password included, ends the user's sessions.
#[auth_backend(type = "ldap", build = Self::build)]
#[derive(Debug, Clone)]
pub struct LdapBackend {
    /// Directory URL: `ldap://host:389` or `ldaps://host:636`.
    pub url: String,
    /// Upgrade a `ldap://` connection with StartTLS before anything is sent.
    #[option(default = false)]
    pub starttls: bool,
    /// PEM file of the CA(s) that sign the directory's certificate (`ldaps://` or `starttls`);
    /// without it the system's roots are used.
    pub ca_file: Option<PathBuf>,
    /// Service account DN used to search for users (and read groups); omit for anonymous search
    /// or direct bind.
    pub bind_dn: Option<String>,
    /// The service account's password.
    pub bind_password: Option<Secret>,
    /// Base DN of the user search.
    pub user_base: Option<String>,
    /// Filter finding one user; `{username}` is replaced by the username escaped per RFC 4515.
    #[option(default = "(uid={username})")]
    pub user_filter: String,
    /// Direct bind: the user's DN, `{username}` replaced by the username escaped per RFC 4514
    /// (e.g. `uid={username},ou=people,dc=example,dc=org`). Takes precedence over the search.
    pub user_dn: Option<String>,
    /// Attribute of the user entry that lists group DNs (`memberOf`).
    pub group_attribute: Option<String>,
    /// Base DN of a group search, made after a successful bind.
    pub group_base: Option<String>,
    /// Filter of the group search; `{dn}` is the user's DN and `{username}` the username as the
    /// entry spells it, both escaped per RFC 4515 (e.g. `(memberUid={username})`).
    #[option(default = "(member={dn})")]
    pub group_filter: String,
    /// Take group names from this RDN attribute of group DNs (`cn`), and from this attribute of
    /// the entries a group search returns; without it group DNs are kept whole.
    pub group_name: Option<String>,
    /// Which entry attributes feed the user; `dn` names the entry's DN. Default:
    /// `{username: uid, email: mail, name: displayName}`. `get_user` takes the value of `id`
    /// (default: the username attribute) and searches `user_base` for it. Of several `email` or
    /// `name` values the first is taken (`strict: true` makes it an error); several usernames
    /// or ids are always an error.
    pub attributes: Option<AttributeMapping>,
    /// Time to establish the connection (TCP and TLS).
    #[option(default = "5s")]
    pub connect_timeout: Duration,
    /// Time for each LDAP operation (bind, search).
    #[option(default = "5s")]
    pub timeout: Duration,
}

fn default_mapping() -> AttributeMapping {
    AttributeMapping {
        username: "uid".into(),
        email: Some("mail".into()),
        name: Some("displayName".into()),
        ..AttributeMapping::default()
    }
}

impl LdapBackend {
    /// Checks the options and builds the backend. Opens no connection.
    pub fn build(self, ctx: &BuildContext) -> Result<Arc<dyn Backend>, BuildError> {
        Ok(Arc::new(self.into_backend(ctx)?))
    }

    fn into_backend(self, ctx: &BuildContext) -> Result<Directory, BuildError> {
        let url = url_scheme(&self.url)?;
        if self.user_dn.is_none() && self.user_base.is_none() {
            return Err(BuildError::new(
                "ldap: set `user_dn` (direct bind) or `user_base` (search then bind)",
            ));
        }
        if let Some(t) = &self.user_dn
            && !t.contains("{username}")
        {
            return Err(BuildError::new("ldap: `user_dn` must contain `{username}`"));
        }
        if self.user_dn.is_none() && !self.user_filter.contains("{username}") {
            return Err(BuildError::new(
                "ldap: `user_filter` must contain `{username}`",
            ));
        }
        if self.bind_dn.is_some() != self.bind_password.is_some() {
            return Err(BuildError::new(
                "ldap: set both `bind_dn` and `bind_password`, or neither",
            ));
        }
        if self.group_base.is_some()
            && !self.group_filter.contains("{dn}")
            && !self.group_filter.contains("{username}")
        {
            return Err(BuildError::new(
                "ldap: `group_filter` must contain `{dn}` or `{username}`",
            ));
        }
        if self.starttls && url == "ldaps" {
            return Err(BuildError::new(
                "ldap: `starttls: true` needs an `ldap://` URL (ldaps:// is already TLS)",
            ));
        }
        let tls = match &self.ca_file {
            Some(path) => Some(tls_config(&ctx.resolve_path(path))?),
            None => None,
        };
        let mut mapping = self.attributes.clone().unwrap_or_else(default_mapping);
        if mapping.group_name.is_none() {
            mapping.group_name = self.group_name.clone();
        }
        Ok(Directory {
            options: self,
            mapping,
            tls,
        })
    }
}

fn url_scheme(url: &str) -> Result<&'static str, BuildError> {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("ldap://") {
        Ok("ldap")
    } else if lower.starts_with("ldaps://") {
        Ok("ldaps")
    } else {
        Err(BuildError::new(format!(
            "ldap: `url` must start with ldap:// or ldaps://, got `{url}`"
        )))
    }
}

fn tls_config(path: &std::path::Path) -> Result<Arc<rustls_ldap::ClientConfig>, BuildError> {
    let pem = std::fs::read(path).map_err(|e| {
        BuildError::new(format!(
            "ldap: cannot read `ca_file` {}: {e}",
            path.display()
        ))
    })?;
    let mut roots = rustls_ldap::RootCertStore::empty();
    let mut count = 0;
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        let cert = cert.map_err(|e| {
            BuildError::new(format!(
                "ldap: bad PEM in `ca_file` {}: {e}",
                path.display()
            ))
        })?;
        roots
            .add(&rustls_ldap::Certificate(cert.to_vec()))
            .map_err(|e| {
                BuildError::new(format!(
                    "ldap: bad certificate in `ca_file` {}: {e}",
                    path.display()
                ))
            })?;
        count += 1;
    }
    if count == 0 {
        return Err(BuildError::new(format!(
            "ldap: no certificate in `ca_file` {}",
            path.display()
        )));
    }
    Ok(Arc::new(
        rustls_ldap::ClientConfig::builder()
            .with_safe_defaults()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}

/// The built backend.
struct Directory {
    options: LdapBackend,
    mapping: AttributeMapping,
    tls: Option<Arc<rustls_ldap::ClientConfig>>,
}

/// Why one step failed: the user's fault or the directory's.
enum Failure {
    Outcome(Outcome),
    Backend(BackendError),
}

impl From<BackendError> for Failure {
    fn from(e: BackendError) -> Self {
        Failure::Backend(e)
    }
}

/// An LDAP entry as a mapping [`Record`]: attribute names are case-insensitive, `dn` is the DN.
struct EntryRecord<'a>(&'a SearchEntry);

impl Record for EntryRecord<'_> {
    fn values(&self, name: &str) -> Option<Vec<String>> {
        if name.eq_ignore_ascii_case("dn") {
            return Some(vec![self.0.dn.clone()]);
        }
        self.0
            .attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }
}

fn ldap_error(step: &str, e: LdapError) -> BackendError {
    match e {
        LdapError::Timeout { .. } => BackendError::new(format!("ldap {step}: timed out")),
        other => BackendError::new(format!("ldap {step}: {other}")),
    }
}

fn result_error(step: &str, rc: u32, text: &str) -> BackendError {
    if text.is_empty() {
        BackendError::new(format!("ldap {step}: result code {rc}"))
    } else {
        BackendError::new(format!("ldap {step}: result code {rc} ({text})"))
    }
}

/// Replaces `{name}` placeholders in `template` in one pass, so a substituted value containing
/// another placeholder is not substituted again.
fn fill(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    'outer: while let Some(start) = rest.find('{') {
        for (name, value) in vars {
            let key = format!("{{{name}}}");
            if rest[start..].starts_with(&key) {
                out.push_str(&rest[..start]);
                out.push_str(value);
                rest = &rest[start + key.len()..];
                continue 'outer;
            }
        }
        out.push_str(&rest[..=start]);
        rest = &rest[start + 1..];
    }
    out.push_str(rest);
    out
}

impl Directory {
    fn op_timeout(&self) -> StdDuration {
        self.options.timeout.get()
    }

    async fn connect(&self) -> Result<Ldap, BackendError> {
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(self.options.connect_timeout.get())
            .set_starttls(self.options.starttls);
        if let Some(cfg) = &self.tls {
            settings = settings.set_config(cfg.clone());
        }
        // The connect timeout covers TCP only in ldap3; bound the TLS handshake too.
        let connecting = LdapConnAsync::with_settings(settings, &self.options.url);
        let (conn, ldap) = tokio::time::timeout(self.options.connect_timeout.get(), connecting)
            .await
            .map_err(|_| BackendError::timeout(self.options.connect_timeout.get()))?
            .map_err(|e| ldap_error("connect", e))?;
        ldap3::drive!(conn);
        Ok(ldap)
    }

    /// Binds as the service account, when there is one.
    async fn service_bind(&self, ldap: &mut Ldap) -> Result<(), BackendError> {
        let (Some(dn), Some(pw)) = (&self.options.bind_dn, &self.options.bind_password) else {
            return Ok(());
        };
        let res = ldap
            .with_timeout(self.op_timeout())
            .simple_bind(dn, pw.expose())
            .await
            .map_err(|e| ldap_error("service bind", e))?;
        if res.rc == 0 {
            Ok(())
        } else {
            Err(result_error("service account bind", res.rc, &res.text))
        }
    }

    fn entry_attributes(&self) -> Vec<String> {
        let m = &self.mapping;
        let mut attrs: BTreeSet<String> = BTreeSet::new();
        attrs.insert(m.username.clone());
        attrs.extend(m.id.clone());
        attrs.extend(m.email.clone());
        attrs.extend(m.name.clone());
        attrs.extend(m.groups.clone());
        attrs.extend(m.extra.values().cloned());
        attrs.extend(self.options.group_attribute.clone());
        attrs.insert("modifyTimestamp".into());
        attrs.insert("pwdChangedTime".into());
        attrs.remove("dn");
        attrs.into_iter().collect()
    }

    async fn search(
        &self,
        ldap: &mut Ldap,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: Vec<String>,
    ) -> Result<Vec<SearchEntry>, BackendError> {
        let res = ldap
            .with_timeout(self.op_timeout())
            .search(base, scope, filter, attrs)
            .await
            .map_err(|e| ldap_error("search", e))?;
        // noSuchObject (32) or invalidDNSyntax (34): the base does not exist, so nothing
        // under it matches.
        if !matches!(res.1.rc, 0 | 32 | 34) {
            return Err(result_error("search", res.1.rc, &res.1.text));
        }
        res.0
            .into_iter()
            .filter(|e| !e.is_ref() && !e.is_intermediate())
            .map(|e| {
                // `construct` panics on an entry it cannot parse; a bad server reply must be an
                // error, not a crash.
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| SearchEntry::construct(e)))
                    .map_err(|_| BackendError::new("ldap search: malformed entry in the reply"))
            })
            .collect()
    }

    /// Finds the one entry `filter` matches under `user_base`.
    async fn find_one(&self, ldap: &mut Ldap, filter: &str) -> Result<SearchEntry, Failure> {
        let base = self.options.user_base.as_deref().unwrap_or_default();
        let mut entries = self
            .search(ldap, base, Scope::Subtree, filter, self.entry_attributes())
            .await?;
        match entries.len() {
            0 => Err(Failure::Outcome(Outcome::NotFound)),
            1 => Ok(entries.remove(0)),
            n => {
                tracing::warn!(entries = n, "ldap: several entries match one username");
                Err(Failure::Outcome(Outcome::Denied(format!(
                    "ambiguous: {n} directory entries match this username"
                ))))
            }
        }
    }

    /// The entry at `dn`; `None` when there is none (or `dn` is not a DN).
    async fn read_entry(
        &self,
        ldap: &mut Ldap,
        dn: &str,
    ) -> Result<Option<SearchEntry>, BackendError> {
        let mut entries = self
            .search(
                ldap,
                dn,
                Scope::Base,
                "(objectClass=*)",
                self.entry_attributes(),
            )
            .await?;
        Ok(entries.pop())
    }

    async fn group_search(
        &self,
        ldap: &mut Ldap,
        dn: &str,
        username: &str,
    ) -> Result<BTreeSet<String>, BackendError> {
        let Some(base) = &self.options.group_base else {
            return Ok(BTreeSet::new());
        };
        let filter = fill(
            &self.options.group_filter,
            &[
                ("dn", &ldap_escape(dn)),
                ("username", &ldap_escape(username)),
            ],
        );
        let name_attr = self.options.group_name.clone();
        let attrs = vec![name_attr.clone().unwrap_or_else(|| "cn".into())];
        let entries = self
            .search(ldap, base, Scope::Subtree, &filter, attrs)
            .await?;
        let mut out = BTreeSet::new();
        for e in entries {
            let name = match &name_attr {
                Some(a) => EntryRecord(&e)
                    .values(a)
                    .and_then(|v| v.into_iter().next())
                    .unwrap_or_else(|| group_name_from_dn(&e.dn, a)),
                None => e.dn.clone(),
            };
            out.insert(name);
        }
        Ok(out)
    }

    fn to_user(
        &self,
        entry: &SearchEntry,
        searched_groups: BTreeSet<String>,
    ) -> Result<User, BackendError> {
        let record = EntryRecord(entry);
        let mut user = self
            .mapping
            .map(&record)
            .map_err(|e| BackendError::new(format!("ldap: entry {}: {e}", entry.dn)))?;
        if let Some(attr) = &self.options.group_attribute {
            for dn in record.values(attr).unwrap_or_default() {
                let name = match &self.options.group_name {
                    Some(rdn) => group_name_from_dn(&dn, rdn),
                    None => dn,
                };
                user.groups.insert(name);
            }
        }
        user.groups.extend(searched_groups);
        user.credential_version = record
            .values("pwdChangedTime")
            .or_else(|| record.values("modifyTimestamp"))
            .and_then(|v| v.into_iter().next());
        Ok(user)
    }

    async fn login(
        &self,
        ldap: &mut Ldap,
        username: &str,
        password: &str,
    ) -> Result<User, Failure> {
        let (dn, entry) = match &self.options.user_dn {
            Some(template) => {
                let dn = fill(template, &[("username", &ldap3::dn_escape(username))]);
                (dn, None)
            }
            None => {
                self.service_bind(ldap).await?;
                let filter = fill(
                    &self.options.user_filter,
                    &[("username", &ldap_escape(username))],
                );
                let entry = match self.find_one(ldap, &filter).await {
                    Err(Failure::Outcome(Outcome::NotFound)) => {
                        self.dummy_bind(ldap, password).await;
                        return Err(Failure::Outcome(Outcome::NotFound));
                    }
                    other => other?,
                };
                (entry.dn.clone(), Some(entry))
            }
        };
        let res = ldap
            .with_timeout(self.op_timeout())
            .simple_bind(&dn, password)
            .await
            .map_err(|e| ldap_error("bind", e))?;
        match res.rc {
            0 => {}
            INVALID_CREDENTIALS => return Err(Failure::Outcome(Outcome::Rejected)),
            rc => return Err(Failure::Backend(result_error("bind", rc, &res.text))),
        }
        // Read the entry and groups as the service account when there is one (users often may
        // not read group entries), else as the user.
        let entry = match entry {
            Some(e) => e,
            None => self.read_entry(ldap, &dn).await?.ok_or_else(|| {
                BackendError::new(
                    "ldap: bound, but cannot read the user's own entry (check the ACLs)",
                )
            })?,
        };
        if self.options.bind_dn.is_some() {
            self.service_bind(ldap).await?;
        }
        let groups = self.groups_of(ldap, &entry).await?;
        Ok(self.to_user(&entry, groups)?)
    }

    /// The group search for `entry`, with `{username}` the entry's own (canonical) username,
    /// not the spelling the user typed.
    async fn groups_of(
        &self,
        ldap: &mut Ldap,
        entry: &SearchEntry,
    ) -> Result<BTreeSet<String>, BackendError> {
        let username = EntryRecord(entry)
            .values(&self.mapping.username)
            .and_then(|v| v.into_iter().next())
            .unwrap_or_default();
        self.group_search(ldap, &entry.dn, &username).await
    }

    /// A bind that must fail, so that an unknown user costs the round trip a wrong password
    /// does: at a DN that cannot exist (never at a real account, which a password policy could
    /// lock).
    async fn dummy_bind(&self, ldap: &mut Ldap, password: &str) {
        let base = self.options.user_base.as_deref().unwrap_or_default();
        let nonce: u64 = rand::random();
        let dn = format!("cn=authgw-no-such-user-{nonce:016x},{base}");
        let _ = ldap
            .with_timeout(self.op_timeout())
            .simple_bind(&dn, password)
            .await;
    }

    async fn lookup(&self, ldap: &mut Ldap, id: &str) -> Result<Option<User>, BackendError> {
        self.service_bind(ldap).await?;
        let id_attr = self.mapping.id.as_deref().unwrap_or(&self.mapping.username);
        let by_username = id_attr.eq_ignore_ascii_case(&self.mapping.username);
        let found = if id_attr.eq_ignore_ascii_case("dn") {
            self.read_entry(ldap, id).await?
        } else if let (Some(template), true) = (&self.options.user_dn, by_username) {
            let dn = fill(template, &[("username", &ldap3::dn_escape(id))]);
            self.read_entry(ldap, &dn).await?
        } else {
            if self.options.user_base.is_none() {
                return Err(BackendError::new(
                    "ldap: get_user needs `user_base` to search for the user by its id",
                ));
            }
            let filter = if self.options.user_dn.is_none() && by_username {
                fill(&self.options.user_filter, &[("username", &ldap_escape(id))])
            } else {
                format!("({}={})", id_attr, ldap_escape(id))
            };
            match self.find_one(ldap, &filter).await {
                Ok(e) => Some(e),
                Err(Failure::Backend(e)) => return Err(e),
                Err(Failure::Outcome(Outcome::NotFound)) => None,
                Err(Failure::Outcome(_)) => {
                    return Err(BackendError::new("ldap: several entries match this id"));
                }
            }
        };
        let Some(entry) = found else {
            return Ok(None);
        };
        let groups = self.groups_of(ldap, &entry).await?;
        self.to_user(&entry, groups).map(Some)
    }
}

async fn finish(mut ldap: Ldap) {
    let _ = ldap.unbind().await;
}

#[async_trait]
impl Backend for Directory {
    async fn authenticate(&self, credentials: &Credentials, _context: &Context) -> Outcome {
        let Credentials::Password { username, password } = credentials else {
            return Outcome::NotFound;
        };
        if username.is_empty() {
            return Outcome::NotFound;
        }
        // RFC 4513 5.1.2: a simple bind with a DN and an empty password is an unauthenticated
        // bind, which many servers answer with success.
        if password.is_empty() {
            return Outcome::Rejected;
        }
        let mut ldap = match self.connect().await {
            Ok(l) => l,
            Err(e) => return Outcome::Unavailable(e),
        };
        let result = self.login(&mut ldap, username, password).await;
        finish(ldap).await;
        match result {
            Ok(user) => Outcome::Authenticated(user),
            Err(Failure::Outcome(o)) => o,
            Err(Failure::Backend(e)) => Outcome::Unavailable(e),
        }
    }

    async fn get_user(&self, id: &str) -> Result<Option<User>, BackendError> {
        if id.is_empty() {
            return Ok(None);
        }
        let mut ldap = self.connect().await?;
        let result = self.lookup(&mut ldap, id).await;
        finish(ldap).await;
        result
    }

    async fn health(&self) -> Result<(), BackendError> {
        let mut ldap = self.connect().await?;
        let result = self.service_bind(&mut ldap).await;
        finish(ldap).await;
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_substitutes_once() {
        assert_eq!(
            fill("(uid={username})", &[("username", "{username}")]),
            "(uid={username})"
        );
        assert_eq!(
            fill(
                "(&(member={dn})(x={username}))",
                &[("dn", "a"), ("username", "b")]
            ),
            "(&(member=a)(x=b))"
        );
        assert_eq!(fill("{other}", &[("dn", "a")]), "{other}");
    }

    #[test]
    fn filter_escaping_neutralizes_injection() {
        let f = fill("(uid={username})", &[("username", &ldap_escape(")(uid=*"))]);
        assert_eq!(f, "(uid=\\29\\28uid=\\2a)");
        assert!(ldap3::parse_filter(&f).is_ok());
    }

    #[test]
    fn dn_escaping_round_trips_through_group_name_from_dn() {
        for v in [
            "x,y=z",
            "a*b(c)",
            " lead",
            "trail ",
            "#hash",
            "q\"u+o;t<e>\\",
            "ünïcødé",
        ] {
            let dn = format!("uid={},ou=people,dc=example,dc=org", ldap3::dn_escape(v));
            assert_eq!(group_name_from_dn(&dn, "uid"), v, "{dn}");
        }
    }

    fn options() -> LdapBackend {
        LdapBackend {
            url: "ldap://127.0.0.1:1".into(),
            starttls: false,
            ca_file: None,
            bind_dn: None,
            bind_password: None,
            user_base: Some("ou=people,dc=example,dc=org".into()),
            user_filter: "(uid={username})".into(),
            user_dn: None,
            group_attribute: None,
            group_base: None,
            group_filter: "(member={dn})".into(),
            group_name: None,
            attributes: None,
            connect_timeout: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn build_checks_option_combinations() {
        let ctx = BuildContext::default();
        assert!(options().build(&ctx).is_ok());
        let mut o = options();
        o.user_base = None;
        assert!(o.build(&ctx).is_err());
        let mut o = options();
        o.url = "http://x".into();
        assert!(o.build(&ctx).is_err());
        let mut o = options();
        o.bind_dn = Some("cn=x".into());
        assert!(o.build(&ctx).is_err());
        let mut o = options();
        o.user_dn = Some("uid=x,dc=org".into());
        assert!(o.build(&ctx).is_err());
        let mut o = options();
        o.url = "ldaps://x".into();
        o.starttls = true;
        assert!(o.build(&ctx).is_err());
    }

    #[tokio::test]
    async fn empty_password_is_rejected_without_contacting_the_directory() {
        // Port 1 is closed: any network attempt would be Unavailable.
        let backend = options().build(&BuildContext::default()).unwrap();
        let out = backend
            .authenticate(&Credentials::password("alice", ""), &Context::default())
            .await;
        assert!(matches!(out, Outcome::Rejected), "{out:?}");
        let out = backend
            .authenticate(&Credentials::password("alice", "x"), &Context::default())
            .await;
        assert!(matches!(out, Outcome::Unavailable(_)), "{out:?}");
    }
}

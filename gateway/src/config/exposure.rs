//! Secrets written in a config file that other users can read: refused at start, as `ssh`
//! refuses a private key others can read, unless the operator says otherwise
//! (`--allow-insecure-config`).
//!
//! A literal secret is one the gateway uses as a credential or key and that is written in the
//! file itself rather than as `env:NAME` or `file:PATH`: `session.secret`, a backend option
//! declared as a secret (`bind_password`, `password`, `headers` values...), and a password inside
//! a URL (`session.store`, `protection.store`, `users_db`, any backend option). Password
//! hashes of `static` users are verifiers, not credentials (like an htpasswd file), and do not
//! count. "Others can read" means any group or world read bit on the file (after symlinks).

use std::path::Path;

use serde_saphyr::{Location, Spanned};

use super::Diagnostic;
use super::chain::{OptionScan, url_has_password};
use super::load::location;
use super::model::Config;
use super::typed::Parsed;
use auth_core::registry::BackendRegistration;

/// One secret written in the file: the key that holds it, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiteralSecret {
    /// The key as diagnostics name it, e.g. ``` `session.secret` ``` or
    /// ``chain entry `ldap` option `bind_password` ``.
    pub key: String,
    /// Where its value was written.
    pub location: Location,
}

/// The literal secrets of a parsed config; `scans` and `registrations` come from the loader's
/// survey of each chain entry's options.
pub(crate) fn literal_secrets(
    config: &Config,
    scans: &[OptionScan],
    registrations: &[Option<&'static BackendRegistration>],
) -> Vec<LiteralSecret> {
    let mut found = Vec::new();
    if let Some(secret) = &config.session.secret
        && secret.value.is_literal()
    {
        found.push(LiteralSecret {
            key: "`session.secret`".into(),
            location: location(secret),
        });
    }
    let urls: [(&str, Option<(&str, Location)>); 3] = [
        ("session.store", Some(written(&config.session.store))),
        ("protection.store", Some(written(&config.protection.store))),
        ("users_db", config.users_db.as_ref().map(written)),
    ];
    for (key, url) in urls {
        if let Some((text, at)) = url
            && url_has_password(text)
        {
            found.push(LiteralSecret {
                key: format!("`{key}` (a URL with a password)"),
                location: at,
            });
        }
    }
    for scan in scans {
        let Some(Some(reg)) = registrations.get(scan.entry) else {
            continue;
        };
        let option = scan.key.split('.').next().unwrap_or_default();
        let declared = reg.options.iter().any(|o| o.name == option && o.secret);
        if (declared && scan.literal) || scan.url_password {
            let name = config
                .chain
                .get(scan.entry)
                .map(|e| e.name.value.as_str())
                .unwrap_or_default();
            found.push(LiteralSecret {
                key: format!("chain entry `{name}` option `{}`", scan.key),
                location: scan.at,
            });
        }
    }
    found
}

/// What was written at a parsed key, and where.
fn written<T>(s: &Spanned<Parsed<T>>) -> (&str, Location) {
    (s.value.written(), location(s))
}

/// The group and world permission bits of `path` when any of them lets others read it.
#[cfg(unix)]
fn readable_by_others(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o044 != 0).then_some(mode)
}

#[cfg(not(unix))]
fn readable_by_others(_: &Path) -> Option<u32> {
    None
}

/// One diagnostic per literal secret when the file at `path` can be read by other users: errors,
/// or warnings when `allow` (`--allow-insecure-config`). Empty when the file is private or holds
/// no literal secret.
pub(crate) fn readable_secrets(
    secrets: &[LiteralSecret],
    path: &Path,
    allow: bool,
) -> Vec<Diagnostic> {
    if secrets.is_empty() {
        return Vec::new();
    }
    let Some(mode) = readable_by_others(path) else {
        return Vec::new();
    };
    let shown = path.display();
    secrets
        .iter()
        .map(|s| {
            let message = format!(
                "{} is written in this file, which other users can read (mode {mode:04o}): \
                 run `chmod 600 {shown}`, or move the secret out with `env:NAME` or `file:PATH`{}",
                s.key,
                if allow {
                    " (started anyway: --allow-insecure-config)"
                } else {
                    "; --allow-insecure-config starts anyway"
                }
            );
            if allow {
                Diagnostic::warning(path, s.location, message)
            } else {
                Diagnostic::error(path, s.location, message)
            }
        })
        .collect()
}

//! `authgate check`: validate the config and show what it resolves to.

use std::io::Write;
use std::path::Path;

use super::services::{build_context, runtime};
use crate::config::{self, Access, LoadedConfig, RouteConfig, reload_scope};

/// Exit code for an invalid config.
pub(crate) const INVALID_CONFIG: u8 = 2;

/// Loads the config and builds its chain (opening `users_db` when the chain uses it); prints
/// diagnostics to stderr and the resolved chain and routes to `out`, then which keys a reload
/// cannot apply, and with `against` (the file a gateway runs now) each key written differently
/// there and whether a reload applies it. Secrets written in a file others can read are
/// errors, as `run` refuses them (warnings with `allow_insecure`).
pub(crate) fn check(
    path: &Path,
    allow_insecure: bool,
    against: Option<&Path>,
    out: &mut dyn Write,
) -> Result<u8, super::CliError> {
    let mut loaded = match config::load(path) {
        Ok(loaded) => loaded,
        Err(errors) => {
            eprintln!("{errors}");
            return Ok(INVALID_CONFIG);
        }
    };
    if !loaded_privately(&loaded, path, allow_insecure) {
        return Ok(INVALID_CONFIG);
    }
    let runtime = runtime()?;
    let built = runtime.block_on(async {
        let services = build_context(&loaded).await?;
        config::build_chain(&mut loaded, &services)
    });
    if let Err(errors) = built {
        eprintln!("{errors}");
        return Ok(INVALID_CONFIG);
    }
    describe(&loaded, out)?;
    on_reload(path, against, out)?;
    Ok(0)
}

/// What a reload does with this file: the keys it cannot apply, and with `against` the keys
/// that differ from that file.
fn on_reload(
    path: &Path,
    against: Option<&Path>,
    out: &mut dyn Write,
) -> Result<(), super::CliError> {
    let restart: Vec<&str> = reload_scope::restart_keys().collect();
    writeln!(
        out,
        "on reload (SIGHUP or a change to the file): every key is applied but {} (restart needed)",
        restart.join(", ")
    )?;
    let Some(old) = against else {
        return Ok(());
    };
    let read = |p: &Path| {
        let text = std::fs::read_to_string(p)
            .map_err(|e| super::CliError::Message(format!("reading {}: {e}", p.display())))?;
        reload_scope::plain_value(&text).ok_or_else(|| {
            super::CliError::Message(format!("{}: not a YAML document", p.display()))
        })
    };
    let changes = reload_scope::changed_keys(&read(old)?, &read(path)?);
    if changes.is_empty() {
        writeln!(out, "changes from {}: none", old.display())?;
        return Ok(());
    }
    writeln!(out, "changes from {}:", old.display())?;
    for c in changes {
        let verdict = if c.applied {
            "applied on reload"
        } else {
            "needs a restart"
        };
        writeln!(out, "  {}: {verdict}", c.key)?;
    }
    Ok(())
}

/// Prints the config's warnings and the literal secrets of a file others can read; `false` when
/// those are errors (the caller exits with [`INVALID_CONFIG`]).
pub(crate) fn loaded_privately(loaded: &LoadedConfig, path: &Path, allow_insecure: bool) -> bool {
    let mut diagnostics = loaded.warnings.clone();
    diagnostics.extend(config::readable_secrets(
        &loaded.literal_secrets,
        path,
        allow_insecure,
    ));
    diagnostics.sort_by_key(|d| (d.line, d.column, d.severity));
    for d in &diagnostics {
        eprintln!("{d}");
    }
    !diagnostics.iter().any(config::Diagnostic::is_error)
}

fn describe(loaded: &LoadedConfig, out: &mut dyn Write) -> std::io::Result<()> {
    let c = &loaded.config;
    writeln!(out, "{}: OK", loaded.source.display())?;
    writeln!(out, "chain:")?;
    for (i, e) in c.chain.iter().enumerate() {
        writeln!(
            out,
            "  {}. {} (type {}): on_reject {}, on_error {}, timeout {}, provision {}",
            i + 1,
            e.name.value,
            e.type_name.value,
            lower(&e.on_reject),
            lower(&e.on_error),
            e.timeout,
            lower(&e.provision),
        )?;
    }
    writeln!(out, "routes (first match wins):")?;
    for (i, r) in c.routes.iter().enumerate() {
        writeln!(
            out,
            "  {}. {} -> {}",
            i + 1,
            matcher(r),
            access(&r.access.value)
        )?;
    }
    writeln!(out, "  otherwise -> authenticated")?;
    Ok(())
}

fn lower(v: &impl std::fmt::Debug) -> String {
    format!("{v:?}").to_lowercase()
}

fn matcher(r: &RouteConfig) -> String {
    let m = &r.matcher;
    let mut parts = Vec::new();
    if let Some(h) = &m.host {
        parts.push(format!("host {h}"));
    }
    if let Some(p) = &m.path {
        parts.push(format!("path {}", p.value));
    }
    if let Some(p) = &m.path_regex {
        parts.push(format!("path_regex {}", p.value));
    }
    if !m.methods.is_empty() {
        let methods: Vec<&str> = m.methods.iter().map(|m| m.written()).collect();
        parts.push(format!("methods {}", methods.join(",")));
    }
    if parts.is_empty() {
        "any request".to_string()
    } else {
        parts.join(", ")
    }
}

fn access(a: &Access) -> String {
    match a {
        Access::Public => "public".into(),
        Access::Authenticated => "authenticated".into(),
        Access::Deny => "deny".into(),
        Access::Groups(g) => format!("groups {}", g.join(", ")),
        Access::Users(u) => format!("users {}", u.join(", ")),
    }
}

//! `authgate check`: validate the config and show what it resolves to.

use std::io::Write;
use std::path::Path;

use super::services::{build_context, runtime};
use crate::config::{self, Access, LoadedConfig, RouteConfig};

/// Exit code for an invalid config.
pub(crate) const INVALID_CONFIG: u8 = 2;

/// Loads the config and builds its chain (opening `users_db` when the chain uses it); prints
/// diagnostics to stderr and the resolved chain and routes to `out`.
pub(crate) fn check(path: &Path, out: &mut dyn Write) -> Result<u8, super::CliError> {
    let mut loaded = match config::load(path) {
        Ok(loaded) => loaded,
        Err(errors) => {
            eprintln!("{errors}");
            return Ok(INVALID_CONFIG);
        }
    };
    for w in &loaded.warnings {
        eprintln!("{w}");
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
    Ok(0)
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
        parts.push(format!("methods {}", m.methods.join(",")));
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

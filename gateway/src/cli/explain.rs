//! `authgate explain --user NAME`: run the chain once and show what each backend said.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use auth_core::{ChainOutcome, Context, Credentials};

use super::check::INVALID_CONFIG;
use super::password_input::read_password;
use super::services::{build_context, runtime};
use crate::config;

/// Loads the config, builds the chain, asks for `user`'s password and prints each backend's
/// outcome and time, then the verdict. Exit 0 when authenticated, 1 otherwise. Nothing is
/// provisioned.
pub(crate) fn explain(path: &Path, user: &str, out: &mut dyn Write) -> Result<u8, super::CliError> {
    let mut loaded = match config::load(path) {
        Ok(loaded) => loaded,
        Err(errors) => {
            eprintln!("{errors}");
            return Ok(INVALID_CONFIG);
        }
    };
    let runtime = runtime()?;
    let built = runtime.block_on(async {
        let services = build_context(&loaded).await?;
        config::build_chain(&mut loaded, &services)
    });
    let chain = match built {
        Ok(chain) => chain,
        Err(errors) => {
            eprintln!("{errors}");
            return Ok(INVALID_CONFIG);
        }
    };
    let password = read_password(&format!("Password for {user}: "))?;
    let credentials = Credentials::password(user, password);
    let result = runtime.block_on(chain.authenticate(&credentials, &Context::default()));
    for step in &result.trace {
        let type_name = match chain.entry(&step.entry) {
            Some(e) => e.type_name.as_str(),
            None if step.entry == auth_core::policy::POLICY_STEP => "credential policy",
            None => "?",
        };
        write!(
            out,
            "{} ({type_name}): {} in {}",
            step.entry,
            step.outcome,
            millis(step.elapsed)
        )?;
        match &step.detail {
            Some(d) => writeln!(out, " ({d})")?,
            None => writeln!(out)?,
        }
    }
    let code = match &result.outcome {
        ChainOutcome::Authenticated { user, entry } => {
            let groups: Vec<&str> = user.groups.iter().map(String::as_str).collect();
            writeln!(
                out,
                "verdict: authenticated by `{entry}` as `{}` (groups: {})",
                user.username,
                if groups.is_empty() {
                    "none".to_string()
                } else {
                    groups.join(", ")
                }
            )?;
            0
        }
        ChainOutcome::Rejected => {
            let policy = result
                .trace
                .iter()
                .find(|s| s.entry == auth_core::policy::POLICY_STEP);
            match policy.and_then(|s| s.detail.as_deref()) {
                Some(rule) => writeln!(
                    out,
                    "verdict: rejected by the credential policy ({rule}); no backend ran"
                )?,
                None => writeln!(out, "verdict: rejected (wrong password)")?,
            }
            1
        }
        ChainOutcome::NotFound => {
            writeln!(out, "verdict: not found (no backend knows `{user}`)")?;
            1
        }
        ChainOutcome::Denied { entry, reason } => {
            writeln!(out, "verdict: denied by `{entry}`: {reason}")?;
            1
        }
        ChainOutcome::Unavailable { entry, error } => {
            writeln!(
                out,
                "verdict: unavailable: `{entry}` could not answer: {error}"
            )?;
            1
        }
    };
    Ok(code)
}

fn millis(d: Duration) -> String {
    format!("{:.1}ms", d.as_secs_f64() * 1000.0)
}

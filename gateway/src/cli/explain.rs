//! `authgate explain --user NAME | --bearer | --api-key HEADER`: run the chain once and show
//! what each backend said.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use auth_core::{ChainOutcome, Context, Credentials};

use super::check::INVALID_CONFIG;
use super::password_input::read_password;
use super::services::{build_context, runtime};
use crate::config;

/// What `explain` runs the chain for; the secret part is asked for (or read from stdin).
#[derive(Debug, Clone)]
pub(crate) enum Presented {
    /// `--user NAME`: NAME's password.
    Password(String),
    /// `--bearer`: a bearer token.
    Bearer,
    /// `--api-key HEADER`: an API key as sent in HEADER.
    ApiKey(String),
}

/// Loads the config, builds the chain, asks for the password, token or key and prints each
/// backend's outcome and time, then the verdict. Exit 0 when authenticated, 1 otherwise.
/// Nothing is provisioned.
pub(crate) fn explain(
    path: &Path,
    presented: Presented,
    out: &mut dyn Write,
) -> Result<u8, super::CliError> {
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
    let (credentials, who) = match presented {
        Presented::Password(user) => {
            let password = read_password(&format!("Password for {user}: "))?;
            (Credentials::password(&user, password), format!("`{user}`"))
        }
        Presented::Bearer => (
            Credentials::Bearer(read_password("Bearer token: ")?),
            "this token".to_string(),
        ),
        Presented::ApiKey(header) => {
            let configured = loaded
                .config
                .login
                .api_key_headers
                .iter()
                .filter_map(|h| h.value.get())
                .any(|h| h.as_str().eq_ignore_ascii_case(header.trim()));
            if !configured {
                eprintln!(
                    "note: `{header}` is not in login.api_key_headers: the gateway does not read keys from it"
                );
            }
            let key = read_password(&format!("API key ({header}): "))?;
            let credentials = Credentials::ApiKey {
                header: header.trim().to_ascii_lowercase(),
                key,
            };
            (credentials, "this key".to_string())
        }
    };
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
                None if credentials.username().is_some() => {
                    writeln!(out, "verdict: rejected (wrong password)")?
                }
                None => writeln!(out, "verdict: rejected (wrong, expired or revoked)")?,
            }
            1
        }
        ChainOutcome::NotFound => {
            writeln!(out, "verdict: not found (no backend knows {who})")?;
            1
        }
        ChainOutcome::Denied { entry, reason } => {
            writeln!(out, "verdict: denied by `{entry}`: {reason}")?;
            1
        }
        ChainOutcome::Unavailable { entry, error } => {
            writeln!(
                out,
                "verdict: unavailable: `{entry}` could not answer: {}",
                crate::error_chain::Chain(error)
            )?;
            1
        }
    };
    Ok(code)
}

fn millis(d: Duration) -> String {
    format!("{:.1}ms", d.as_secs_f64() * 1000.0)
}

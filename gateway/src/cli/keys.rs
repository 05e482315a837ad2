//! `authgate keys ...`: the API keys of the local user store (`users_db`).

use std::io::Write;
use std::path::Path;

use clap::Subcommand;

use super::check::INVALID_CONFIG;
use super::services::store_for_cli;

/// What to do with API keys.
#[derive(Debug, Clone, Subcommand)]
pub enum KeysAction {
    /// Make an API key for a user of the store and print it (the only time it is shown; the
    /// store keeps a salted hash).
    Add {
        /// The username.
        username: String,
        /// How long the key is valid (`90d`, `12h`...); default: until revoked.
        #[arg(long, value_parser = parse_duration)]
        expires: Option<std::time::Duration>,
        /// A label for `keys list` (`ci`, `reporting`...).
        #[arg(long)]
        name: Option<String>,
    },
    /// List the keys (of one user when given): id, user, name, times, status. Never a secret.
    List {
        /// Only this user's keys.
        username: Option<String>,
    },
    /// Revoke a key by id: every gateway sharing the store refuses it within a second.
    Revoke {
        /// The key's id (the part after `ag_`, as `keys list` shows it).
        id: String,
    },
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let d: auth_core::Duration = s.parse()?;
    if d.get().is_zero() {
        return Err("an expiry must be longer than 0".into());
    }
    Ok(d.get())
}

/// Runs `action` against the store named by the config at `path`.
pub(crate) fn keys(
    path: &Path,
    action: KeysAction,
    out: &mut dyn Write,
) -> Result<u8, super::CliError> {
    let Some((loaded, runtime, store)) = store_for_cli(path)? else {
        return Ok(INVALID_CONFIG);
    };
    match action {
        KeysAction::Add {
            username,
            expires,
            name,
        } => {
            let (key, stored) =
                runtime.block_on(store.add_api_key(&username, name.as_deref(), expires))?;
            if loaded.config.login.api_key_headers.is_empty() {
                eprintln!(
                    "note: login.api_key_headers is empty: the gateway reads no API key until it names a header"
                );
            }
            eprintln!(
                "API key `{}` for `{username}`{}; shown once, store it now:",
                stored.id,
                stored
                    .expires_at
                    .map(|t| format!(", expires {}", timestamp(t)))
                    .unwrap_or_default()
            );
            writeln!(out, "{key}")?;
        }
        KeysAction::Revoke { id } => {
            runtime.block_on(store.revoke_api_key(&id))?;
            writeln!(out, "revoked `{id}`")?;
        }
        KeysAction::List { username } => {
            let keys = runtime.block_on(store.list_api_keys(username.as_deref()))?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            let rows: Vec<[String; 7]> = keys
                .iter()
                .map(|k| {
                    let status = match (k.revoked_at, k.expires_at) {
                        (Some(_), _) => "revoked",
                        (None, Some(e)) if e <= now => "expired",
                        _ => "active",
                    };
                    let when = |t: Option<i64>| t.map_or_else(|| "-".to_string(), timestamp);
                    [
                        k.id.clone(),
                        k.username.clone(),
                        k.name.clone().unwrap_or_else(|| "-".into()),
                        timestamp(k.created_at),
                        when(k.expires_at),
                        when(k.last_used_at),
                        status.to_string(),
                    ]
                })
                .collect();
            let header = [
                "ID",
                "USER",
                "NAME",
                "CREATED",
                "EXPIRES",
                "LAST USED",
                "STATUS",
            ];
            super::table::write_table(out, header, &rows)?;
        }
    }
    Ok(0)
}

/// Unix seconds as an RFC 3339 UTC time (to the second).
fn timestamp(secs: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

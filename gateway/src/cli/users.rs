//! `authgate users ...`: manage the local user store (`users_db`).

use std::io::Write;
use std::path::Path;

use clap::Subcommand;

use super::check::INVALID_CONFIG;
use super::password_input::{interactive, read_password};
use super::services::store_for_cli;

/// What to do with the local users.
#[derive(Debug, Clone, Subcommand)]
pub enum UsersAction {
    /// Add a local user; asks for the password (at least 12 characters; read from stdin when
    /// piped).
    Add {
        /// The username.
        username: String,
        /// Email address.
        #[arg(long)]
        email: Option<String>,
        /// Display name.
        #[arg(long = "display-name")]
        display_name: Option<String>,
        /// A group (repeat for several).
        #[arg(long = "group", short = 'g')]
        groups: Vec<String>,
        /// Create the user without a password (cannot log in until `users passwd`).
        #[arg(long)]
        no_password: bool,
    },
    /// Set a user's password (their sessions end).
    Passwd {
        /// The username.
        username: String,
    },
    /// List the users.
    List,
    /// Disable a user: they cannot log in and their sessions end.
    Disable {
        /// The username.
        username: String,
    },
    /// Enable a disabled user.
    Enable {
        /// The username.
        username: String,
    },
    /// Delete a user.
    Delete {
        /// The username.
        username: String,
    },
}

/// The fewest characters a password set with `users add` / `users passwd` may have.
pub(crate) const MIN_PASSWORD_CHARS: usize = 12;

fn new_password(prompt: &str) -> Result<String, super::CliError> {
    let password = read_password(prompt)?;
    if password.is_empty() {
        return Err(super::CliError::Message("the password is empty".into()));
    }
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(super::CliError::Message(format!(
            "the password has {chars} characters; at least {MIN_PASSWORD_CHARS} are required"
        )));
    }
    if interactive() && read_password("Again: ")? != password {
        return Err(super::CliError::Message("the passwords differ".into()));
    }
    Ok(password)
}

/// Runs `action` against the store named by the config at `path`.
pub(crate) fn users(
    path: &Path,
    action: UsersAction,
    out: &mut dyn Write,
) -> Result<u8, super::CliError> {
    let Some((_loaded, runtime, store)) = store_for_cli(path)? else {
        return Ok(INVALID_CONFIG);
    };
    match action {
        UsersAction::Add {
            username,
            email,
            display_name,
            groups,
            no_password,
        } => {
            let password = if no_password {
                None
            } else {
                Some(new_password(&format!("Password for {username}: "))?)
            };
            runtime.block_on(store.add(
                &username,
                password.as_deref(),
                email.as_deref(),
                display_name.as_deref(),
                &groups,
            ))?;
            writeln!(out, "added `{username}`")?;
        }
        UsersAction::Passwd { username } => {
            let password = new_password(&format!("New password for {username}: "))?;
            runtime.block_on(store.set_password(&username, &password))?;
            writeln!(out, "password of `{username}` changed")?;
        }
        UsersAction::Disable { username } => {
            runtime.block_on(store.disable(&username))?;
            writeln!(out, "disabled `{username}`")?;
        }
        UsersAction::Enable { username } => {
            runtime.block_on(store.enable(&username))?;
            writeln!(out, "enabled `{username}`")?;
        }
        UsersAction::Delete { username } => {
            runtime.block_on(store.delete(&username))?;
            writeln!(out, "deleted `{username}`")?;
        }
        UsersAction::List => {
            let users = runtime.block_on(store.list())?;
            let rows: Vec<[String; 6]> = users
                .iter()
                .map(|u| {
                    let groups: Vec<&str> = u.groups.iter().map(String::as_str).collect();
                    let status = match (u.disabled, u.password_hash.is_some()) {
                        (true, _) => "disabled",
                        (false, true) => "enabled",
                        (false, false) => "no password",
                    };
                    [
                        u.username.clone(),
                        u.source.clone(),
                        status.to_string(),
                        groups.join(","),
                        u.email.clone().unwrap_or_default(),
                        last_login(u.last_login_at),
                    ]
                })
                .collect();
            let header = [
                "USERNAME",
                "SOURCE",
                "STATUS",
                "GROUPS",
                "EMAIL",
                "LAST LOGIN",
            ];
            super::table::write_table(out, header, &rows)?;
        }
    }
    Ok(0)
}

/// A last-login time in UTC to the second (`2026-12-07T09:30:00Z`), or `never`.
fn last_login(at: Option<i64>) -> String {
    match at.and_then(|s| u64::try_from(s).ok()) {
        Some(secs) => humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs),
        )
        .to_string(),
        None => "never".to_string(),
    }
}

//! `authgate hash-password`.

use std::io::Write;

use super::password_input::{interactive, read_password};

/// Reads a password (twice on a terminal) and prints its Argon2id hash.
pub(crate) fn hash_password(out: &mut dyn Write) -> Result<u8, super::CliError> {
    let password = read_password("Password: ")?;
    if password.is_empty() {
        return Err(super::CliError::Message("the password is empty".into()));
    }
    if interactive() && read_password("Again: ")? != password {
        return Err(super::CliError::Message("the passwords differ".into()));
    }
    writeln!(out, "{}", hash(&password)?)?;
    Ok(0)
}

/// An Argon2id PHC string (OWASP parameters, random salt).
fn hash(password: &str) -> Result<String, super::CliError> {
    auth_core::password::hash_password(password)
        .map_err(|e| super::CliError::Message(format!("cannot hash the password: {e}")))
}

//! `gateway hash-password`.

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

/// An Argon2id PHC string (m=19456 KiB, t=2, p=1, random salt).
fn hash(password: &str) -> Result<String, super::CliError> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| super::CliError::Message(format!("cannot hash the password: {e}")))
}

//! The credential policy: what the chain refuses before any backend runs, on every credential
//! path (HTTP Basic, the login form, forward-auth, `authgate explain`). A backend never sees an
//! empty, over-long or control-character-bearing username, password, token or key.

use std::fmt;

use crate::Credentials;

/// Longest username, in bytes, that can authenticate.
pub const MAX_USERNAME_BYTES: usize = 256;
/// Longest password, in bytes, that can authenticate. Bounds the work one guess costs (SHA-crypt
/// and PBKDF2 hash the password itself) and the size of what a backend is sent.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Longest bearer token or API key, in bytes, that can authenticate.
pub const MAX_TOKEN_BYTES: usize = 4096;

/// Name of the trace step the chain records when the policy refuses credentials (its outcome is
/// `refused`, its detail the [`Violation`]); no backend is called.
pub const POLICY_STEP: &str = "policy";

/// Which rule a credential broke. Names the rule, never the value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Violation {
    /// The username is empty.
    EmptyUsername,
    /// The password is empty.
    EmptyPassword,
    /// The username is longer than [`MAX_USERNAME_BYTES`].
    UsernameTooLong,
    /// The password is longer than [`MAX_PASSWORD_BYTES`].
    PasswordTooLong,
    /// The username holds NUL or another control character.
    ControlInUsername,
    /// The password holds NUL or another control character.
    ControlInPassword,
    /// The bearer token or API key is empty.
    EmptyToken,
    /// The bearer token or API key is longer than [`MAX_TOKEN_BYTES`].
    TokenTooLong,
    /// The bearer token or API key holds a control character.
    ControlInToken,
}

impl Violation {
    /// A short stable label (`empty_password`, `password_too_long`...), for logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            Violation::EmptyUsername => "empty_username",
            Violation::EmptyPassword => "empty_password",
            Violation::UsernameTooLong => "username_too_long",
            Violation::PasswordTooLong => "password_too_long",
            Violation::ControlInUsername => "control_in_username",
            Violation::ControlInPassword => "control_in_password",
            Violation::EmptyToken => "empty_token",
            Violation::TokenTooLong => "token_too_long",
            Violation::ControlInToken => "control_in_token",
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::EmptyUsername => f.write_str("empty username"),
            Violation::EmptyPassword => f.write_str("empty password"),
            Violation::UsernameTooLong => {
                write!(f, "username longer than {MAX_USERNAME_BYTES} bytes")
            }
            Violation::PasswordTooLong => {
                write!(f, "password longer than {MAX_PASSWORD_BYTES} bytes")
            }
            Violation::ControlInUsername => f.write_str("control character in the username"),
            Violation::ControlInPassword => f.write_str("control character in the password"),
            Violation::EmptyToken => f.write_str("empty token"),
            Violation::TokenTooLong => write!(f, "token longer than {MAX_TOKEN_BYTES} bytes"),
            Violation::ControlInToken => f.write_str("control character in the token"),
        }
    }
}

/// `value` is non-empty, at most `max` bytes, and free of control characters (C0 including NUL
/// and TAB, DEL, C1).
fn check_value(
    value: &str,
    max: usize,
    [empty, long, control]: [Violation; 3],
) -> Result<(), Violation> {
    if value.is_empty() {
        Err(empty)
    } else if value.len() > max {
        Err(long)
    } else if value.chars().any(char::is_control) {
        Err(control)
    } else {
        Ok(())
    }
}

/// Whether a password may be checked at all: non-empty, at most [`MAX_PASSWORD_BYTES`], no
/// control characters. [`crate::password::verify_stored`] answers `Mismatch` for any other
/// password, whoever calls it.
pub fn check_password(password: &str) -> Result<(), Violation> {
    check_value(
        password,
        MAX_PASSWORD_BYTES,
        [
            Violation::EmptyPassword,
            Violation::PasswordTooLong,
            Violation::ControlInPassword,
        ],
    )
}

/// Checks `credentials` against the policy. [`crate::Chain::authenticate`] calls it first and,
/// on `Err`, answers `Rejected` without calling any backend.
pub fn check(credentials: &Credentials) -> Result<(), Violation> {
    let token = [
        Violation::EmptyToken,
        Violation::TokenTooLong,
        Violation::ControlInToken,
    ];
    match credentials {
        Credentials::Password { username, password } => {
            check_value(
                username,
                MAX_USERNAME_BYTES,
                [
                    Violation::EmptyUsername,
                    Violation::UsernameTooLong,
                    Violation::ControlInUsername,
                ],
            )?;
            check_password(password)
        }
        Credentials::Bearer(token_value) => check_value(token_value, MAX_TOKEN_BYTES, token),
        Credentials::ApiKey { key, .. } => check_value(key, MAX_TOKEN_BYTES, token),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_inclusive() {
        let user = "u".repeat(MAX_USERNAME_BYTES);
        let pw = "p".repeat(MAX_PASSWORD_BYTES);
        assert_eq!(check(&Credentials::password(&user, &pw)), Ok(()));
        assert_eq!(
            check(&Credentials::password(format!("{user}u"), "p")),
            Err(Violation::UsernameTooLong)
        );
        assert_eq!(
            check(&Credentials::password("u", format!("{pw}p"))),
            Err(Violation::PasswordTooLong)
        );
        // Bytes, not characters.
        let wide = "é".repeat(MAX_PASSWORD_BYTES / 2 + 1);
        assert_eq!(
            check(&Credentials::password("u", wide)),
            Err(Violation::PasswordTooLong)
        );
        let token = "t".repeat(MAX_TOKEN_BYTES);
        assert_eq!(check(&Credentials::Bearer(token.clone())), Ok(()));
        assert_eq!(
            check(&Credentials::Bearer(format!("{token}t"))),
            Err(Violation::TokenTooLong)
        );
    }

    #[test]
    fn control_characters_anywhere_are_refused() {
        for c in ['\0', '\t', '\n', '\r', '\x1b', '\x7f', '\u{85}', '\u{9f}'] {
            assert_eq!(
                check(&Credentials::password(format!("al{c}ice"), "pw")),
                Err(Violation::ControlInUsername),
                "{c:?}"
            );
            assert_eq!(
                check(&Credentials::password("alice", format!("pw{c}"))),
                Err(Violation::ControlInPassword),
                "{c:?}"
            );
            assert_eq!(
                check(&Credentials::ApiKey {
                    header: "x-api-key".into(),
                    key: format!("{c}k")
                }),
                Err(Violation::ControlInToken),
                "{c:?}"
            );
        }
        assert_eq!(
            check(&Credentials::password("jos\u{e9}", "p\u{e4}ss w")),
            Ok(())
        );
    }

    #[test]
    fn the_message_names_the_rule_never_the_value() {
        let v = check(&Credentials::password("alice", "secret\0")).unwrap_err();
        assert!(!v.to_string().contains("secret"));
        assert_eq!(v.label(), "control_in_password");
    }
}

//! Parsing of the login and logout form bodies (`application/x-www-form-urlencoded`).

use std::fmt;

use auth_core::Credentials;
use percent_encoding::percent_decode;
use url::form_urlencoded;

use super::next::MAX_NEXT_LEN;

/// Longest username accepted, in bytes.
pub(super) const MAX_USERNAME_BYTES: usize = 256;
/// Longest password accepted, in bytes.
pub(super) const MAX_PASSWORD_BYTES: usize = 1024;
/// Longest CSRF token accepted, in bytes.
pub(super) const MAX_CSRF_BYTES: usize = 256;

/// The fields of a submitted login form. `Debug` never shows the password or the CSRF token.
#[derive(Clone, PartialEq, Eq)]
pub struct LoginForm {
    /// As typed; the chain's backends canonicalize it.
    pub username: String,
    password: String,
    /// The CSRF token from the hidden field; the caller must compare it (in constant time) with
    /// the one bound to the visitor's cookie.
    pub csrf: String,
    /// The raw `next` field, not yet validated: pass it through
    /// [`super::validate_next`] before using it.
    pub next: Option<String>,
}

impl LoginForm {
    /// The password as submitted.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// Username and password credentials for the chain.
    pub fn credentials(&self) -> Credentials {
        Credentials::password(self.username.clone(), self.password.clone())
    }
}

impl fmt::Debug for LoginForm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginForm")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("csrf", &"<redacted>")
            .field("next", &self.next)
            .finish()
    }
}

/// Why a form body was refused. The messages are safe to show to the user; none contains a
/// submitted value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    /// A required field is absent.
    #[error("the form is missing the `{0}` field")]
    Missing(&'static str),
    /// A required field is empty.
    #[error("enter your {0}")]
    Empty(&'static str),
    /// One of our fields appears more than once.
    #[error("the form has the `{0}` field more than once")]
    Duplicate(&'static str),
    /// A field is longer than its limit.
    #[error("the `{0}` field is too long")]
    TooLong(&'static str),
    /// A field holds a NUL byte (or, in the username, another control character).
    #[error("the `{0}` field contains a forbidden character")]
    ForbiddenCharacter(&'static str),
    /// The body is not valid UTF-8 once decoded.
    #[error("the form is not valid UTF-8")]
    InvalidUtf8,
}

/// Parses a login form: `username`, `password`, `csrf` (all required, non-empty) and `next`
/// (optional). Other fields are ignored; a duplicate of one of these four, a NUL byte, a control
/// character in the username, invalid UTF-8 or an over-long field is an error. The caller must
/// bound the body size before reading it (`server.max_login_body_bytes`).
pub fn parse_login_form(body: &[u8]) -> Result<LoginForm, FormError> {
    let mut fields = Fields::parse(body, &["username", "password", "csrf", "next"])?;
    let username = fields.required("username", MAX_USERNAME_BYTES)?;
    if username.chars().any(char::is_control) {
        return Err(FormError::ForbiddenCharacter("username"));
    }
    let password = fields.required("password", MAX_PASSWORD_BYTES)?;
    let csrf = fields.required("csrf", MAX_CSRF_BYTES)?;
    let next = fields.optional("next", MAX_NEXT_LEN)?;
    Ok(LoginForm {
        username,
        password,
        csrf,
        next: next.filter(|next| !next.is_empty()),
    })
}

/// Parses the logout form and returns its `csrf` field (required, compared by the caller).
pub(crate) fn parse_logout_form(body: &[u8]) -> Result<String, FormError> {
    Fields::parse(body, &["csrf"])?.required("csrf", MAX_CSRF_BYTES)
}

/// The values of the fields we know, each seen at most once.
struct Fields {
    values: Vec<(&'static str, Option<String>)>,
}

impl Fields {
    fn parse(body: &[u8], known: &[&'static str]) -> Result<Fields, FormError> {
        // `form_urlencoded` decodes lossily; a password must not silently change, so refuse
        // invalid UTF-8 first. Decoding the whole body is equivalent to decoding each field:
        // the ASCII `&` and `=` separators cannot complete a multi-byte sequence.
        let plus_as_space: Vec<u8> = body
            .iter()
            .map(|b| if *b == b'+' { b' ' } else { *b })
            .collect();
        if std::str::from_utf8(&percent_decode(&plus_as_space).collect::<Vec<u8>>()).is_err() {
            return Err(FormError::InvalidUtf8);
        }
        let mut values: Vec<(&'static str, Option<String>)> =
            known.iter().map(|name| (*name, None)).collect();
        for (name, value) in form_urlencoded::parse(body) {
            let Some((field, slot)) = values.iter_mut().find(|(known, _)| *known == name) else {
                continue;
            };
            if slot.is_some() {
                return Err(FormError::Duplicate(field));
            }
            if value.contains('\0') {
                return Err(FormError::ForbiddenCharacter(field));
            }
            *slot = Some(value.into_owned());
        }
        Ok(Fields { values })
    }

    fn optional(&mut self, name: &'static str, max: usize) -> Result<Option<String>, FormError> {
        let value = self
            .values
            .iter_mut()
            .find(|(known, _)| *known == name)
            .and_then(|(_, value)| value.take());
        match value {
            Some(value) if value.len() > max => Err(FormError::TooLong(name)),
            value => Ok(value),
        }
    }

    fn required(&mut self, name: &'static str, max: usize) -> Result<String, FormError> {
        match self.optional(name, max)? {
            None => Err(FormError::Missing(name)),
            Some(value) if value.is_empty() => Err(FormError::Empty(name)),
            Some(value) => Ok(value),
        }
    }
}

#[cfg(test)]
mod tests {
    // The login and logout form parsers.

    use super::{FormError, MAX_PASSWORD_BYTES, MAX_USERNAME_BYTES};
    use crate::login::{parse_login_form, parse_logout_form};
    use auth_core::Credentials;

    #[test]
    fn parses_the_four_fields_with_form_encoding() {
        let form = parse_login_form(
            b"username=alice%40example.org&password=p%26ss+w%3Drd%C3%A9&csrf=tok123&next=%2Fapp%3Fx%3D1",
        )
        .expect("valid form");
        assert_eq!(form.username, "alice@example.org");
        assert_eq!(form.password(), "p&ss w=rdé");
        assert_eq!(form.csrf, "tok123");
        assert_eq!(form.next.as_deref(), Some("/app?x=1"));
        assert_eq!(
            form.credentials(),
            Credentials::password("alice@example.org", "p&ss w=rdé")
        );
    }

    #[test]
    fn field_order_and_unknown_fields_do_not_matter() {
        let form = parse_login_form(b"submit=Sign+in&csrf=t&password=pw&username=bob")
            .expect("valid form");
        assert_eq!(form.username, "bob");
        assert_eq!(form.password(), "pw");
        assert_eq!(form.next, None);
        let form = parse_login_form(b"username=bob&password=pw&csrf=t&next=").expect("valid form");
        assert_eq!(form.next, None, "an empty next is no next");
    }

    #[test]
    fn password_and_csrf_never_appear_in_debug() {
        let form = parse_login_form(b"username=alice&password=hunter2secret&csrf=csrf-token-value")
            .expect("valid form");
        let debug = format!("{form:?}");
        assert!(debug.contains("alice"), "{debug}");
        assert!(!debug.contains("hunter2secret"), "{debug}");
        assert!(!debug.contains("csrf-token-value"), "{debug}");
        let debug = format!("{form:#?}");
        assert!(!debug.contains("hunter2secret"), "{debug}");
    }

    #[test]
    fn refuses_bad_bodies() {
        let long_user = format!(
            "username={}&password=pw&csrf=t",
            "u".repeat(MAX_USERNAME_BYTES + 1)
        );
        let long_password = format!(
            "username=u&password={}&csrf=t",
            "p".repeat(MAX_PASSWORD_BYTES + 1)
        );
        let long_next = format!("username=u&password=p&csrf=t&next=/{}", "n".repeat(5000));
        let cases: Vec<(&[u8], FormError)> = vec![
            (b"password=pw&csrf=t", FormError::Missing("username")),
            (b"username=u&csrf=t", FormError::Missing("password")),
            (b"username=u&password=pw", FormError::Missing("csrf")),
            (
                b"username=&password=pw&csrf=t",
                FormError::Empty("username"),
            ),
            (b"username=u&password=&csrf=t", FormError::Empty("password")),
            (
                b"username=u&username=admin&password=pw&csrf=t",
                FormError::Duplicate("username"),
            ),
            (
                b"username=u&password=a&password=b&csrf=t",
                FormError::Duplicate("password"),
            ),
            (
                b"username=u&password=p&csrf=a&csrf=b",
                FormError::Duplicate("csrf"),
            ),
            (
                b"username=u&password=p&csrf=t&next=/a&next=//evil",
                FormError::Duplicate("next"),
            ),
            (
                b"username=u%00&password=p&csrf=t",
                FormError::ForbiddenCharacter("username"),
            ),
            (
                b"username=u&password=p%00w&csrf=t",
                FormError::ForbiddenCharacter("password"),
            ),
            (
                b"username=u\0&password=p&csrf=t",
                FormError::ForbiddenCharacter("username"),
            ),
            (
                b"username=ali%0Ace&password=p&csrf=t",
                FormError::ForbiddenCharacter("username"),
            ),
            (b"username=u&password=%FF%FE&csrf=t", FormError::InvalidUtf8),
            (b"username=u&password=\xC3&csrf=t", FormError::InvalidUtf8),
            (long_user.as_bytes(), FormError::TooLong("username")),
            (long_password.as_bytes(), FormError::TooLong("password")),
            (long_next.as_bytes(), FormError::TooLong("next")),
        ];
        for (body, expected) in cases {
            assert_eq!(
                parse_login_form(body).map(|_| ()),
                Err(expected.clone()),
                "{}",
                String::from_utf8_lossy(body)
            );
            let message = expected.to_string();
            assert!(
                !message.contains("admin") && !message.contains("evil"),
                "{message}"
            );
        }
    }

    #[test]
    fn logout_form_needs_exactly_one_csrf() {
        assert_eq!(parse_logout_form(b"csrf=abc").as_deref(), Ok("abc"));
        assert_eq!(parse_logout_form(b""), Err(FormError::Missing("csrf")));
        assert_eq!(
            parse_logout_form(b"csrf=a&csrf=b"),
            Err(FormError::Duplicate("csrf"))
        );
    }
}

//! The login and logout form parsers.

use auth_core::Credentials;
use gateway::login::{
    FormError, MAX_PASSWORD_BYTES, MAX_USERNAME_BYTES, parse_login_form, parse_logout_form,
};

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
    let form =
        parse_login_form(b"submit=Sign+in&csrf=t&password=pw&username=bob").expect("valid form");
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

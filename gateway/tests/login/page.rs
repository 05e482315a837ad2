//! The gateway's HTML pages and the login template.

use base64::Engine as _;
use gateway::login::{
    ErrorPage, LoginPage, Template, TemplateError, builtin_csp, load_error_template, load_template,
    render_error, render_error_page, render_forbidden, render_logged_out, render_login,
    render_logout_confirm, render_unauthorized,
};
use http::StatusCode;
use sha2::{Digest, Sha256};

const HOSTILE: &str = "\"><script>alert('x')</script>&amp;";
const HOSTILE_ESCAPED: &str =
    "&quot;&gt;&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&amp;amp;";

fn page<'a>(error: Option<&'a str>, username: &'a str) -> LoginPage<'a> {
    LoginPage {
        title: "Sign in to Acme",
        action: "/_auth/login",
        next: "/app?x=1&y=2",
        csrf_token: "csrf-abc",
        error,
        username,
        sso: &[],
        password_form: true,
    }
}

fn builtin_pages() -> Vec<(&'static str, String)> {
    vec![
        (
            "login",
            render_login(&page(Some("Wrong username or password."), "alice")),
        ),
        ("forbidden", render_forbidden("alice", "/_auth/logout")),
        ("unauthorized", render_unauthorized("/_auth/login?next=%2F")),
        (
            "error",
            render_error(StatusCode::BAD_GATEWAY, "The application is not answering."),
        ),
        (
            "error_page",
            render_error_page(&ErrorPage::for_status(&StatusCode::GATEWAY_TIMEOUT)),
        ),
        ("logged_out", render_logged_out("/_auth/login")),
        (
            "logout_confirm",
            render_logout_confirm("/_auth/logout", "csrf-abc", Some("alice")),
        ),
    ]
}

#[test]
fn login_page_is_accessible_markup() {
    let html = render_login(&page(None, ""));
    assert!(html.starts_with("<!doctype html>"));
    assert!(html.contains("<html lang=\"en\">"));
    assert!(html.contains("<title>Sign in to Acme</title>"));
    assert!(html.contains("<h1>Sign in to Acme</h1>"));
    assert!(html.contains("<form method=\"post\" action=\"/_auth/login\">"));
    for (id, autocomplete) in [("username", "username"), ("password", "current-password")] {
        assert!(
            html.contains(&format!("<label for=\"{id}\">")),
            "label for {id}"
        );
        assert!(
            html.contains(&format!("id=\"{id}\" name=\"{id}\"")),
            "input {id}"
        );
        assert!(
            html.contains(&format!("autocomplete=\"{autocomplete}\"")),
            "autocomplete {autocomplete}"
        );
    }
    assert!(html.contains("type=\"password\""));
    assert!(html.contains("name=\"csrf\" value=\"csrf-abc\""));
    assert!(html.contains("name=\"next\" value=\"/app?x=1&amp;y=2\""));
    assert!(
        html.contains("role=\"alert\"></div>"),
        "empty alert without error"
    );
    assert!(html.contains("<button type=\"submit\""));
    assert!(html.contains(":focus-visible"), "visible focus styles");
    assert!(html.contains("prefers-color-scheme: dark"), "dark mode");
    assert!(html.contains("name=\"viewport\""), "responsive");
}

#[test]
fn error_is_announced_and_username_refilled() {
    let html = render_login(&page(Some("Wrong username or password."), "alice"));
    assert!(html.contains("role=\"alert\">Wrong username or password.</div>"));
    assert!(html.contains("value=\"alice\""));
    assert!(
        !html.contains("type=\"password\" value="),
        "password never re-filled"
    );
}

#[test]
fn every_value_is_escaped() {
    let hostile = LoginPage {
        title: HOSTILE,
        action: HOSTILE,
        next: HOSTILE,
        csrf_token: HOSTILE,
        error: Some(HOSTILE),
        username: HOSTILE,
        sso: &[],
        password_form: true,
    };
    let html = render_login(&hostile);
    assert!(!html.contains("<script>"), "{html}");
    assert_eq!(
        html.matches(HOSTILE_ESCAPED).count(),
        7,
        "title twice + 5 values"
    );
    for html in [
        render_forbidden(HOSTILE, HOSTILE),
        render_unauthorized(HOSTILE),
        render_error(StatusCode::INTERNAL_SERVER_ERROR, HOSTILE),
        render_logged_out(HOSTILE),
        render_logout_confirm(HOSTILE, HOSTILE, Some(HOSTILE)),
    ] {
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains(HOSTILE_ESCAPED), "{html}");
    }
}

#[test]
fn builtin_pages_have_no_script_no_external_assets_and_match_the_csp() {
    let csp = builtin_csp();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let handler = regex::Regex::new(r"(?i)\son[a-z]+\s*=").expect("regex");
    for (name, html) in builtin_pages() {
        assert!(!html.to_ascii_lowercase().contains("<script"), "{name}");
        assert!(!handler.is_match(&html), "{name}: no inline event handlers");
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "{name}"
        );
        assert!(html.contains("<html lang=\"en\">"), "{name}");
        let start = html.find("<style>").expect("style") + "<style>".len();
        let end = html.find("</style>").expect("style end");
        let hash =
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&html[start..end]));
        assert!(csp.contains(&format!("'sha256-{hash}'")), "{name}: {csp}");
        assert_eq!(html.matches("<style>").count(), 1, "{name}");
        assert!(
            !html.contains("style=\""),
            "{name}: no inline style attributes"
        );
    }
    assert_eq!(Template::builtin().csp(), Some(csp));
}

#[test]
fn pages_say_what_happened() {
    let forbidden = render_forbidden("alice", "/_auth/logout");
    assert!(forbidden.contains("<span class=\"who\">alice</span>"));
    assert!(forbidden.contains("href=\"/_auth/logout\""));
    let error = render_error(StatusCode::BAD_GATEWAY, "The application is not answering.");
    assert!(error.contains("<h1>502 Bad Gateway</h1>"));
    assert!(error.contains("The application is not answering."));
    let confirm = render_logout_confirm("/_auth/logout", "csrf-abc", None);
    assert!(confirm.contains("<form method=\"post\" action=\"/_auth/logout\">"));
    assert!(confirm.contains("name=\"csrf\" value=\"csrf-abc\""));
    assert!(!confirm.contains("signed in as"));
    assert!(render_logged_out("/_auth/login").contains("href=\"/_auth/login\""));
    assert!(
        render_unauthorized("/_auth/login?next=%2F").contains("href=\"/_auth/login?next=%2F\"")
    );
}

#[test]
fn custom_template_renders_escaped_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("login.html");
    std::fs::write(
        &path,
        "<h1>{{title}}</h1><p>{{ error }}</p><form action=\"{{action}}\">\
         <input name=csrf value=\"{{csrf}}\"><input name=next value=\"{{next}}\">\
         <input name=username value=\"{{username}}\"></form>",
    )
    .expect("write");
    let template = load_template(&path).expect("valid template");
    assert_eq!(template.csp(), None, "no CSP for an operator's markup");
    let html = template.render(&page(Some("Bad <password>"), "bob"));
    assert_eq!(
        html,
        "<h1>Sign in to Acme</h1><p>Bad &lt;password&gt;</p><form action=\"/_auth/login\">\
         <input name=csrf value=\"csrf-abc\"><input name=next value=\"/app?x=1&amp;y=2\">\
         <input name=username value=\"bob\"></form>"
    );
}

#[test]
fn template_errors_are_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        path
    };
    let missing_csrf = write("a.html", "<form action=\"{{action}}\"></form>");
    let err = load_template(&missing_csrf).expect_err("no csrf");
    assert!(matches!(err, TemplateError::Missing("csrf")), "{err:?}");
    assert!(err.to_string().contains("{{csrf}}"), "{err}");

    let missing_action = write("b.html", "<input value=\"{{csrf}}\">");
    assert!(matches!(
        load_template(&missing_action),
        Err(TemplateError::Missing("action"))
    ));

    let typo = write("c.html", "{{action}}\n{{csrf}}\n\n{{usernme}}");
    let err = load_template(&typo).expect_err("typo");
    assert!(
        matches!(&err, TemplateError::UnknownPlaceholder { name, line: 4, .. } if name == "usernme"),
        "{err:?}"
    );
    assert!(err.to_string().contains("`{{usernme}}` at line 4"), "{err}");

    let unclosed = write("d.html", "{{action}}{{csrf}}\n{{title");
    assert!(matches!(
        load_template(&unclosed),
        Err(TemplateError::Unclosed { line: 2 })
    ));

    let absent = dir.path().join("absent.html");
    let err = load_template(&absent).expect_err("absent");
    assert!(matches!(err, TemplateError::Read { .. }), "{err:?}");
    assert!(err.to_string().contains("absent.html"), "{err}");

    let big = write("e.html", &"x".repeat(2 * 1024 * 1024));
    assert!(matches!(
        load_template(&big),
        Err(TemplateError::TooLarge { .. })
    ));
}

#[test]
fn login_page_debug_hides_the_csrf_token() {
    let debug = format!("{:?}", page(None, "alice"));
    assert!(debug.contains("alice"));
    assert!(!debug.contains("csrf-abc"), "{debug}");
}

#[test]
fn error_pages_show_status_title_and_message_escaped() {
    let html = render_error_page(&ErrorPage::for_status(&StatusCode::BAD_GATEWAY));
    assert!(html.contains("<title>Bad gateway</title>"), "{html}");
    assert!(html.contains("<h1>Bad gateway</h1>"), "{html}");
    assert!(html.contains("Error 502"), "{html}");
    let hostile = render_error_page(&ErrorPage {
        status: HOSTILE,
        title: HOSTILE,
        message: HOSTILE,
    });
    assert!(!hostile.contains("<script>"), "{hostile}");
    assert_eq!(hostile.matches(HOSTILE_ESCAPED).count(), 4, "{hostile}");
    for status in [404, 500, 502, 503, 504] {
        let status = StatusCode::from_u16(status).unwrap();
        let page = ErrorPage::for_status(&status);
        assert_eq!(page.status, status.as_str());
        assert!(
            !page.title.is_empty() && page.message.ends_with('.'),
            "{page:?}"
        );
    }
}

#[test]
fn error_template_has_its_own_placeholders() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("error.html");
    std::fs::write(&path, "<h1>{{ title }}</h1><p>{{status}}: {{message}}</p>").expect("write");
    let template = load_error_template(&path).expect("valid template");
    assert_eq!(template.csp(), None, "no CSP for an operator's markup");
    let html = template.render_error(&ErrorPage {
        status: "502",
        title: "Bad <gateway>",
        message: "Try \"later\"",
    });
    assert_eq!(
        html,
        "<h1>Bad &lt;gateway&gt;</h1><p>502: Try &quot;later&quot;</p>"
    );
    // A login placeholder is refused, naming the error page's placeholders.
    std::fs::write(&path, "<p>{{message}}</p>\n<input value=\"{{csrf}}\">").expect("write");
    let err = load_error_template(&path).expect_err("csrf is not an error page value");
    assert!(
        matches!(&err, TemplateError::UnknownPlaceholder { name, line: 2, .. } if name == "csrf"),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .ends_with("expected one of status, title, message"),
        "{err}"
    );
    // And the login template does not take the error page's.
    assert!(matches!(
        Template::parse("{{action}}{{csrf}}{{status}}"),
        Err(TemplateError::UnknownPlaceholder { .. })
    ));
}

//! The gateway's own HTML pages: login, logout confirmation, signed out, 401, 403 and errors.
//! One stylesheet, no script, no external asset, so [`builtin_csp`] can forbid everything else.

use std::fmt;
use std::sync::LazyLock;

use base64::Engine as _;
use http::StatusCode;
use sha2::{Digest, Sha256};

use super::template::Template;

const STYLE: &str = include_str!("assets/style.css");

/// What the login page shows. Values are plain text: rendering escapes them.
#[derive(Clone, Copy)]
pub struct LoginPage<'a> {
    /// Page heading and `<title>` (`login.title`).
    pub title: &'a str,
    /// The URL the form posts to (e.g. `/_auth/login`).
    pub action: &'a str,
    /// The already validated `next` target, carried through the form.
    pub next: &'a str,
    /// The CSRF token bound to the visitor's pre-session cookie.
    pub csrf_token: &'a str,
    /// A message for the user after a failed attempt; `None` on first display.
    pub error: Option<&'a str>,
    /// The username to re-fill after a failed attempt (never the password).
    pub username: &'a str,
    /// One "Sign in with ..." button per single sign-on provider (the `{{sso}}` placeholder).
    pub sso: &'a [SsoLink<'a>],
    /// Whether the page offers the username and password form; `false` when the chain has
    /// only single sign-on entries (the built-in page then shows only the buttons).
    pub password_form: bool,
}

/// A single sign-on provider's button on the login page.
#[derive(Debug, Clone, Copy)]
pub struct SsoLink<'a> {
    /// Where the button leads (`{prefix}/oidc/{entry}/start?next=...`).
    pub href: &'a str,
    /// The provider's name, shown as "Sign in with {label}".
    pub label: &'a str,
}

/// The markup of the `{{sso}}` placeholder: a button per provider, every value escaped; after
/// them a divider when the password form follows. Empty without providers.
pub(crate) fn sso_markup(page: &LoginPage<'_>) -> String {
    if page.sso.is_empty() {
        return String::new();
    }
    let mut out = String::from("<div class=\"sso\">");
    for link in page.sso {
        out.push_str(&format!(
            "<a class=\"button sso-button\" href=\"{}\">Sign in with {}</a>",
            escape(link.href),
            escape(link.label)
        ));
    }
    out.push_str("</div>");
    if page.password_form {
        out.push_str("<p class=\"divider\"><span>or</span></p>");
    }
    out
}

impl fmt::Debug for LoginPage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginPage")
            .field("title", &self.title)
            .field("action", &self.action)
            .field("next", &self.next)
            .field("csrf_token", &"<redacted>")
            .field("error", &self.error)
            .field("username", &self.username)
            .field("sso", &self.sso)
            .field("password_form", &self.password_form)
            .finish()
    }
}

/// What an error page shows: only the status, a human title and a generic message, never an
/// internal detail (backend names, error strings, hosts, paths). Values are plain text:
/// rendering escapes them.
#[derive(Debug, Clone, Copy)]
pub struct ErrorPage<'a> {
    /// The status code, e.g. `502`.
    pub status: &'a str,
    /// A short human title, e.g. `Bad gateway`.
    pub title: &'a str,
    /// One or two sentences for the user.
    pub message: &'a str,
}

impl ErrorPage<'_> {
    /// The gateway's wording for `status`.
    pub fn for_status(status: &StatusCode) -> ErrorPage<'_> {
        let (title, message) = match status.as_u16() {
            400 => ("Bad request", "The request could not be understood."),
            404 => ("Page not found", "There is nothing at this address."),
            408 => (
                "Request timeout",
                "The request took too long to arrive. Please try again.",
            ),
            413 => ("Request too large", "The request is larger than allowed."),
            500 => (
                "Something went wrong",
                "The gateway could not complete the request. Please try again later.",
            ),
            502 => (
                "Bad gateway",
                "The application behind this site could not be reached. Please try again in a moment.",
            ),
            503 => (
                "Service unavailable",
                "The service is temporarily unavailable. Please try again in a moment.",
            ),
            504 => (
                "Gateway timeout",
                "The application behind this site took too long to respond. Please try again in a moment.",
            ),
            _ => (
                status.canonical_reason().unwrap_or("Error"),
                "The request could not be completed.",
            ),
        };
        ErrorPage {
            status: status.as_str(),
            title,
            message,
        }
    }
}

/// Renders the built-in page for an error status (send it with [`builtin_csp`]); with an
/// operator template, call [`Template::render_error`] on it instead.
#[cfg(test)]
pub(crate) fn render_error_page(page: &ErrorPage<'_>) -> String {
    Template::builtin_error().render_error(page)
}

/// The built-in error page as a template (`{{status}}`, `{{title}}`, `{{message}}`).
pub(crate) fn error_page_source() -> String {
    let body = format!(
        "{header}<a class=\"button secondary\" href=\"/\">Go to the start page</a>\
         <p class=\"footnote\">Error {{{{status}}}}</p>",
        header = heading(Icon::Stop, "{{title}}", Some("{{message}}")),
    );
    layout("{{title}}", &body)
}

/// Renders the built-in login page. With an operator template, call
/// `Template::render` on the template from `super::load_template` instead.
/// Send it with [`builtin_csp`] as `Content-Security-Policy`.
pub fn render_login(page: &LoginPage<'_>) -> String {
    if page.password_form {
        Template::builtin().render(page)
    } else {
        Template::builtin_sso_only().render(page)
    }
}

/// The `Content-Security-Policy` for every built-in page: nothing but our one inline
/// stylesheet (by hash) and forms posting back to us.
pub fn builtin_csp() -> &'static str {
    static CSP: LazyLock<String> = LazyLock::new(|| {
        let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(STYLE));
        format!(
            "default-src 'none'; style-src 'sha256-{hash}'; base-uri 'none'; frame-ancestors 'none'"
        )
    });
    &CSP
}

/// The 403 page: `user` is signed in but the route needs more. `logout_url` leads to the
/// logout confirmation so they can switch accounts.
pub fn render_forbidden(user: &str, logout_url: &str) -> String {
    let body = format!(
        "{header}<p>You are signed in as <span class=\"who\">{user}</span>, but this account \
         does not have access to this page.</p>\
         <p>If you think this is a mistake, ask your administrator for access.</p>\
         <a class=\"button\" href=\"{logout}\">Sign in as a different user</a>\
         <a class=\"button secondary\" href=\"/\">Go to the start page</a>",
        header = heading(Icon::Stop, "Access denied", None),
        user = escape(user),
        logout = escape(logout_url),
    );
    layout("Access denied", &body)
}

/// A page for any other error status. `message` is shown to the user: never put internal
/// details (errors, hosts, stack traces) in it.
pub fn render_error(status: StatusCode, message: &str) -> String {
    let title = match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    };
    let body = format!(
        "{header}<p>{message}</p><a class=\"button secondary\" href=\"/\">Go to the start page</a>",
        header = heading(Icon::Stop, &title, None),
        message = escape(message),
    );
    layout(&escape(&title), &body)
}

/// The page after a completed logout.
pub fn render_logged_out(login_url: &str) -> String {
    let body = format!(
        "{header}<p class=\"notice\" role=\"status\">Your session has ended.</p>\
         <a class=\"button\" href=\"{login}\">Sign in again</a>",
        header = heading(Icon::Check, "Signed out", None),
        login = escape(login_url),
    );
    layout("Signed out", &body)
}

/// The confirmation page for `GET {prefix}/logout`: a form posting `csrf` to `action`, so a link
/// (or a cross-site image) cannot log anyone out by itself.
pub fn render_logout_confirm(action: &str, csrf_token: &str, user: Option<&str>) -> String {
    let who = match user {
        Some(user) => format!(
            "<p>You are signed in as <span class=\"who\">{}</span>.</p>",
            escape(user)
        ),
        None => String::new(),
    };
    let body = format!(
        "{header}{who}<form method=\"post\" action=\"{action}\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <button type=\"submit\" class=\"button\">Sign out</button></form>\
         <a class=\"button secondary\" href=\"/\">Cancel</a>",
        header = heading(
            Icon::Lock,
            "Sign out?",
            Some("This ends your session on this site.")
        ),
        action = escape(action),
        csrf = escape(csrf_token),
    );
    layout("Sign out", &body)
}

/// Wraps `body_html` (already escaped markup) in the shared document. `title_html` must be
/// escaped too (or be a template placeholder).
pub(crate) fn layout(title_html: &str, body_html: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"color-scheme\" content=\"light dark\">\n\
         <meta name=\"robots\" content=\"noindex, nofollow\">\n\
         <meta name=\"referrer\" content=\"same-origin\">\n\
         <title>{title_html}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n\
         {body_html}\n</main>\n</body>\n</html>\n"
    )
}

#[derive(Clone, Copy)]
enum Icon {
    Lock,
    Stop,
    Check,
}

fn heading(icon: Icon, title: &str, lede: Option<&str>) -> String {
    let (class, paths) = match icon {
        Icon::Lock => (
            "mark",
            "<rect x=\"4\" y=\"11\" width=\"16\" height=\"10\" rx=\"2\"/><path d=\"M8 11V7a4 4 0 0 1 8 0v4\"/>",
        ),
        Icon::Stop => (
            "mark danger",
            "<circle cx=\"12\" cy=\"12\" r=\"9\"/><path d=\"M5.6 5.6l12.8 12.8\"/>",
        ),
        Icon::Check => ("mark", "<path d=\"M5 12.5l4.5 4.5L19 7.5\"/>"),
    };
    let lede = lede
        .map(|text| format!("<p class=\"lede\">{}</p>", escape(text)))
        .unwrap_or_default();
    format!(
        "<header class=\"brand\"><span class=\"{class}\" aria-hidden=\"true\"><svg viewBox=\"0 0 24 24\" \
         fill=\"none\" stroke=\"currentColor\" stroke-width=\"2\" stroke-linecap=\"round\" \
         stroke-linejoin=\"round\">{paths}</svg></span><h1>{title}</h1>{lede}</header>",
        title = escape(title),
    )
}

fn escape(text: &str) -> std::borrow::Cow<'_, str> {
    html_escape::encode_quoted_attribute(text)
}

#[cfg(test)]
mod tests {
    // The gateway's HTML pages and the login template.

    use super::render_error_page;
    use crate::login::template::TemplateError;
    use crate::login::{
        ErrorPage, LoginPage, Template, builtin_csp, load_error_template, load_template,
        render_error, render_forbidden, render_logged_out, render_login, render_logout_confirm,
    };
    use base64::Engine as _;
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
}

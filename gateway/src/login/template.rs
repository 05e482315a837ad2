//! Page templates (the login page, the error pages): HTML with `{{name}}` placeholders, every
//! value HTML-escaped.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use super::page::{ErrorPage, LoginPage, builtin_csp, error_page_source, layout};

/// Largest template file accepted.
const MAX_TEMPLATE_BYTES: u64 = 1024 * 1024;

/// A parsed page template. Build it once (at config load, with [`load_template`] or
/// [`load_error_template`]) and render it per request with [`Template::render`] (login) or
/// [`Template::render_error`] (error pages).
#[derive(Debug, Clone)]
pub struct Template {
    parts: Vec<Part>,
    csp: Option<String>,
}

#[derive(Debug, Clone)]
enum Part {
    Text(String),
    Slot(Slot),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Title,
    Action,
    Next,
    Csrf,
    Error,
    Username,
    Sso,
    Status,
    Message,
}

/// Which page a template is for: it fixes the placeholders allowed and required.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Login,
    /// The built-in login page without the password form.
    SsoOnly,
    Error,
}

impl Kind {
    fn slots(self) -> &'static [Slot] {
        match self {
            Kind::Login | Kind::SsoOnly => &[
                Slot::Title,
                Slot::Action,
                Slot::Next,
                Slot::Csrf,
                Slot::Error,
                Slot::Username,
                Slot::Sso,
            ],
            Kind::Error => &[Slot::Status, Slot::Title, Slot::Message],
        }
    }

    fn expected(self) -> &'static str {
        match self {
            Kind::Login | Kind::SsoOnly => "title, action, next, csrf, error, username, sso",
            Kind::Error => "status, title, message",
        }
    }

    /// Placeholders without which the page cannot work.
    fn required(self) -> &'static [Slot] {
        match self {
            Kind::Login => &[Slot::Csrf, Slot::Action],
            Kind::SsoOnly => &[Slot::Sso],
            Kind::Error => &[],
        }
    }
}

impl Slot {
    fn name(self) -> &'static str {
        match self {
            Slot::Title => "title",
            Slot::Action => "action",
            Slot::Next => "next",
            Slot::Csrf => "csrf",
            Slot::Error => "error",
            Slot::Username => "username",
            Slot::Sso => "sso",
            Slot::Status => "status",
            Slot::Message => "message",
        }
    }

    fn value<'a>(self, page: &LoginPage<'a>) -> &'a str {
        match self {
            Slot::Title => page.title,
            Slot::Action => page.action,
            Slot::Next => page.next,
            Slot::Csrf => page.csrf_token,
            Slot::Error => page.error.unwrap_or(""),
            Slot::Username => page.username,
            Slot::Sso | Slot::Status | Slot::Message => "",
        }
    }

    fn error_value<'a>(self, page: &ErrorPage<'a>) -> &'a str {
        match self {
            Slot::Status => page.status,
            Slot::Title => page.title,
            Slot::Message => page.message,
            _ => "",
        }
    }
}

/// Why a page template was refused.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The file could not be read.
    #[error("cannot read template `{}`: {source}", path.display())]
    Read {
        /// The template path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is larger than 1 MiB.
    #[error("template `{}` is larger than 1 MiB", path.display())]
    TooLarge {
        /// The template path.
        path: PathBuf,
    },
    /// A `{{...}}` names no known value.
    #[error("unknown placeholder `{{{{{name}}}}}` at line {line}; expected one of {expected}")]
    UnknownPlaceholder {
        /// The name as written.
        name: String,
        /// 1-based line.
        line: usize,
        /// The placeholders this kind of page has.
        expected: &'static str,
    },
    /// A `{{` without its `}}`.
    #[error("unclosed `{{{{` at line {line}")]
    Unclosed {
        /// 1-based line.
        line: usize,
    },
    /// A placeholder the login cannot work without is absent.
    #[error(
        "login template lacks the `{{{{{0}}}}}` placeholder, without which the login form cannot work"
    )]
    Missing(&'static str),
}

/// Reads and validates the operator's login template (`login.template`). Call it at config load
/// and refuse the config on error: unknown placeholders, an unclosed `{{`, or a missing
/// `{{csrf}}` or `{{action}}` are errors.
pub(crate) fn load_template(path: impl AsRef<Path>) -> Result<Template, TemplateError> {
    load(path.as_ref(), Kind::Login)
}

/// Reads and validates the operator's error page template (`login.error_template`), with the
/// placeholders `{{status}}` (e.g. `502`), `{{title}}` and `{{message}}` (generic text, never an
/// internal detail). Call it at config load and refuse the config on error.
pub(crate) fn load_error_template(path: impl AsRef<Path>) -> Result<Template, TemplateError> {
    load(path.as_ref(), Kind::Error)
}

fn load(path: &Path, kind: Kind) -> Result<Template, TemplateError> {
    let read_err = |source| TemplateError::Read {
        path: path.to_path_buf(),
        source,
    };
    let len = std::fs::metadata(path).map_err(read_err)?.len();
    if len > MAX_TEMPLATE_BYTES {
        return Err(TemplateError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    let source = std::fs::read_to_string(path).map_err(read_err)?;
    let mut template = Template::parse_kind(&source, kind)?;
    // An operator's markup is not ours to hash: the caller sends no CSP for it.
    template.csp = None;
    Ok(template)
}

static DEFAULT: LazyLock<Template> = LazyLock::new(|| {
    builtin(
        &layout("{{title}}", include_str!("assets/login.html")),
        Kind::Login,
    )
});

static SSO_ONLY: LazyLock<Template> = LazyLock::new(|| {
    builtin(
        &layout("{{title}}", include_str!("assets/login_sso.html")),
        Kind::SsoOnly,
    )
});

static DEFAULT_ERROR: LazyLock<Template> =
    LazyLock::new(|| builtin(&error_page_source(), Kind::Error));

fn builtin(source: &str, kind: Kind) -> Template {
    let mut template = match Template::parse_kind(source, kind) {
        Ok(template) => template,
        // The built-in template is checked by this module's tests; an empty fallback keeps the
        // process from panicking if that ever regressed.
        Err(_) => Template {
            parts: Vec::new(),
            csp: None,
        },
    };
    template.csp = Some(builtin_csp().to_string());
    template
}

impl Template {
    /// The built-in login page.
    pub fn builtin() -> &'static Template {
        &DEFAULT
    }

    /// The built-in login page for a chain without password entries: only the single sign-on
    /// buttons.
    pub fn builtin_sso_only() -> &'static Template {
        &SSO_ONLY
    }

    /// The built-in error page.
    pub fn builtin_error() -> &'static Template {
        &DEFAULT_ERROR
    }

    /// Parses login template text (see [`load_template`] for the rules).
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        Template::parse_kind(source, Kind::Login)
    }

    /// Parses error page template text (see [`load_error_template`] for the rules).
    pub fn parse_error_page(source: &str) -> Result<Template, TemplateError> {
        Template::parse_kind(source, Kind::Error)
    }

    fn parse_kind(source: &str, kind: Kind) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = source;
        let mut consumed = 0;
        let line_at = |offset: usize| source[..offset].matches('\n').count() + 1;
        while let Some(open) = rest.find("{{") {
            let after = &rest[open + 2..];
            let Some(close) = after.find("}}") else {
                return Err(TemplateError::Unclosed {
                    line: line_at(consumed + open),
                });
            };
            let name = after[..close].trim();
            let slot = kind
                .slots()
                .iter()
                .copied()
                .find(|slot| slot.name() == name)
                .ok_or_else(|| TemplateError::UnknownPlaceholder {
                    name: name.to_string(),
                    line: line_at(consumed + open),
                    expected: kind.expected(),
                })?;
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            parts.push(Part::Slot(slot));
            let advance = open + 2 + close + 2;
            consumed += advance;
            rest = &rest[advance..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        for &required in kind.required() {
            if !parts
                .iter()
                .any(|part| matches!(part, Part::Slot(slot) if *slot == required))
            {
                return Err(TemplateError::Missing(required.name()));
            }
        }
        Ok(Template { parts, csp: None })
    }

    /// Renders the page with every value HTML-escaped (safe in text and in quoted attributes).
    pub fn render(&self, page: &LoginPage<'_>) -> String {
        // The one slot that is markup, built from escaped values.
        let sso = super::page::sso_markup(page);
        let mut out = String::with_capacity(8192);
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Slot(Slot::Sso) => out.push_str(&sso),
                Part::Slot(slot) => {
                    html_escape::encode_quoted_attribute_to_string(slot.value(page), &mut out);
                }
            }
        }
        out
    }

    /// Renders an error page (a template from [`load_error_template`] or
    /// [`Template::builtin_error`]) with every value HTML-escaped.
    pub fn render_error(&self, page: &ErrorPage<'_>) -> String {
        self.render_with(|slot| slot.error_value(page))
    }

    fn render_with<'a>(&self, value: impl Fn(Slot) -> &'a str) -> String {
        let mut out = String::with_capacity(8192);
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Slot(slot) => {
                    html_escape::encode_quoted_attribute_to_string(value(*slot), &mut out);
                }
            }
        }
        out
    }

    /// The `Content-Security-Policy` to send with this template's page: `Some` for the built-in
    /// page, `None` for an operator's template (whose styles and assets we do not know).
    pub fn csp(&self) -> Option<&str> {
        self.csp.as_deref()
    }
}

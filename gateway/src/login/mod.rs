//! The login user interface as pure functions: the pages the gateway renders, the login and
//! logout form parsers, and the validation of the post-login `next` target. Nothing here knows
//! the HTTP server; the request path calls these with strings and bytes.
//!
//! Endpoint contract the pages assume (the server implements it):
//! - `GET {prefix}/login?next=...` renders [`render_login`] with a fresh CSRF token;
//!   `POST {prefix}/login` takes the fields parsed by [`parse_login_form`].
//! - `GET {prefix}/logout` renders [`render_logout_confirm`] (a form, so a link alone never logs
//!   anyone out); `POST {prefix}/logout` takes the `csrf` field ([`parse_logout_form`]) and then
//!   renders [`render_logged_out`].
//! - Every built-in page is sent with [`builtin_csp`] as `Content-Security-Policy`.
//! - Both POSTs are refused (403) when [`request_source`] says they came from another site.

mod form;
mod next;
mod origin;
mod page;
mod template;

pub use form::parse_login_form;
pub(crate) use form::parse_logout_form;
pub(crate) use next::{normalize_allowed_host, validate_next};
pub(crate) use origin::{SourceVerdict, request_source};
pub(crate) use page::SsoLink;
pub use page::{
    ErrorPage, LoginPage, builtin_csp, render_error, render_forbidden, render_logged_out,
    render_login, render_logout_confirm,
};
pub(crate) use template::{Template, load_error_template, load_template};

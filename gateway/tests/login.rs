//! Login tests: one binary, one module per piece (`tests/login/*.rs`): the form parser, the
//! `next` check, the built-in pages, the demo upstream, and the flow in a real browser.

mod support;

#[path = "support/browser.rs"]
mod browser;

mod login {
    mod browser_flow;
    mod browser_page;
    mod demo_upstream;
    mod form;
    mod next;
    mod page;
}

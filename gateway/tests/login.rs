//! Login tests: one binary, one module per piece (`tests/login/*.rs`): the demo upstream, the
//! pages and the flow in a real browser. The form parser, the `next` check and the page
//! rendering are unit-tested beside their code (`src/login/{form,next,page}.rs`).

mod support;

#[path = "support/browser.rs"]
mod browser;

mod login {
    mod browser_flow;
    mod browser_page;
    mod demo_upstream;
}

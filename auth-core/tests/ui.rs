//! Compile-time behaviour of the macros: every misuse rule has a small file in `ui/fail/` with
//! the exact error it must produce (`.stderr`, regenerate with `TRYBUILD=overwrite` and read it);
//! `ui/pass/` holds complete uses that must compile and run.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}

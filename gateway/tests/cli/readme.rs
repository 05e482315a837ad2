//! The README's backend reference is generated from the macro's option descriptions: it must be
//! exactly what `authgate backends` prints. On a mismatch, paste the printed block into README.md.

use std::process::Command;

#[test]
fn readme_backend_reference_matches_gateway_backends() {
    let out = Command::new(env!("CARGO_BIN_EXE_authgate"))
        .arg("backends")
        .output()
        .expect("run gateway backends");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).expect("utf-8");

    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("read README.md");
    let start = readme
        .find("<!-- backends:begin")
        .expect("README.md has a backends:begin marker");
    let block = &readme[start..];
    let open = block
        .find("```text\n")
        .expect("a text block after the marker")
        + "```text\n".len();
    let close = block[open..].find("\n```").expect("the block is closed") + open;
    let documented = &block[open..close];

    assert_eq!(
        documented.trim_end(),
        printed.trim_end(),
        "README.md's backend reference is out of date; replace it with:\n{printed}"
    );
}

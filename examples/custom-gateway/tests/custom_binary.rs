//! The custom binary knows the `dictionary` type (registered by a crate it links) besides the
//! built-in ones, and runs the chain from YAML with it.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_custom-gateway"))
}

fn config() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/gateway.yaml"))
}

#[test]
fn backends_lists_the_linked_custom_type_and_the_builtin_ones() {
    let out = bin().arg("backends").output().expect("run custom-gateway");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for ty in [
        "dictionary",
        "static",
        "htpasswd",
        "sql",
        "ldap",
        "http",
        "local",
    ] {
        assert!(text.contains(ty), "`{ty}` missing from:\n{text}");
    }
}

#[test]
fn check_accepts_a_config_naming_the_custom_type() {
    // The example writes its demo passwords in the file, which git checks out readable by
    // everyone: `check` refuses that unless told otherwise, and then still warns.
    let out = bin()
        .args(["check", "--config"])
        .arg(config())
        .output()
        .expect("run custom-gateway");
    assert_eq!(
        out.status.code(),
        Some(2),
        "a readable file with literal passwords"
    );
    let out = bin()
        .args(["check", "--allow-insecure-config", "--config"])
        .arg(config())
        .output()
        .expect("run custom-gateway");
    assert!(String::from_utf8_lossy(&out.stderr).contains("other users can read"));
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("dictionary"));
}

fn explain(user: &str, password: &str) -> (Option<i32>, String) {
    let mut child = bin()
        .args(["explain", "--user", user, "--config"])
        .arg(config())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run custom-gateway");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{password}\n").as_bytes())
        .expect("write password");
    let out = child.wait_with_output().expect("wait");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[test]
fn explain_runs_the_custom_backend_from_yaml() {
    let (code, text) = explain("alice", "wonderland");
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("seed") && text.contains("authenticated"),
        "{text}"
    );
    assert!(
        !text.contains("wonderland"),
        "the password must never be echoed:\n{text}"
    );

    let (code, text) = explain("alice", "looking-glass");
    assert_ne!(code, Some(0), "{text}");
    assert!(text.contains("rejected"), "{text}");
}

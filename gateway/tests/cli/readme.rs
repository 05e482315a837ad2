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

/// The README's single sign-on example (a Keycloak and an Entra ID entry) is a config that
/// `authgate check` accepts as written, once the two secrets it names exist and an upstream is
/// added (the example shows only the keys of its section). Discovery happens at the first
/// login, so no provider is contacted.
#[test]
fn readme_single_sign_on_example_passes_check() {
    use std::os::unix::fs::PermissionsExt;

    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("read README.md");
    let section = &readme[readme
        .find("### Single sign-on (OpenID Connect)")
        .expect("README.md has a Single sign-on section")..];
    let open = section.find("```yaml\n").expect("a yaml block") + "```yaml\n".len();
    let close = section[open..].find("\n```").expect("the block is closed") + open;
    let example = &section[open..close];
    assert!(example.contains("type: oidc") && example.contains("login.microsoftonline.com"));

    let dir = tempfile::tempdir().expect("tempdir");
    let private = |path: &std::path::Path, text: &str| {
        std::fs::write(path, text).expect("write");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    };
    let secret = dir.path().join("entra-client-secret");
    private(&secret, "an-entra-client-secret\n");
    let config = format!(
        "upstream:\n  url: http://127.0.0.1:9000\n{}\n",
        example.replace(
            "file:/run/secrets/entra-client-secret",
            &format!("file:{}", secret.display())
        )
    );
    let path = dir.path().join("gateway.yaml");
    private(&path, &config);

    let out = Command::new(env!("CARGO_BIN_EXE_authgate"))
        .args(["check", "--config"])
        .arg(&path)
        .current_dir(dir.path())
        .env("KEYCLOAK_CLIENT_SECRET", "a-keycloak-client-secret")
        .env_remove("GATEWAY_CONFIG")
        .output()
        .expect("run authgate check");
    assert!(
        out.status.success(),
        "the README's SSO example fails `authgate check`:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

//! The `authgate` binary, run as an operator would: exit codes and exact output.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn gateway(dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_authgate"))
        .args(args)
        .current_dir(dir)
        .env_remove("GATEWAY_CONFIG")
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the gateway binary runs");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("gateway exits")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const SEMANTIC_ERRORS: &str = "\
server:
  listen: 127.0.0.1:99999
  public_url: gw.example.org
upstream:
  url: http://127.0.0.1:9000
session:
  secret: short
chain: []
";

#[test]
fn check_reports_every_semantic_error_and_exits_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("gateway.yaml"), SEMANTIC_ERRORS).expect("write");
    let out = gateway(dir.path(), &["check"], "");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "");
    assert_eq!(
        text(&out.stderr),
        "\
gateway.yaml:2:11: invalid listen address `127.0.0.1:99999`; expected IP:PORT, e.g. `127.0.0.1:8080` or `[::1]:8080`
gateway.yaml:3:15: `public_url` must be an absolute http(s) URL such as `https://gw.example.org`, not `gw.example.org`
gateway.yaml:7:11: `session.secret` is 5 bytes; it must be at least 32 (e.g. `openssl rand -base64 48`)
gateway.yaml:8:1: the `chain` is empty: add at least one backend (`authgate backends` lists the types)
"
    );
}

#[test]
fn check_reports_a_parse_error_with_its_location_via_env_config_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("other.yaml"),
        "upstream:\n  url: http://127.0.0.1:9000\n  url: http://127.0.0.1:9001\n",
    )
    .expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_authgate"))
        .arg("check")
        .current_dir(dir.path())
        .env("GATEWAY_CONFIG", "other.yaml")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(text(&out.stderr), "other.yaml:3:3: duplicate key `url`\n");
}

#[test]
fn check_without_a_config_file_says_where_it_looked_and_how_to_get_one() {
    if Path::new("/etc/authgate/gateway.yaml").exists() {
        eprintln!("skipped: /etc/authgate/gateway.yaml exists here (the installed package's)");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    for command in [&["check"][..], &["run"], &["users", "list"]] {
        let out = gateway(dir.path(), command, "");
        assert_eq!(out.status.code(), Some(2), "{command:?}");
        let err = text(&out.stderr);
        assert!(
            err.starts_with("no config file: none given with --config"),
            "{err}"
        );
        assert!(err.contains("/etc/authgate/gateway.yaml"), "{err}");
        assert!(err.contains("`authgate init`"), "{err}");
    }
}

#[test]
fn run_with_a_missing_config_file_says_how_to_get_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = gateway(dir.path(), &["run", "--config", "nope.yaml"], "");
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.starts_with("nope.yaml: cannot read the config file: "),
        "{err}"
    );
    assert!(
        err.contains("`authgate init --output nope.yaml` writes a starter config there"),
        "{err}"
    );
}

/// A config whose chain is the local user store, in `dir`.
/// Writes a config holding a literal secret as an operator must: readable by its owner only.
fn write_private(path: &Path, text: impl AsRef<[u8]>) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

fn local_store_config(dir: &Path, name: &str) {
    write_private(
        &dir.join(name),
        "upstream: {url: \"http://127.0.0.1:9000\"}\n\
         session: {secret: \"0123456789abcdef0123456789abcdef-test\"}\n\
         chain: [{name: local, type: local}]\n",
    );
}

#[test]
fn config_is_accepted_before_or_after_the_subcommand() {
    let dir = tempfile::tempdir().expect("tempdir");
    local_store_config(dir.path(), "site.yaml");
    let added = gateway(
        dir.path(),
        &["users", "add", "dave", "--config", "site.yaml"],
        "a long enough passphrase\n",
    );
    assert_eq!(added.status.code(), Some(0), "{}", text(&added.stderr));
    assert_eq!(text(&added.stdout), "added `dave`\n");
    let listed = gateway(dir.path(), &["--config", "site.yaml", "users", "list"], "");
    assert_eq!(listed.status.code(), Some(0), "{}", text(&listed.stderr));
    assert!(
        text(&listed.stdout).contains("\ndave "),
        "{}",
        text(&listed.stdout)
    );
    let checked = gateway(dir.path(), &["check", "-c", "site.yaml"], "");
    assert_eq!(checked.status.code(), Some(0), "{}", text(&checked.stderr));
}

#[test]
fn users_add_and_passwd_refuse_a_password_under_12_characters() {
    let dir = tempfile::tempdir().expect("tempdir");
    local_store_config(dir.path(), "gateway.yaml");
    let out = gateway(dir.path(), &["users", "add", "erin"], "elevenchars\n");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "error: the password has 11 characters; at least 12 are required\n"
    );
    let listed = gateway(dir.path(), &["users", "list"], "");
    assert!(
        !text(&listed.stdout).contains("erin"),
        "{}",
        text(&listed.stdout)
    );

    // Characters, not bytes: 12 non-ASCII characters are enough.
    let out = gateway(dir.path(), &["users", "add", "erin"], "éééééééééééé\n");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = gateway(dir.path(), &["users", "passwd", "erin"], "short\n");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "error: the password has 5 characters; at least 12 are required\n"
    );
}

#[test]
fn init_writes_a_starter_config_of_each_shape_that_check_accepts() {
    let dir = tempfile::tempdir().expect("tempdir");
    for shape in ["demo", "htpasswd", "ldap", "django-sql"] {
        let file = format!("{shape}.yaml");
        let out = gateway(
            dir.path(),
            &["init", "--shape", shape, "--output", &file],
            "",
        );
        assert_eq!(out.status.code(), Some(0), "{shape}: {}", text(&out.stderr));
        assert_eq!(
            text(&out.stdout),
            format!("wrote {file} (shape {shape}); next: authgate check --config {file}\n")
        );
        let written = std::fs::read_to_string(dir.path().join(&file)).expect("written");
        assert!(
            written.starts_with("# authgate starter config"),
            "{written}"
        );
        let checked = gateway(dir.path(), &["check", "--config", &file], "");
        assert_eq!(
            checked.status.code(),
            Some(0),
            "{shape}: {}",
            text(&checked.stderr)
        );
        assert!(text(&checked.stdout).starts_with(&format!("{file}: OK\n")));
    }
    // The default shape, to ./gateway.yaml, which `check` then finds by itself.
    let fresh = tempfile::tempdir().expect("tempdir");
    let out = gateway(fresh.path(), &["init"], "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let checked = gateway(fresh.path(), &["check"], "");
    assert_eq!(checked.status.code(), Some(0), "{}", text(&checked.stderr));
    assert!(text(&checked.stdout).starts_with("gateway.yaml: OK\n"));
    assert!(text(&checked.stdout).contains("(type htpasswd)"));
}

#[test]
fn init_never_replaces_an_existing_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("gateway.yaml"), "mine\n").expect("write");
    let out = gateway(dir.path(), &["init", "--shape", "demo"], "");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "error: gateway.yaml exists; not replacing it (choose another file with --output)\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("gateway.yaml")).expect("read"),
        "mine\n"
    );
    let printed = gateway(
        dir.path(),
        &["init", "--shape", "ldap", "--output", "-"],
        "",
    );
    assert_eq!(printed.status.code(), Some(0));
    assert!(text(&printed.stdout).contains("type: ldap"));
}

#[test]
fn version_names_the_release_and_the_commit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = gateway(dir.path(), &["--version"], "");
    assert_eq!(out.status.code(), Some(0));
    let version = text(&out.stdout);
    let head = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or_else(
            || "unknown".to_string(),
            |o| text(&o.stdout).trim().to_string(),
        );
    let commit = std::env::var("AUTHGATE_COMMIT").unwrap_or(head);
    assert_eq!(
        version,
        format!("authgate {} (commit {commit})\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn log_level_flag_wins_over_rust_log_and_the_config_and_pipes_get_no_colours_and_health_probes() {
    use std::io::{BufRead, BufReader, Read};
    let dir = tempfile::tempdir().expect("tempdir");
    let free_port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port()
    };
    let (port, admin) = (free_port(), free_port());
    write_private(
        &dir.path().join("gateway.yaml"),
        format!(
            "server: {{listen: \"127.0.0.1:{port}\", public_url: \"http://127.0.0.1:{port}\"}}\n\
             admin: {{listen: \"127.0.0.1:{admin}\"}}\n\
             upstream: {{url: \"http://127.0.0.1:9\"}}\n\
             session: {{secure: false, secret: \"0123456789abcdef0123456789abcdef-test\"}}\n\
             log: {{level: error, format: text}}\n\
             chain: [{{name: local, type: local}}]\n"
        ),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_authgate"))
        .args(["run", "--log-level", "info"])
        .current_dir(dir.path())
        .env_remove("GATEWAY_CONFIG")
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    let mut banner = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut banner)
        .expect("read the banner");
    // `authgate health`, as a container's HEALTHCHECK runs it.
    let healthz = format!("http://127.0.0.1:{admin}/healthz");
    let health = gateway(dir.path(), &["health", "--url", &healthz], "");
    assert_eq!(health.status.code(), Some(0), "{}", text(&health.stderr));
    assert_eq!(text(&health.stdout), format!("{healthz}: 200 OK\n"));
    let nowhere = format!("http://127.0.0.1:{}/healthz", free_port());
    let health = gateway(dir.path(), &["health", "--url", &nowhere], "");
    assert_eq!(health.status.code(), Some(1));
    assert!(
        text(&health.stderr).starts_with(&nowhere),
        "{}",
        text(&health.stderr)
    );
    // Let the start-up lines reach the pipe, then stop the server.
    std::thread::sleep(std::time::Duration::from_millis(300));
    child.kill().expect("kill");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    let _ = child.wait();
    assert!(
        banner.starts_with("authgate ready: open "),
        "{banner}\n{stderr}"
    );
    assert!(stderr.contains(" INFO "), "no INFO line: {stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "ANSI escapes on a pipe: {stderr:?}"
    );

    let bad = gateway(dir.path(), &["run", "--log-level", "gateway=[nope"], "");
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad.stderr).contains("not a log filter"),
        "{}",
        text(&bad.stderr)
    );
}

#[test]
fn schema_is_json_with_every_top_level_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = gateway(dir.path(), &["schema"], "");
    assert_eq!(out.status.code(), Some(0));
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    let props = schema["properties"]
        .as_object()
        .expect("top-level properties");
    for key in [
        "server",
        "admin",
        "upstream",
        "identity_headers",
        "session",
        "login",
        "protection",
        "cache",
        "users_db",
        "data_dir",
        "chain",
        "routes",
        "log",
        "audit",
    ] {
        assert!(props.contains_key(key), "schema lacks `{key}`");
    }
    assert_eq!(schema["required"], serde_json::json!(["upstream"]));
    let entry = &schema["$defs"]["ChainEntrySchema"];
    assert!(entry["properties"]["type"].is_object(), "{entry}");
    assert!(
        entry["oneOf"].is_array(),
        "one branch per backend type: {entry}"
    );
}

#[test]
fn hash_password_prints_an_argon2id_hash_that_verifies() {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    let dir = tempfile::tempdir().expect("tempdir");
    let out = gateway(dir.path(), &["hash-password"], "correct horse\n");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        !stdout.contains("correct horse"),
        "the password is never echoed"
    );
    let line = stdout.trim_end();
    assert!(line.starts_with("$argon2id$v=19$"), "{line}");
    let parsed = PasswordHash::new(line).expect("a PHC string");
    let argon = argon2::Argon2::default();
    assert!(argon.verify_password(b"correct horse", &parsed).is_ok());
    assert!(argon.verify_password(b"correct horsE", &parsed).is_err());

    let again = gateway(dir.path(), &["hash-password"], "correct horse\n");
    assert_ne!(text(&again.stdout), stdout, "each hash has its own salt");
}

#[test]
fn hash_password_refuses_an_empty_password() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = gateway(dir.path(), &["hash-password"], "\n");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr), "error: the password is empty\n");
    assert_eq!(text(&out.stdout), "");
}

const LITERAL_SECRETS: &str = "\
upstream:
  url: http://127.0.0.1:9000
session:
  secret: \"0123456789abcdef0123456789abcdef-test\"
  store: memory
protection:
  store: \"redis://:hunter2hunter2@127.0.0.1:6379/\"
chain:
  - name: hr
    type: http
    options:
      url: http://127.0.0.1:7000/authenticate
      headers:
        Authorization: \"Bearer abcdef\"
        X-From-Env: env:HOME
";

fn write_with_mode(dir: &Path, text: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("gateway.yaml");
    std::fs::write(&path, text).expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Like ssh with a private key others can read: each literal secret (the session secret, a URL's
/// password, a backend option declared secret) of a file with a group or world read bit is an
/// error at its location, naming the fix; `--allow-insecure-config` makes them warnings; a
/// private file, or one with only `env:` / `file:` secrets, passes.
#[test]
fn check_refuses_literal_secrets_in_a_file_others_can_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_with_mode(dir.path(), LITERAL_SECRETS, 0o640);
    let out = gateway(dir.path(), &["check"], "");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "");
    let fix = "run `chmod 600 gateway.yaml`, or move the secret out with `env:NAME` or `file:PATH`";
    assert_eq!(
        text(&out.stderr),
        format!(
            "\
gateway.yaml:4:11: `session.secret` is written in this file, which other users can read (mode 0640): {fix}; --allow-insecure-config starts anyway
gateway.yaml:4:11: warning: `session.secret` is written in the file; prefer `env:NAME` or `file:PATH`
gateway.yaml:7:10: `protection.store` (a URL with a password) is written in this file, which other users can read (mode 0640): {fix}; --allow-insecure-config starts anyway
gateway.yaml:14:24: chain entry `hr` option `headers.Authorization` is written in this file, which other users can read (mode 0640): {fix}; --allow-insecure-config starts anyway
"
        )
    );

    let out = gateway(dir.path(), &["check", "--allow-insecure-config"], "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.matches("warning: ").count(), 4, "{stderr}");
    assert!(
        stderr.contains("(started anyway: --allow-insecure-config)"),
        "{stderr}"
    );

    write_with_mode(dir.path(), LITERAL_SECRETS, 0o600);
    let out = gateway(dir.path(), &["check"], "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("other users can read"));

    let from_env = LITERAL_SECRETS
        .replace(
            "\"0123456789abcdef0123456789abcdef-test\"",
            "env:GW_TEST_SECRET",
        )
        .replace("\"redis://:hunter2hunter2@127.0.0.1:6379/\"", "memory")
        .replace("\"Bearer abcdef\"", "env:HOME");
    write_with_mode(dir.path(), &from_env, 0o644);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_authgate"));
    let out = cmd
        .arg("check")
        .current_dir(dir.path())
        .env_remove("GATEWAY_CONFIG")
        .env("GW_TEST_SECRET", "k".repeat(40))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");
}

/// Apache's `<Limit>` trap: a rule with `methods` leaves every other method of its paths to
/// later rules. `check` names both rules and the fix; the documented fix does not warn.
#[test]
fn check_warns_when_other_methods_fall_through_to_a_weaker_rule() {
    let dir = tempfile::tempdir().expect("tempdir");
    let leaky = "\
upstream:
  url: http://127.0.0.1:9000
chain:
  - name: demo
    type: static
    options:
      users: {}
routes:
  - match: { path: /admin/, methods: [GET, POST] }
    access: { groups: [admins] }
  - match: { path: / }
    access: authenticated
";
    std::fs::write(dir.path().join("gateway.yaml"), leaky).expect("write");
    let out = gateway(dir.path(), &["check"], "");
    assert_eq!(out.status.code(), Some(0), "a warning, not an error");
    assert_eq!(
        text(&out.stderr),
        "gateway.yaml:9:29: warning: route 1 (`groups: admins` for GET, POST) matches only those \
         methods: every other method on its paths (OPTIONS, TRACE, PROPFIND, DELETE...) falls \
         through to route 2 (`authenticated`); add a rule with the same match and no `methods` \
         right below route 1 (e.g. `access: deny`, or the access everyone else should get)\n"
    );
    let fixed = leaky.replace(
        "  - match: { path: / }",
        "  - match: { path: /admin/ }\n    access: deny\n  - match: { path: / }",
    );
    std::fs::write(dir.path().join("gateway.yaml"), fixed).expect("write");
    let out = gateway(dir.path(), &["check"], "");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stderr), "");
}

/// `users list` shows when each user last signed in: `never` until a login, then the time (UTC,
/// to the second) the local backend recorded.
#[test]
fn users_list_shows_the_last_login() {
    let dir = tempfile::tempdir().expect("tempdir");
    local_store_config(dir.path(), "gateway.yaml");
    for user in ["dave", "erin"] {
        let added = gateway(
            dir.path(),
            &["users", "add", user],
            "a long enough passphrase\n",
        );
        assert_eq!(added.status.code(), Some(0), "{}", text(&added.stderr));
    }
    let listed = text(&gateway(dir.path(), &["users", "list"], "").stdout);
    let header = listed.lines().next().expect("header");
    assert!(header.ends_with("EMAIL  LAST LOGIN"), "{listed}");
    assert!(
        listed.lines().skip(1).all(|l| l.ends_with("never")),
        "{listed}"
    );
    let before = std::time::SystemTime::now();
    let explained = gateway(
        dir.path(),
        &["explain", "--user", "dave"],
        "a long enough passphrase\n",
    );
    assert_eq!(
        explained.status.code(),
        Some(0),
        "{}",
        text(&explained.stderr)
    );
    let listed = text(&gateway(dir.path(), &["users", "list"], "").stdout);
    let dave = listed
        .lines()
        .find(|l| l.starts_with("dave "))
        .expect("dave listed");
    let at = dave.rsplit(' ').next().expect("last column");
    let at = humantime::parse_rfc3339(at).unwrap_or_else(|e| panic!("{e}: {listed}"));
    let slack = std::time::Duration::from_secs(2);
    assert!(
        at + slack >= before && at <= std::time::SystemTime::now() + slack,
        "{listed}"
    );
    let erin = listed
        .lines()
        .find(|l| l.starts_with("erin "))
        .expect("erin");
    assert!(erin.ends_with("never"), "{listed}");
}

/// The memory lockout store lives in the gateway process: without an admin listener to ask,
/// `authgate lockouts` says so and how to fix it.
#[test]
fn lockouts_of_a_memory_store_need_the_admin_listener() {
    let dir = tempfile::tempdir().expect("tempdir");
    local_store_config(dir.path(), "gateway.yaml");
    let out = gateway(dir.path(), &["lockouts", "list"], "");
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr
            .contains("the memory lockout store lives in the gateway process: set `admin.listen`"),
        "{stderr}"
    );
}

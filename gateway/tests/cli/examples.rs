//! The shipped examples and the commands an operator runs on them, through the real binary and
//! the built-in backends (`static`, `local` on a SQLite store in a temp dir).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

fn gateway(dir: &Path, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_authgate"));
    cmd.args(args)
        .current_dir(dir)
        .env_remove("GATEWAY_CONFIG")
        .env_remove("GATEWAY_SECRET")
        .env_remove("LDAP_READER_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("the gateway binary runs");
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

/// A temp dir holding a copy of `examples/<name>` as `gateway.yaml`.
fn with_example(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(examples().join(name), dir.path().join("gateway.yaml")).expect("copy example");
    dir
}

/// The verdict and each step's outcome, without the timings.
fn steps(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .map(|l| match l.split_once(" in ") {
            Some((head, _)) if !l.starts_with("verdict:") => head.to_string(),
            _ => l.to_string(),
        })
        .collect()
}

#[test]
fn quickstart_passes_check_and_shows_its_chain_and_routes() {
    let dir = with_example("quickstart.yaml");
    let out = gateway(dir.path(), &["check"], "", &[]);
    assert_eq!(text(&out.stderr), "");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout),
        "\
gateway.yaml: OK
chain:
  1. demo (type static): on_reject next, on_error deny, timeout 5s, provision none
  2. local (type local): on_reject next, on_error deny, timeout 5s, provision none
routes (first match wins):
  1. path /static/ -> public
  2. path /staff/ -> groups staff
  3. path / -> authenticated
  otherwise -> authenticated
on reload (SIGHUP or a change to the file): every key is applied but upstream.demo, log.format, log.level (restart needed)
"
    );
    assert!(
        dir.path().join("data/users.db").is_file(),
        "users_db is resolved against the config's directory"
    );
}

#[test]
fn reference_passes_check_with_its_environment_and_names_the_missing_variable_without() {
    let dir = with_example("reference.yaml");
    let secret = "k".repeat(48);
    let out = gateway(
        dir.path(),
        &["check"],
        "",
        &[
            ("GATEWAY_SECRET", &secret),
            ("LDAP_READER_PASSWORD", "reader"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let types: Vec<&str> = stdout
        .lines()
        .filter_map(|l| {
            l.split_once("(type ")
                .map(|(_, t)| t.split(')').next().unwrap_or(""))
        })
        .collect();
    assert_eq!(
        types,
        ["ldap", "sql", "http", "oidc", "htpasswd", "static", "local"]
    );

    let out = gateway(
        dir.path(),
        &["check"],
        "",
        &[("LDAP_READER_PASSWORD", "reader")],
    );
    assert_eq!(out.status.code(), Some(2));
    let source = std::fs::read_to_string(examples().join("reference.yaml")).expect("read");
    let (line, column) = source
        .lines()
        .enumerate()
        .find_map(|(i, l)| l.find("env:GATEWAY_SECRET").map(|c| (i + 1, c + 1)))
        .expect("the reference reads GATEWAY_SECRET");
    assert_eq!(
        text(&out.stderr),
        format!(
            "gateway.yaml:{line}:{column}: environment variable `GATEWAY_SECRET` is not set (secret `env:GATEWAY_SECRET`)\n"
        )
    );
}

#[test]
fn backends_lists_the_built_in_types_with_their_options() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = gateway(dir.path(), &["backends"], "", &[]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    let types: Vec<&str> = stdout
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with(' '))
        .collect();
    assert_eq!(
        types,
        [
            "htpasswd", "http", "jwt", "ldap", "local", "oidc", "sql", "static"
        ]
    );
    assert!(stdout.contains("\n  path: PathBuf; required\n"), "{stdout}");
    assert!(
        stdout.contains("\n  check_interval: Duration; default 1s\n"),
        "{stdout}"
    );
}

#[test]
fn explain_shows_each_backend_and_the_verdict_without_echoing_the_password() {
    let dir = with_example("quickstart.yaml");
    let out = gateway(
        dir.path(),
        &["explain", "--user", "alice"],
        "wonderland\n",
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(!stdout.contains("wonderland") && !text(&out.stderr).contains("wonderland"));
    assert_eq!(
        steps(&stdout),
        [
            "demo (static): authenticated",
            "verdict: authenticated by `demo` as `alice` (groups: staff)"
        ]
    );
    assert!(
        stdout.lines().next().is_some_and(|l| l.ends_with("ms")),
        "{stdout}"
    );

    let out = gateway(dir.path(), &["explain", "-u", "bob"], "wrong\n", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        steps(&text(&out.stdout)),
        [
            "demo (static): rejected",
            "local (local): not_found",
            "verdict: rejected (wrong password)"
        ]
    );

    // The credential policy refuses an empty password before any backend runs.
    let out = gateway(dir.path(), &["explain", "-u", "alice"], "\n", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        steps(&text(&out.stdout)),
        [
            "policy (credential policy): refused",
            "verdict: rejected by the credential policy (empty password); no backend ran"
        ]
    );

    let out = gateway(dir.path(), &["explain", "-u", "nobody"], "x\n", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        steps(&text(&out.stdout)).last().map(String::as_str),
        Some("verdict: not found (no backend knows `nobody`)")
    );
}

#[test]
fn users_commands_manage_the_local_store_that_the_chain_reads() {
    let dir = with_example("quickstart.yaml");
    let run = |args: &[&str], stdin: &str| gateway(dir.path(), args, stdin, &[]);

    let out = run(
        &[
            "users",
            "add",
            "carol",
            "--email",
            "carol@example.org",
            "-g",
            "ops",
            "-g",
            "staff",
        ],
        "first-passphrase\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "added `carol`\n");
    let out = run(&["users", "add", "carol", "--no-password"], "");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr), "error: user `carol` already exists\n");
    assert_eq!(
        run(&["users", "add", "dave", "--no-password"], "")
            .status
            .code(),
        Some(0)
    );

    let out = run(&["users", "list"], "");
    assert_eq!(
        text(&out.stdout),
        "\
USERNAME  SOURCE  STATUS       GROUPS     EMAIL              LAST LOGIN
carol     local   enabled      ops,staff  carol@example.org  never
dave      local   no password                                never
"
    );

    let explain = |password: &str| {
        let out = run(&["explain", "-u", "carol"], &format!("{password}\n"));
        steps(&text(&out.stdout))
            .last()
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(
        explain("first-passphrase"),
        "verdict: authenticated by `local` as `carol` (groups: ops, staff)"
    );

    assert_eq!(
        text(&run(&["users", "disable", "carol"], "").stdout),
        "disabled `carol`\n"
    );
    assert_eq!(
        explain("first-passphrase"),
        "verdict: denied by `local`: account disabled"
    );
    assert_eq!(
        text(&run(&["users", "enable", "carol"], "").stdout),
        "enabled `carol`\n"
    );

    let out = run(&["users", "passwd", "carol"], "second-passphrase\n");
    assert_eq!(text(&out.stdout), "password of `carol` changed\n");
    assert_eq!(
        explain("first-passphrase"),
        "verdict: rejected (wrong password)"
    );
    assert!(explain("second-passphrase").starts_with("verdict: authenticated by `local`"));

    assert_eq!(
        text(&run(&["users", "delete", "dave"], "").stdout),
        "deleted `dave`\n"
    );
    let out = run(&["users", "disable", "dave"], "");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr), "error: no user `dave` in the store\n");
}

#[test]
fn active_directory_example_passes_check() {
    let dir = with_example("active-directory.yaml");
    let secret = "k".repeat(48);
    let out = gateway(
        dir.path(),
        &["check"],
        "",
        &[
            ("GATEWAY_SECRET", &secret),
            ("LDAP_READER_PASSWORD", "reader"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("1. ad (type ldap): on_reject next, on_error deny, timeout 5s"),
        "{stdout}"
    );
    // The filters an AD deployment needs are accepted as written: nested groups through
    // LDAP_MATCHING_RULE_IN_CHAIN, disabled accounts through the userAccountControl bit.
    let source = std::fs::read_to_string(examples().join("active-directory.yaml")).unwrap();
    for needle in [
        "(sAMAccountName={username})",
        "(!(userAccountControl:1.2.840.113556.1.4.803:=2))",
        "(member:1.2.840.113556.1.4.1941:={dn})",
    ] {
        assert!(source.contains(needle), "{needle}");
    }
    // And they are well-formed LDAP filters (RFC 4515 extensible matches), as ldap3 sends them.
    for key in ["user_filter: ", "group_filter: "] {
        let filter = source
            .lines()
            .find_map(|l| l.trim().strip_prefix(key))
            .expect("the example sets the filter")
            .trim_matches('"')
            .replace("{username}", "jdoe")
            .replace("{dn}", "CN=John Doe,OU=People,DC=corp,DC=example,DC=org");
        assert!(ldap3::parse_filter(&filter).is_ok(), "{filter}");
    }
}

//! `type: htpasswd` against files written with the hashes of the real `htpasswd` tool (the
//! vectors in auth-core's fixtures, and the tool itself where it is installed).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use auth_core::{Backend, BuildContext, Context, Credentials, Outcome, Registry};

use auth_backends as _;

#[derive(serde::Deserialize)]
struct Vector {
    label: String,
    password: String,
    hash: String,
}

/// One vector per `htpasswd` flag, for the password "correct horse battery".
fn htpasswd_vectors() -> Vec<Vector> {
    include_str!("../../auth-core/tests/fixtures/hashes/vectors.jsonl")
        .lines()
        .map(|l| serde_json::from_str::<Vector>(l).expect("vector"))
        .filter(|v| v.label.starts_with("htpasswd") && v.password == "correct horse battery")
        .collect()
}

fn build(dir: &Path, options: &str) -> Arc<dyn Backend> {
    let registry = Registry::from_inventory().expect("registry");
    let reg = registry.get("htpasswd").expect("htpasswd is registered");
    let value: serde_json::Value = serde_saphyr::from_str(options).expect("yaml");
    let mut de = <dyn erased_serde::Deserializer>::erase(value);
    let factory = (reg.parse)(&mut de).expect("options parse");
    factory
        .build(&BuildContext::new("ops", dir))
        .expect("builds")
}

async fn login(backend: &dyn Backend, user: &str, password: &str) -> Outcome {
    backend
        .authenticate(&Credentials::password(user, password), &Context::default())
        .await
}

/// A user name per flag: `-B` -> `user_B`, `-5 -r 10000` -> `user_5_r_10000`.
fn user_for(label: &str) -> String {
    let flags: String = label["htpasswd".len()..]
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("user{}", flags.replace("__", "_").trim_end_matches('_'))
}

fn write_passwd(dir: &Path) -> Vec<(String, String)> {
    let mut text = String::from("# written by the test\n\n");
    let mut users = Vec::new();
    for v in htpasswd_vectors() {
        let user = user_for(&v.label);
        text.push_str(&format!("{user}:{}\r\n", v.hash));
        users.push((user, v.label));
    }
    text.push_str("   # an indented comment\nnot-a-valid-line\n");
    std::fs::write(dir.join("ops.htpasswd"), text).expect("write");
    users
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_htpasswd_format_logs_in_and_weak_ones_only_when_allowed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let users = write_passwd(dir.path());
    assert!(users.len() >= 8, "{users:?}");
    let strict = build(dir.path(), "path: ops.htpasswd\n");
    let open = build(
        dir.path(),
        "path: ops.htpasswd\nallow_des_crypt: true\nallow_plaintext: true\n",
    );
    for (user, label) in &users {
        let weak = label == "htpasswd -d" || label == "htpasswd -p";
        let outcome = login(&*strict, user, "correct horse battery").await;
        if weak {
            // That user's refusal, not the backend's failure.
            assert!(matches!(outcome, Outcome::Rejected), "{label}: {outcome:?}");
        } else {
            assert!(
                matches!(outcome, Outcome::Authenticated(_)),
                "{label}: {outcome:?}"
            );
            let wrong = login(&*strict, user, "correct horse battery!").await;
            assert!(matches!(wrong, Outcome::Rejected), "{label}: {wrong:?}");
        }
        // DES crypt kept 8 bytes of the password: those log in, the whole password never does.
        let des = label == "htpasswd -d";
        let right = if des {
            "correct "
        } else {
            "correct horse battery"
        };
        let outcome = login(&*open, user, right).await;
        assert!(
            matches!(outcome, Outcome::Authenticated(_)),
            "{label}: {outcome:?}"
        );
        if des {
            let whole = login(&*open, user, "correct horse battery").await;
            assert!(matches!(whole, Outcome::Rejected), "{label}: {whole:?}");
        }
        // DES crypt reads 8 characters: change the first.
        let wrong = login(&*open, user, "Xorrect horse battery").await;
        assert!(matches!(wrong, Outcome::Rejected), "{label}: {wrong:?}");
    }
    assert!(matches!(
        login(&*strict, "nobody", "correct horse battery").await,
        Outcome::NotFound
    ));
    assert!(matches!(
        login(&*strict, "# written by the test", "x").await,
        Outcome::NotFound
    ));
    assert!(matches!(
        login(&*strict, "user_d", "correct ").await,
        Outcome::Rejected
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_come_from_the_group_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_passwd(dir.path());
    std::fs::write(
        dir.path().join("ops.groups"),
        "# Apache AuthGroupFile\nadmins: user_B user_m\n\nops:user_B   user_s\n",
    )
    .expect("write");
    let backend = build(dir.path(), "path: ops.htpasswd\ngroups_file: ops.groups\n");
    let Outcome::Authenticated(user) = login(&*backend, "user_B", "correct horse battery").await
    else {
        panic!("user_B logs in")
    };
    assert_eq!(
        user.groups.iter().map(String::as_str).collect::<Vec<_>>(),
        ["admins", "ops"]
    );
    assert!(user.credential_version.is_some());
    let restored = backend
        .get_user("user_s")
        .await
        .expect("get")
        .expect("user_s");
    assert_eq!(
        restored
            .groups
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        ["ops"]
    );
    assert_eq!(backend.get_user("nobody").await.expect("get"), None);
}

fn htpasswd_tool() -> bool {
    let found = std::process::Command::new("htpasswd")
        .arg("-nbB")
        .arg("u")
        .arg("p")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "htpasswd (Debian apache2-utils) is required under CI"
        );
        eprintln!("SKIPPED: htpasswd (Debian apache2-utils) is not installed");
    }
    found
}

fn run_htpasswd(args: &[&str]) {
    let status = std::process::Command::new("htpasswd")
        .args(args)
        .output()
        .expect("htpasswd runs");
    assert!(status.status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_to_the_files_are_seen() {
    if !htpasswd_tool() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("users");
    let file_arg = file.to_str().expect("utf-8 path");
    run_htpasswd(&["-cbB", "-C", "5", file_arg, "alice", "first"]);
    let backend = build(
        dir.path(),
        "path: users\ngroups_file: groups\ncheck_interval: 0s\n",
    );
    // The group file does not exist yet: unavailable, saying which file.
    let Outcome::Unavailable(e) = login(&*backend, "alice", "first").await else {
        panic!("missing group file")
    };
    assert!(e.to_string().contains("groups"), "{e}");
    std::fs::write(dir.path().join("groups"), "staff: alice\n").expect("write");
    assert!(matches!(
        login(&*backend, "alice", "first").await,
        Outcome::Authenticated(_)
    ));
    let before = backend
        .get_user("alice")
        .await
        .expect("get")
        .expect("alice");

    // In-place rewrite by the real tool: a new user, and a new password for alice.
    run_htpasswd(&["-bB", "-C", "5", file_arg, "bob", "second"]);
    run_htpasswd(&["-b5", file_arg, "alice", "changed"]);
    assert!(matches!(
        login(&*backend, "bob", "second").await,
        Outcome::Authenticated(_)
    ));
    assert!(matches!(
        login(&*backend, "alice", "first").await,
        Outcome::Rejected
    ));
    let Outcome::Authenticated(after) = login(&*backend, "alice", "changed").await else {
        panic!("alice's new password")
    };
    assert_ne!(before.credential_version, after.credential_version);

    // Atomic replacement (rename over the file), as editors and config management do.
    let replacement = dir.path().join("users.new");
    // `htpasswd -nbs carol carol`
    std::fs::write(&replacement, "carol:{SHA}KLkrVu5kuS67cthl8XLvAMcI34M=\n").expect("write");
    std::fs::rename(&replacement, &file).expect("rename");
    std::fs::write(dir.path().join("groups.new"), "ops: carol\n").expect("write");
    std::fs::rename(dir.path().join("groups.new"), dir.path().join("groups")).expect("rename");
    assert!(matches!(
        login(&*backend, "bob", "second").await,
        Outcome::NotFound
    ));
    let Outcome::Authenticated(carol) = login(&*backend, "carol", "carol").await else {
        panic!("carol from the replaced file")
    };
    assert!(carol.in_group("ops"));

    // A file that disappears makes the backend unavailable, not empty.
    std::fs::remove_file(&file).expect("rm");
    let Outcome::Unavailable(e) = login(&*backend, "carol", "carol").await else {
        panic!("missing file")
    };
    assert!(
        e.to_string().contains(file_arg) && e.to_string().contains("cannot read"),
        "{e}"
    );
    assert!(backend.health().await.is_err());
    assert!(backend.get_user("carol").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_is_not_reread_within_the_check_interval() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_passwd(dir.path());
    let backend = build(dir.path(), "path: ops.htpasswd\ncheck_interval: 1h\n");
    assert!(backend.health().await.is_ok());
    std::fs::remove_file(dir.path().join("ops.htpasswd")).expect("rm");
    assert!(backend.health().await.is_ok(), "checked again too soon");
    assert!(matches!(
        login(&*backend, "user_B", "correct horse battery").await,
        Outcome::Authenticated(_)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_users_cost_about_a_wrong_password() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hash = "$2y$10$jpT.S1Wpk2ylGrodDl2cmuJVdlBr9i4KQ351rzy7OTM9T1dz1H9y."; // htpasswd -B -C 10
    // `htpasswd -bp` writes the password in clear: refused, at the cost of a wrong password.
    std::fs::write(dir.path().join("p"), format!("u:{hash}\nplain:guess\n")).expect("write");
    let backend = build(dir.path(), "path: p\n");
    let time = async |user: &str| {
        let mut times = Vec::new();
        for _ in 0..3 {
            let started = Instant::now();
            login(&*backend, user, "guess").await;
            times.push(started.elapsed());
        }
        times.sort();
        times[1]
    };
    let wrong = time("u").await;
    let unknown = time("nobody").await;
    let refused = time("plain").await;
    assert!(wrong > Duration::from_millis(5), "{wrong:?}");
    assert!(
        unknown * 10 > wrong,
        "unknown {unknown:?} vs wrong {wrong:?}"
    );
    assert!(
        refused * 10 > wrong,
        "refused format {refused:?} vs wrong {wrong:?}"
    );
}

/// 72 bytes: all that bcrypt reads of a password.
fn pw72() -> String {
    format!("carl-bcrypt-{}", "x".repeat(60))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_and_truncated_passwords_never_log_in_and_refused_rows_refuse_only_their_user() {
    if !htpasswd_tool() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("users");
    let f = file.to_str().expect("utf-8 path");
    run_htpasswd(&["-cbB", "-C", "4", f, "nopw", ""]);
    run_htpasswd(&["-bB", "-C", "4", f, "carl", &pw72()]);
    run_htpasswd(&["-bB", "-C", "4", f, "alice", "alice-pw"]);
    run_htpasswd(&["-bp", f, "paula", "paula-plain-pw"]);
    let mut text = std::fs::read_to_string(&file).expect("read");
    text.push_str("ghost:{SSHA}c2VjcmV0c2FsdHNlY3JldHNhbHQ=\n");
    std::fs::write(&file, text).expect("write");
    let backend = build(dir.path(), "path: users\n");

    // `nopw:` over HTTP Basic is `Basic bm9wdzo=`.
    let out = login(&*backend, "nopw", "").await;
    assert!(matches!(out, Outcome::Rejected), "empty password: {out:?}");
    let out = login(&*backend, "carl", &pw72()).await;
    assert!(matches!(out, Outcome::Authenticated(_)), "{out:?}");
    for longer in [format!("{}x", pw72()), format!("{} and more", pw72())] {
        let out = login(&*backend, "carl", &longer).await;
        assert!(matches!(out, Outcome::Rejected), "72-byte prefix: {out:?}");
    }
    // A plaintext or unknown-format row is its user's refusal, never an outage.
    for (user, pw) in [("paula", "paula-plain-pw"), ("ghost", "secret")] {
        let out = login(&*backend, user, pw).await;
        assert!(matches!(out, Outcome::Rejected), "{user}: {out:?}");
    }
    let out = login(&*backend, "alice", "alice-pw").await;
    assert!(matches!(out, Outcome::Authenticated(_)), "{out:?}");
    assert!(backend.health().await.is_ok());
}

#[test]
fn the_built_in_types_are_registered_with_their_options() {
    let registry = Registry::from_inventory().expect("no duplicate types");
    let options = |name: &str| -> Vec<&'static str> {
        registry
            .get(name)
            .unwrap_or_else(|e| panic!("{e}"))
            .options
            .iter()
            .map(|o| o.name)
            .collect()
    };
    assert_eq!(
        options("htpasswd"),
        [
            "path",
            "groups_file",
            "allow_des_crypt",
            "allow_plaintext",
            "check_interval"
        ]
    );
    assert_eq!(options("static"), ["users", "allow_plaintext"]);
    assert!(options("local").is_empty());
    let reg = registry.get("htpasswd").expect("htpasswd");
    let interval = reg
        .options
        .iter()
        .find(|o| o.name == "check_interval")
        .expect("check_interval");
    assert_eq!(interval.default, Some("1s"));
    assert!(
        reg.options
            .iter()
            .find(|o| o.name == "path")
            .expect("path")
            .required
    );
}

#[test]
fn options_are_checked_when_parsed() {
    let registry = Registry::from_inventory().expect("registry");
    let reg = registry.get("htpasswd").expect("htpasswd");
    for (yaml, needle) in [
        ("groups_file: g\n", "path"),
        ("path: p\nallow_des: true\n", "allow_des"),
        ("path: p\ncheck_interval: 5\n", "unit"),
    ] {
        let value: serde_json::Value = serde_saphyr::from_str(yaml).expect("yaml");
        let mut de = <dyn erased_serde::Deserializer>::erase(value);
        let err = (reg.parse)(&mut de).expect_err(yaml).to_string();
        assert!(err.contains(needle), "{yaml}: {err}");
    }
}

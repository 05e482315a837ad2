//! The Django recipe (`examples/django-recipe/`), end to end: a real Django app (from PyPI, in a
//! cached virtualenv) behind the gateway, using `PersistentRemoteUserMiddleware` on
//! `X-Remote-User` and verifying the gateway's signed identity assertion with PyJWT against
//! `/_auth/jwks.json`. Through the gateway the user and groups arrive; straight at the app, a
//! forged `X-Remote-User` is refused by the app.
//!
//! The virtualenv lives in `$DJANGO_VENV`, else `target/tmp/django-venv` (kept between runs); it
//! needs `python3` with `venv` and PyPI the first time. Without them the test skips loudly;
//! under `CI=true` it fails.

use crate::support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::{Harness, basic, client};

fn service_missing(why: impl std::fmt::Display) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("python3 -m venv with Django and PyJWT from PyPI is required (CI=true): {why}");
    }
    eprintln!(
        "\n!!!!!!!! SKIPPING TEST: python3 -m venv with Django and PyJWT unavailable: {why}\n!!!!!!!! (set CI=true to make this a failure)\n"
    );
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The virtualenv's python, made once.
fn django_python() -> Option<PathBuf> {
    let dir = std::env::var_os("DJANGO_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("django-venv"));
    let python = dir.join("bin/python");
    if dir.join(".ready").exists() {
        return Some(python);
    }
    let made = (|| {
        let _ = std::fs::remove_dir_all(&dir);
        run(Command::new("python3").arg("-m").arg("venv").arg(&dir))?;
        run(Command::new(dir.join("bin/pip")).args([
            "install",
            "-q",
            "--disable-pip-version-check",
            "Django>=4.2,<6",
            "PyJWT[crypto]>=2.8,<3",
        ]))?;
        std::fs::write(dir.join(".ready"), "").map_err(|e| e.to_string())
    })();
    match made {
        Ok(()) => Some(python),
        Err(e) => {
            service_missing(e);
            None
        }
    }
}

/// `runserver` on the recipe project; killed on drop.
struct Django {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Django {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn project() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/django-recipe")
}

async fn start_django(python: &Path, port: u16, jwks_url: &str, audience: &str) -> Django {
    let dir = tempfile::tempdir().unwrap();
    let env = |cmd: &mut Command| {
        cmd.current_dir(project())
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("DJANGO_DB", dir.path().join("db.sqlite3"))
            .env("AUTHGATE_JWKS_URL", jwks_url)
            .env("AUTHGATE_AUDIENCE", audience)
            .env("AUTHGATE_ISSUER", "http://127.0.0.1:8080");
    };
    let mut migrate = Command::new(python);
    migrate.args(["manage.py", "migrate", "-v", "0"]);
    env(&mut migrate);
    run(&mut migrate).expect("manage.py migrate");
    let mut server = Command::new(python);
    server
        .args(["manage.py", "runserver", "--noreload"])
        .arg(format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    env(&mut server);
    let child = server.spawn().expect("runserver starts");
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let django = Django {
        child,
        addr,
        _dir: dir,
    };
    for _ in 0..150 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return django;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("Django did not start listening on {addr}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn django_trusts_the_gateway_and_refuses_a_forged_remote_user() {
    let Some(python) = django_python() else {
        return;
    };
    let port = free_port();
    let audience = format!("http://127.0.0.1:{port}");
    let yaml = format!(
        r#"
server:
  public_url: "http://127.0.0.1:8080"
  trusted_proxies: [127.0.0.1/32]
upstream:
  url: "{audience}"
  timeout: 10s
identity_headers:
  assertion:
    algorithm: ES256
session:
  secure: false
  secret: "0123456789abcdef0123456789abcdef-test"
routes:
  - match: {{ path: / }}
    access: authenticated
"#
    );
    let h = Harness::start_with(&yaml).await;
    let django = start_django(&python, port, &h.url("/_auth/jwks.json"), &audience).await;
    let c = client();
    let direct = |p: &str| format!("http://{}{p}", django.addr);

    // Through the gateway: the user, with groups synced from the verified claims; a client's
    // own assertion header is replaced, not passed.
    let bob = c
        .get(h.url("/whoami"))
        .header("authorization", basic("bob", "bob-pw"))
        .header("x-authgate-assertion", "forged")
        .send()
        .await
        .unwrap();
    assert_eq!(bob.status(), 200);
    let who: Value = bob.json().await.unwrap();
    assert_eq!(who["username"], "bob");
    assert_eq!(who["groups"], serde_json::json!(["admins", "staff"]));
    assert_eq!(who["is_staff"], true);
    let alice = c
        .get(h.url("/whoami"))
        .header("authorization", basic("alice", "alice-pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(alice.status(), 200);
    let who: Value = alice.json().await.unwrap();
    assert_eq!(who["username"], "alice");
    assert_eq!(who["groups"], serde_json::json!(["staff"]));

    // Straight at the app: a forged X-Remote-User is refused, with no token, a garbage token,
    // a tampered one, or a valid token of another user (taken from a forward-auth answer).
    let forged = c
        .get(direct("/whoami"))
        .header("x-remote-user", "bob")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let check = c
        .get(h.url("/_auth/check"))
        .header("x-original-uri", "/whoami")
        .header("authorization", basic("alice", "alice-pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(check.status(), 200);
    let token = check
        .headers()
        .get("x-authgate-assertion")
        .expect("forward-auth answers carry the assertion")
        .to_str()
        .unwrap()
        .to_string();
    let mut tampered = token.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    for (user, token) in [
        ("bob", "not-a-jwt"),
        ("bob", token.as_str()),
        ("alice", tampered.as_str()),
    ] {
        let resp = c
            .get(direct("/whoami"))
            .header("x-remote-user", user)
            .header("x-authgate-assertion", token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403, "{user} with {token}");
    }
    // The untampered token for its own user passes: the refusals above are about the token.
    let replay = c
        .get(direct("/whoami"))
        .header("x-remote-user", "alice")
        .header("x-authgate-assertion", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 200);
    drop(django);
}

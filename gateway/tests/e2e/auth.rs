//! End-to-end: identification and the gateway's endpoints (Basic, challenge, login form,
//! rotation, logout, whoami, forward-auth check, lockout, revalidation), API keys, and JWTs.

use crate::support;

use crate::backend_support;

use support::{Harness, Jar, basic, client, hidden_field, login, submit_login};

#[tokio::test]
async fn browsers_get_a_redirect_and_api_clients_a_basic_challenge() {
    let h = Harness::start().await;
    let c = client();
    let resp = c
        .get(h.url("/app/page?x=1&y=2"))
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    assert_eq!(
        resp.headers()["location"],
        "/_auth/login?next=%2Fapp%2Fpage%3Fx%3D1%26y%3D2"
    );
    let resp = c
        .get(h.url("/app/page"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.headers()["www-authenticate"],
        "Basic realm=\"Test Realm\", charset=\"UTF-8\""
    );
    assert!(h.upstream.seen().is_empty());
}

#[tokio::test]
async fn basic_auth_works_and_bad_basic_is_refused() {
    let h = Harness::start().await;
    let c = client();
    let ok = c
        .get(h.url("/app"))
        .header("authorization", basic("alice", "alice-pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let wrong = c
        .get(h.url("/app"))
        .header("authorization", basic("alice", "nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let unknown = c
        .get(h.url("/app"))
        .header("authorization", basic("mallory", "x"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 401);
    for bad in ["Basic !!!!", "Basic YWxpY2U=", "Basic /zo="] {
        let resp = c
            .get(h.url("/app"))
            .header("authorization", bad)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{bad}");
    }
    assert_eq!(h.upstream.seen().len(), 1);
}

#[tokio::test]
async fn login_form_flow_sets_a_session_and_whoami_reports_it() {
    let h = Harness::start().await;
    let c = client();
    let jar = login(&h, "alice", "alice-pw").await;
    assert!(jar.cookies.contains_key("gw_session"));
    let who = c
        .get(h.url("/_auth/whoami"))
        .header("cookie", jar.header())
        .send()
        .await
        .unwrap();
    assert_eq!(who.status(), 200);
    let v: serde_json::Value = who.json().await.unwrap();
    assert_eq!(v["username"], "alice");
    assert_eq!(v["email"], "alice@example.org");
    assert_eq!(v["groups"], serde_json::json!(["staff"]));
    assert_eq!(v["backend"], "test");

    let app = c
        .get(h.url("/app"))
        .header("cookie", format!("{}; other=1", jar.header()))
        .send()
        .await
        .unwrap();
    assert_eq!(app.status(), 200);
    let seen = h.upstream.last().unwrap();
    assert_eq!(seen.get("x-remote-user").as_deref(), Some("alice"));
    assert_eq!(seen.get("cookie").as_deref(), Some("other=1"));

    let anon = c.get(h.url("/_auth/whoami")).send().await.unwrap();
    assert_eq!(anon.status(), 401);
}

#[tokio::test]
async fn login_redirect_target_is_validated() {
    let h = Harness::start().await;
    let mut jar = Jar::default();
    let resp = submit_login(
        &h,
        &mut jar,
        "/_auth/login?next=https://evil.example/phish",
        "alice",
        "alice-pw",
        Some("//evil.example/"),
    )
    .await;
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/");
}

#[tokio::test]
async fn login_without_valid_csrf_or_with_a_wrong_password_fails() {
    let h = Harness::start().await;
    let c = client();
    // No CSRF cookie at all.
    let resp = c
        .post(h.url("/_auth/login"))
        .form(&[
            ("username", "alice"),
            ("password", "alice-pw"),
            ("csrf", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert!(
        resp.headers()
            .get_all("set-cookie")
            .iter()
            .all(|v| !v.to_str().unwrap().starts_with("gw_session="))
    );
    // Right CSRF, wrong password: generic error, 401, no session.
    let mut jar = Jar::default();
    let resp = submit_login(&h, &mut jar, "/_auth/login", "alice", "bad", None).await;
    assert_eq!(resp.status(), 401);
    assert!(!jar.cookies.contains_key("gw_session"));
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("Invalid username or password")
    );
    // Oversized body.
    let big = "a".repeat(20_000);
    let resp = c
        .post(h.url("/_auth/login"))
        .header("cookie", jar.header())
        .form(&[("username", big.as_str()), ("password", "x"), ("csrf", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
}

#[tokio::test]
async fn login_rotates_the_session_id() {
    let h = Harness::start().await;
    let c = client();
    let first = login(&h, "alice", "alice-pw").await;
    let old = first.cookies["gw_session"].clone();
    // Log in again while holding the old cookie.
    let mut jar = first.clone();
    let resp = submit_login(&h, &mut jar, "/_auth/login", "bob", "bob-pw", None).await;
    assert_eq!(resp.status(), 303);
    let new = jar.cookies["gw_session"].clone();
    assert_ne!(old, new);
    // The old id is dead.
    let replay = c
        .get(h.url("/_auth/whoami"))
        .header("cookie", format!("gw_session={old}"))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 401);
    let who: serde_json::Value = c
        .get(h.url("/_auth/whoami"))
        .header("cookie", format!("gw_session={new}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(who["username"], "bob");
}

#[tokio::test]
async fn logout_ends_the_session_in_the_store() {
    let h = Harness::start().await;
    let c = client();
    let jar = login(&h, "alice", "alice-pw").await;
    let cookie = jar.header();
    // GET logout shows a confirmation form; it does not log out.
    let confirm = c
        .get(h.url("/_auth/logout"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(confirm.status(), 200);
    let csrf = hidden_field(&confirm.text().await.unwrap(), "csrf").unwrap();
    // POST without the token is refused.
    let refused = c
        .post(h.url("/_auth/logout"))
        .header("cookie", &cookie)
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let still = c
        .get(h.url("/_auth/whoami"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(still.status(), 200);
    let out = c
        .post(h.url("/_auth/logout"))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    assert_eq!(out.headers()["location"], "/_auth/login");
    let cleared = out
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|v| v.to_str().unwrap().starts_with("gw_session=;"));
    assert!(cleared, "cookie not cleared");
    // Replaying the old cookie is anonymous now.
    let replay = c
        .get(h.url("/app"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 401);
}

#[tokio::test]
async fn wrong_group_gets_403_page() {
    let h = Harness::start().await;
    let jar = login(&h, "alice", "alice-pw").await;
    let resp = client()
        .get(h.url("/admin/settings"))
        .header("cookie", jar.header())
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert!(resp.text().await.unwrap().contains("alice"));
    assert!(
        h.upstream
            .seen()
            .iter()
            .all(|r| !r.path.starts_with("/admin"))
    );
}

#[tokio::test]
async fn lockout_answers_the_same_whether_or_not_the_password_is_right() {
    let yaml = support::BASE_CONFIG.replace(
        "login:\n",
        "protection:\n  max_failures: 3\n  window: 1m\n  lockout: 1m\ncache:\n  credentials_ttl: 0s\nlogin:\n",
    );
    let h = Harness::start_with(&yaml).await;
    let c = client();
    let get = |pw: &'static str| {
        c.get(h.url("/app"))
            .header("authorization", basic("eve", pw))
            .send()
    };
    for _ in 0..3 {
        assert_eq!(get("wrong").await.unwrap().status(), 401);
    }
    assert_eq!(
        get("eve-pw").await.unwrap().status(),
        401,
        "locked pair got in"
    );
    assert!(h.upstream.seen().is_empty());
    // Another user from the same address is not locked.
    let other = c
        .get(h.url("/app"))
        .header("authorization", basic("alice", "alice-pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);
}

#[tokio::test]
async fn sessions_end_when_the_user_is_gone_or_the_password_changes() {
    let yaml =
        support::BASE_CONFIG.replace("  secure: false\n", "  secure: false\n  revalidate: 0s\n");
    let h = Harness::start_with(&yaml).await;
    let c = client();
    let who = |jar: &Jar| {
        c.get(h.url("/_auth/whoami"))
            .header("cookie", jar.header())
            .send()
    };
    let alice = login(&h, "alice", "alice-pw").await;
    let eve = login(&h, "eve", "eve-pw").await;
    assert_eq!(who(&alice).await.unwrap().status(), 200);
    // Group change is picked up on revalidation.
    h.backend.set("alice", "alice-pw", &["staff", "admins"]);
    let admin = c
        .get(h.url("/admin"))
        .header("cookie", alice.header())
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 200);
    // Password change: the session dies.
    h.backend.set("alice", "new-pw", &["staff"]);
    assert_eq!(who(&alice).await.unwrap().status(), 401);
    // User removed: the session dies.
    assert_eq!(who(&eve).await.unwrap().status(), 200);
    h.backend.remove("eve");
    assert_eq!(who(&eve).await.unwrap().status(), 401);
}

#[tokio::test]
async fn forward_auth_check_answers_200_401_403() {
    let yaml = support::BASE_CONFIG.replace(
        "  public_url:",
        "  trusted_proxies: [127.0.0.1/32]\n  public_url:",
    );
    let h = Harness::start_with(&yaml).await;
    let c = client();
    let check = |uri: &str, auth: Option<String>| {
        let mut r = c
            .get(h.url("/_auth/check"))
            .header("x-original-uri", uri)
            .header("x-forwarded-method", "GET");
        if let Some(a) = auth {
            r = r.header("authorization", a);
        }
        r.send()
    };
    let ok = check("/app/x", Some(basic("alice", "alice-pw")))
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["x-remote-user"], "alice");
    assert_eq!(ok.headers()["x-remote-groups"], "staff");
    let anon = check("/app/x", None).await.unwrap();
    assert_eq!(anon.status(), 401);
    assert!(anon.headers().contains_key("www-authenticate"));
    let forbidden = check("/admin/x", Some(basic("alice", "alice-pw")))
        .await
        .unwrap();
    assert_eq!(forbidden.status(), 403);
    let public = check("/static/x", None).await.unwrap();
    assert_eq!(public.status(), 200);
    assert!(!public.headers().contains_key("x-remote-user"));
    let ambiguous = check("/static/../admin", Some(basic("alice", "alice-pw")))
        .await
        .unwrap();
    assert_eq!(ambiguous.status(), 400);
    let missing = c.get(h.url("/_auth/check")).send().await.unwrap();
    assert_eq!(missing.status(), 400);
    let conflicting = c
        .get(h.url("/_auth/check"))
        .header("x-original-uri", "/static/x")
        .header("x-forwarded-uri", "/admin/x")
        .header("authorization", basic("alice", "alice-pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(conflicting.status(), 400);
    // Session cookies work too (Traefik/Caddy forward them).
    let jar = login(&h, "bob", "bob-pw").await;
    let via_cookie = c
        .get(h.url("/_auth/check"))
        .header("x-forwarded-uri", "/admin/x")
        .header("cookie", jar.header())
        .send()
        .await
        .unwrap();
    assert_eq!(via_cookie.status(), 200);
    assert_eq!(via_cookie.headers()["x-remote-user"], "bob");
    assert!(h.upstream.seen().is_empty());
}

#[tokio::test]
async fn forward_auth_check_refuses_untrusted_peers() {
    let h = Harness::start().await;
    let resp = client()
        .get(h.url("/_auth/check"))
        .header("x-original-uri", "/static/x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
}

#[tokio::test]
async fn sessions_expire_when_idle_and_at_their_absolute_lifetime() {
    use std::time::{Duration, Instant};
    let yaml = support::BASE_CONFIG.replace(
        "  secure: false\n",
        "  secure: false\n  idle_timeout: 1s\n  ttl: 4s\n",
    );
    let h = Harness::start_with(&yaml).await;
    let c = client();
    let who = |jar: &Jar| {
        c.get(h.url("/_auth/whoami"))
            .header("cookie", jar.header())
            .send()
    };
    // Idle: unused for longer than idle_timeout.
    let idle = login(&h, "alice", "alice-pw").await;
    assert_eq!(who(&idle).await.unwrap().status(), 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        who(&idle).await.unwrap().status(),
        401,
        "idle session still alive"
    );

    // Absolute: used every 400 ms (so never idle), it still ends after ttl.
    let busy = login(&h, "bob", "bob-pw").await;
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(2600) {
        assert_eq!(who(&busy).await.unwrap().status(), 200, "died early");
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    tokio::time::sleep(Duration::from_millis(4500).saturating_sub(started.elapsed())).await;
    assert_eq!(who(&busy).await.unwrap().status(), 401, "outlived its ttl");
}

#[tokio::test]
async fn a_session_store_that_is_down_fails_closed() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    let yaml = support::BASE_CONFIG.replace(
        "  secure: false\n",
        &format!("  secure: false\n  store: redis://{dead_addr}/\n"),
    );
    let h = Harness::start_with(&yaml).await;
    let mut jar = Jar::default();
    let resp = submit_login(&h, &mut jar, "/_auth/login", "alice", "alice-pw", None).await;
    assert_eq!(resp.status(), 503);
    assert!(!jar.cookies.contains_key("gw_session"));
    assert!(h.upstream.seen().is_empty());
}

#[tokio::test]
async fn bearer_tokens_go_through_the_chain() {
    let h = Harness::start().await;
    let c = client();
    let ok = c
        .get(h.url("/app"))
        .header("authorization", "Bearer tok-alice")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let seen = h.upstream.last().unwrap();
    assert_eq!(seen.get("x-remote-user").as_deref(), Some("alice"));
    assert!(seen.get("authorization").is_none(), "token forwarded");
    let who: serde_json::Value = c
        .get(h.url("/_auth/whoami"))
        .header("authorization", "Bearer tok-bob")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(who["username"], "bob");
    let wrong = c
        .get(h.url("/app"))
        .header("authorization", "Bearer tok-nobody")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let malformed = c
        .get(h.url("/app"))
        .header("authorization", "Bearer two words")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    assert_eq!(h.upstream.seen().len(), 1);
}

#[tokio::test]
async fn basic_can_be_turned_off() {
    let yaml = support::BASE_CONFIG.replace("login:\n", "login:\n  basic_auth: false\n");
    let h = Harness::start_with(&yaml).await;
    let resp = client()
        .get(h.url("/app"))
        .header("authorization", basic("alice", "alice-pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(!resp.headers().contains_key("www-authenticate"));
    assert!(h.upstream.seen().is_empty());
    // The login form still works.
    let jar = login(&h, "alice", "alice-pw").await;
    let ok = client()
        .get(h.url("/app"))
        .header("cookie", jar.header())
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}

/// API keys end to end: made with the real `authgate keys add`, checked by the `local` backend
/// on a SQLite `users_db`, never forwarded, refused once wrong, expired or revoked.
mod api_keys {
    use std::path::{Path, PathBuf};
    use std::process::{Command, Stdio};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use gateway::__test::Metrics;
    use gateway::__test::build_runtime;
    use gateway::__test::{Gateway, Running};
    use gateway::launch::default_chain_builder;

    use super::support::{RecordingUpstream, client};

    fn config(upstream: std::net::SocketAddr, dir: &Path) -> String {
        format!(
            r#"
server:
  public_url: "http://127.0.0.1:8080"
upstream:
  url: "http://{upstream}"
session:
  secure: false
  secret: "0123456789abcdef0123456789abcdef-test"
login:
  api_key_headers: [X-Api-Key, X-Other-Key]
cache:
  credentials_ttl: 1h
users_db: "sqlite://{db}"
chain:
  - name: local
    type: local
routes:
  - match: {{ path: /static/ }}
    access: public
  - match: {{ path: / }}
    access: authenticated
"#,
            db = dir.join("users.db").display()
        )
    }

    /// Runs the `authgate` binary with `args` on `config`, `stdin` piped in; returns (exit
    /// code, stdout, stderr).
    async fn authgate(config: &Path, args: &[&str], stdin: &str) -> (i32, String, String) {
        let config = config.to_path_buf();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let stdin = stdin.to_string();
        tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let mut child = Command::new(env!("CARGO_BIN_EXE_authgate"))
                .arg("--config")
                .arg(&config)
                .args(&args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(stdin.as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            (
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        })
        .await
        .unwrap()
    }

    struct Replica {
        running: Running,
    }

    impl Replica {
        async fn start(path: &Path) -> Replica {
            let rt = build_runtime(path, 1, None, &default_chain_builder())
                .await
                .expect("config loads");
            let gw = Gateway::new(rt, Arc::new(Metrics::new()));
            let running = Running::start(gw, "127.0.0.1:0".parse().unwrap(), None)
                .await
                .unwrap();
            Replica { running }
        }

        fn url(&self, path: &str) -> String {
            format!("http://{}{path}", self.running.addr)
        }

        async fn status(&self, path: &str, headers: &[(&str, &str)]) -> u16 {
            let mut req = client().get(self.url(path));
            for (name, value) in headers {
                req = req.header(*name, *value);
            }
            req.send().await.unwrap().status().as_u16()
        }
    }

    /// A config on a fresh SQLite store with user `ci-bot` (no password).
    async fn setup() -> (tempfile::TempDir, PathBuf, RecordingUpstream) {
        let dir = tempfile::tempdir().unwrap();
        let upstream = RecordingUpstream::start().await;
        let path = dir.path().join("gateway.yaml");
        std::fs::write(&path, config(upstream.addr, dir.path())).unwrap();
        let (code, _, err) = authgate(
            &path,
            &["users", "add", "ci-bot", "--no-password", "-g", "deploy"],
            "",
        )
        .await;
        assert_eq!(code, 0, "{err}");
        (dir, path, upstream)
    }

    async fn new_key(path: &Path, extra: &[&str]) -> String {
        let mut args = vec!["keys", "add", "ci-bot"];
        args.extend_from_slice(extra);
        let (code, out, err) = authgate(path, &args, "").await;
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("shown once"), "{err}");
        out.trim().to_string()
    }

    /// Polls until `replica` answers `want` for `key`; the time it took, or `None` after 5 s.
    async fn refused_within(replica: &Replica, key: &str) -> Option<Duration> {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(5) {
            if replica.status("/app", &[("x-api-key", key)]).await == 401 {
                return Some(started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_key_reaches_the_app_as_its_user_and_is_never_forwarded() {
        let (_dir, path, upstream) = setup().await;
        let key = new_key(&path, &["--name", "ci"]).await;
        assert!(key.starts_with("ag_"), "{key}");
        let gw = Replica::start(&path).await;

        let resp = client()
            .get(gw.url("/app/report"))
            .header("X-Api-Key", &key)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert!(
            resp.headers().get("set-cookie").is_none(),
            "a key login made a session"
        );
        let seen = upstream.last().unwrap();
        assert_eq!(seen.get("x-remote-user").as_deref(), Some("ci-bot"));
        assert_eq!(seen.get("x-remote-groups").as_deref(), Some("deploy"));
        assert_eq!(seen.get("x-api-key"), None, "the key was forwarded");
        // The other configured header works too, and is not forwarded either.
        assert_eq!(gw.status("/app", &[("x-other-key", &key)]).await, 200);
        assert_eq!(upstream.last().unwrap().get("x-other-key"), None);

        // On a public route, the key header and its look-alikes are stripped too.
        upstream.clear();
        let resp = client()
            .get(gw.url("/static/app.css"))
            .header("X-Api-Key", &key)
            .header("X_Api_Key", &key)
            .header("x.other.key", &key)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let seen = upstream.last().unwrap();
        for name in ["x-api-key", "x_api_key", "x.other.key", "x-other-key"] {
            assert_eq!(seen.get(name), None, "{name} reached the app");
        }
        assert_eq!(seen.get("x-remote-user"), None);

        // Wrong, unknown, malformed, empty: 401. Two keys: 400, whichever is right.
        let wrong = format!("{}0", &key[..key.len() - 1]);
        let wrong = if wrong == key {
            format!("{}1", &key[..key.len() - 1])
        } else {
            wrong
        };
        for bad in [wrong.as_str(), "ag_0000000000000000_00", "nonsense", ""] {
            assert_eq!(gw.status("/app", &[("x-api-key", bad)]).await, 401, "{bad}");
        }
        assert_eq!(
            gw.status("/app", &[("x-api-key", &key), ("x-api-key", &key)])
                .await,
            400
        );
        assert_eq!(
            gw.status("/app", &[("x-api-key", &key), ("x-other-key", &wrong)])
                .await,
            400
        );
        // A look-alike spelling is no key: dropped, so anonymous.
        assert_eq!(gw.status("/app", &[("x_api_key", &key)]).await, 401);

        // An expired key is refused.
        let short = new_key(&path, &["--expires", "1s"]).await;
        assert!(
            refused_within(&gw, &short).await.is_some(),
            "an expired key still works"
        );
        // `keys list` shows both, never a secret.
        let (code, out, _) = authgate(&path, &["keys", "list", "ci-bot"], "").await;
        assert_eq!(code, 0);
        assert!(out.contains("ci-bot") && out.contains(" ci "), "{out}");
        assert!(out.contains("expired") && out.contains("active"), "{out}");
        assert!(!out.contains(&key[20..]), "keys list shows a secret");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_revoked_key_is_refused_within_a_second_on_every_replica() {
        let (_dir, path, _upstream) = setup().await;
        let key = new_key(&path, &[]).await;
        let (a, b) = (Replica::start(&path).await, Replica::start(&path).await);
        // Both have the success cached (credentials_ttl is 1h).
        for gw in [&a, &b] {
            assert_eq!(gw.status("/app", &[("x-api-key", &key)]).await, 200);
            assert_eq!(gw.status("/app", &[("x-api-key", &key)]).await, 200);
        }
        let id = key.split('_').nth(1).unwrap().to_string();
        let (code, out, err) = authgate(&path, &["keys", "revoke", &id], "").await;
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("revoked"), "{out}");
        for gw in [&a, &b] {
            let took = refused_within(gw, &key).await;
            assert!(
                took.is_some_and(|t| t < Duration::from_millis(1500)),
                "refused after {took:?}"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn explain_runs_the_chain_for_a_key() {
        let (_dir, path, _upstream) = setup().await;
        let key = new_key(&path, &[]).await;
        let (code, out, err) = authgate(
            &path,
            &["explain", "--api-key", "X-Api-Key"],
            &format!("{key}\n"),
        )
        .await;
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.contains("local (local): authenticated"), "{out}");
        assert!(
            out.contains("verdict: authenticated by `local` as `ci-bot`"),
            "{out}"
        );
        assert!(!out.contains(&key) && !err.contains(&key));
        // Another last character (a key ending in `0` must not be "changed" into itself).
        let last = if key.ends_with('0') { '1' } else { '0' };
        let wrong = format!("{}{last}", &key[..key.len() - 1]);
        assert_ne!(wrong, key);
        let (code, out, _) = authgate(
            &path,
            &["explain", "--api-key", "X-Api-Key"],
            &format!("{wrong}\n"),
        )
        .await;
        assert_eq!(code, 1, "{out}");
        // A bearer token: `local` does not take tokens, so it is skipped.
        let (code, out, _) = authgate(&path, &["explain", "--bearer"], "some-token\n").await;
        assert_eq!(code, 1, "{out}");
        assert!(out.contains("local (local): skipped"), "{out}");
    }
}

/// Bearer JWTs end to end (issue 13): tokens made and signed by PyJWT (an independent
/// implementation, `support/pyjwt.rs`) against a `jwt` entry reading a JWKS file; the valid one
/// reaches the app as its mapped user, the token itself never does, and nothing else gets through.
mod jwt {
    use std::time::{SystemTime, UNIX_EPOCH};

    use serde_json::{Value, json};

    use super::backend_support::pyjwt::pyjwt;
    use super::support::client;
    use super::support::raw::FileHarness;

    const ISSUER: &str = "https://idp.example.org/realms/main";

    const CONFIG: &str = r#"
server:
  public_url: "http://127.0.0.1:8080"
upstream:
  url: "http://{upstream}"
session:
  secure: false
  secret: "0123456789abcdef0123456789abcdef-test"
chain:
  - name: idp
    type: jwt
    options:
      jwks_file: jwks.json
      issuer: https://idp.example.org/realms/main
      audiences: [legacy-app]
      attributes:
        username: preferred_username
        email: email
        groups: realm_access.roles
routes:
  - match: { path: /admin/ }
    access: { groups: [admins] }
  - match: { path: / }
    access: authenticated
"#;

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn claims(user: &str, roles: &[&str]) -> Value {
        json!({
            "iss": ISSUER,
            "aud": ["account", "legacy-app"],
            "sub": format!("sub-{user}"),
            "preferred_username": user,
            "email": format!("{user}@example.org"),
            "realm_access": {"roles": roles},
            "iat": now(),
            "exp": now() + 300,
        })
    }

    /// A sign request with key `name`, which the token names as its `kid` unless `kid` differs.
    fn signed(keys: &Value, name: &str, kid: &str, alg: &str, claims: Value) -> Value {
        json!({"alg": alg, "key": keys[name]["private"], "headers": {"kid": kid}, "claims": claims})
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_token_from_the_issuer_reaches_the_app_as_its_user_and_nothing_else_does() {
        let Some(py) = pyjwt() else { return };
        let keys = py.keys();
        // The issuer publishes `rsa` and `ed`; `rsa2` is someone else's key.
        let jwks = json!({"keys": [keys["rsa"]["jwk"], keys["ed"]["jwk"]]});
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("jwks.json"), jwks.to_string()).unwrap();
        let h = FileHarness::start_in(dir, CONFIG).await;

        let mut expired = claims("alice", &["staff"]);
        expired["iat"] = json!(now() - 7200);
        expired["exp"] = json!(now() - 3600);
        let tokens = py.sign(&[
            signed(&keys, "rsa", "rsa", "RS256", claims("alice", &["staff", "dev"])),
            signed(&keys, "ed", "ed", "EdDSA", claims("root", &["admins"])),
            signed(&keys, "rsa", "rsa", "RS256", expired),
            json!({"alg": "none", "headers": {"kid": "rsa"}, "claims": claims("alice", &["admins"])}),
            signed(&keys, "rsa2", "rsa2", "RS256", claims("alice", &["admins"])),
            signed(&keys, "rsa2", "rsa", "RS256", claims("alice", &["admins"])),
            json!({"forge_hmac": keys["rsa"]["public"], "headers": {"kid": "rsa"},
                   "claims": claims("alice", &["admins"])}),
        ]);
        let [alice, root, bad @ ..] = tokens.as_slice() else {
            panic!("{tokens:?}")
        };
        let url = |path: &str| format!("http://{}{path}", h.addr);
        let get = |path: &str, token: &str| {
            client()
                .get(url(path))
                .header("authorization", format!("Bearer {token}"))
                .send()
        };

        let resp = get("/app/report", alice).await.unwrap();
        assert_eq!(resp.status(), 200);
        assert!(
            resp.headers().get("set-cookie").is_none(),
            "a token made a session"
        );
        let seen = h.upstream.last().unwrap();
        assert_eq!(seen.get("x-remote-user").as_deref(), Some("alice"));
        assert_eq!(
            seen.get("x-remote-email").as_deref(),
            Some("alice@example.org")
        );
        assert_eq!(seen.get("x-remote-groups").as_deref(), Some("dev,staff"));
        assert_eq!(seen.get("authorization"), None, "the token was forwarded");

        // Groups come from the token: alice is no admin, root (an EdDSA token) is.
        h.upstream.clear();
        let resp = get("/admin/users", alice).await.unwrap();
        assert_eq!(resp.status(), 403);
        assert!(h.upstream.seen().is_empty());
        let resp = get("/admin/users", root).await.unwrap();
        assert_eq!(resp.status(), 200);
        assert!(resp.headers().get("set-cookie").is_none());
        let seen = h.upstream.last().unwrap();
        assert_eq!(seen.get("x-remote-user").as_deref(), Some("root"));
        assert_eq!(seen.get("x-remote-groups").as_deref(), Some("admins"));
        assert_eq!(seen.get("authorization"), None);

        let resp = get("/_auth/whoami", alice).await.unwrap();
        assert_eq!(resp.status(), 200);
        assert!(resp.headers().get("set-cookie").is_none());
        let who: Value = resp.json().await.unwrap();
        assert_eq!(who["username"], "alice");
        assert_eq!(who["email"], "alice@example.org");
        assert_eq!(who["groups"], json!(["dev", "staff"]));
        assert_eq!(who["backend"], "idp");

        // Expired, unsigned, signed by a key the issuer does not publish (under its own `kid`
        // and under the issuer's), HS256 keyed with the public key, and garbage: 401, at the
        // app and at the admin route, and nothing reaches the app.
        h.upstream.clear();
        let mut refused: Vec<&str> = bad.iter().map(String::as_str).collect();
        refused.extend(["garbage", "a.b.c", "eyJhbGciOiJub25lIn0.e30."]);
        for token in refused {
            for path in ["/app", "/admin/users", "/_auth/whoami"] {
                let resp = get(path, token).await.unwrap();
                assert_eq!(resp.status(), 401, "{path} with {token}");
                assert!(resp.headers().get("set-cookie").is_none());
            }
        }
        assert!(
            h.upstream.seen().is_empty(),
            "a refused token reached the app"
        );
    }
}

/// The signed identity assertion (`identity_headers.assertion`): verified here with
/// jsonwebtoken against the JWK set the gateway serves; `e2e/recipe_django.rs` verifies it with
/// PyJWT inside a real Django app.
mod assertion {
    use super::support::{BASE_CONFIG, Harness, basic, client, login};
    use jsonwebtoken::jwk::JwkSet;
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    use serde_json::Value;

    fn with_assertion(extra: &str) -> String {
        BASE_CONFIG
            .replace(
                "  public_url:",
                "  trusted_proxies: [127.0.0.1/32]\n  public_url:",
            )
            .replace(
                "session:",
                &format!("identity_headers:\n  assertion: {{ {extra} }}\nsession:"),
            )
    }

    async fn jwks(h: &Harness) -> JwkSet {
        let resp = client()
            .get(h.url("/_auth/jwks.json"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.headers()["content-type"].to_str().unwrap(),
            "application/jwk-set+json"
        );
        resp.json().await.unwrap()
    }

    fn verify(h: &Harness, jwks: &JwkSet, token: &str, alg: Algorithm) -> Value {
        let kid = jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
        let jwk = jwks.find(&kid).expect("the kid is published");
        let mut v = Validation::new(alg);
        v.set_audience(&[format!("http://{}", h.upstream.addr)]);
        v.set_issuer(&["http://127.0.0.1:8080"]);
        v.set_required_spec_claims(&["exp", "iat", "nbf", "aud", "iss", "sub"]);
        jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &v)
            .expect("verifies")
            .claims
    }

    #[tokio::test]
    async fn off_by_default_and_no_jwks() {
        let h = Harness::start().await;
        let resp = client()
            .get(h.url("/_auth/jwks.json"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 404);
        let ok = client()
            .get(h.url("/x"))
            .header("authorization", basic("alice", "alice-pw"))
            .header("x-authgate-assertion", "forged")
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200);
        // Not configured, so not the gateway's: the header passes like any other, and an app
        // must not verify assertions from a gateway that does not send them.
        assert_eq!(
            h.upstream
                .last()
                .unwrap()
                .get("x-authgate-assertion")
                .as_deref(),
            Some("forged")
        );
    }

    #[tokio::test]
    async fn signed_per_user_for_sessions_basic_and_check_and_never_taken_from_the_client() {
        let h = Harness::start_with(&with_assertion("algorithm: ES256, ttl: 2m")).await;
        let keys = jwks(&h).await;
        assert_eq!(keys.keys.len(), 1);

        // Basic: bob's claims; the client's own copy (any spelling) is dropped.
        let resp = client()
            .get(h.url("/x"))
            .header("authorization", basic("bob", "bob-pw"))
            .header("x-authgate-assertion", "forged")
            .header("X_Authgate_Assertion", "forged")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let seen = h.upstream.last().unwrap();
        let tokens = seen.all("x-authgate-assertion");
        assert_eq!(tokens.len(), 1);
        assert!(seen.get("x_authgate_assertion").is_none());
        let claims = verify(&h, &keys, &tokens[0], Algorithm::ES256);
        assert_eq!(claims["sub"], "bob");
        assert_eq!(claims["groups"], serde_json::json!(["admins", "staff"]));
        assert_eq!(
            claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
            120
        );
        assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));

        // A session: alice's.
        let jar = login(&h, "alice", "alice-pw").await;
        let resp = client()
            .get(h.url("/y"))
            .header("cookie", jar.header())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let token = h
            .upstream
            .last()
            .unwrap()
            .get("x-authgate-assertion")
            .unwrap();
        assert_eq!(verify(&h, &keys, &token, Algorithm::ES256)["sub"], "alice");

        // Forward-auth: in the 200, for the proxy to pass on; never in a 401.
        let check = client()
            .get(h.url("/_auth/check"))
            .header("x-original-uri", "/app")
            .header("authorization", basic("alice", "alice-pw"))
            .send()
            .await
            .unwrap();
        assert_eq!(check.status(), 200);
        let token = check.headers()["x-authgate-assertion"].to_str().unwrap();
        assert_eq!(verify(&h, &keys, token, Algorithm::ES256)["sub"], "alice");
        let anon = client()
            .get(h.url("/_auth/check"))
            .header("x-original-uri", "/app")
            .send()
            .await
            .unwrap();
        assert_eq!(anon.status(), 401);
        assert!(anon.headers().get("x-authgate-assertion").is_none());

        // A public route: no user, no assertion, and the client's is still dropped.
        h.upstream.clear();
        let public = client()
            .get(h.url("/static/a.css"))
            .header("x-authgate-assertion", "forged")
            .send()
            .await
            .unwrap();
        assert_eq!(public.status(), 200);
        assert!(
            h.upstream
                .last()
                .unwrap()
                .get("x-authgate-assertion")
                .is_none()
        );
    }

    /// A key made by `openssl genpkey` (the README's command) into `path`.
    fn openssl_key(path: &std::path::Path) {
        let out = std::process::Command::new("openssl")
            .args(["genpkey", "-algorithm", "ed25519", "-out"])
            .arg(path)
            .output()
            .expect("openssl runs (Debian package openssl)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The config version `version` of `yaml` over `h`'s services, as a reload builds it.
    async fn reloaded(h: &Harness, yaml: &str, version: u64) -> gateway::__test::Runtime {
        let config = super::support::parse_config(yaml, h.upstream.addr);
        let previous = h.gateway.current();
        let services = gateway::__test::Services::carry_over(
            previous.services(),
            &config,
            h.dir.path(),
            h.dir.path(),
        )
        .await
        .expect("services");
        gateway::__test::Runtime::new(config, super::support::chain(&h.backend), services, version)
            .expect("runtime")
    }

    async fn token_for_alice(h: &Harness) -> String {
        let resp = client()
            .get(h.url("/x"))
            .header("authorization", basic("alice", "alice-pw"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        h.upstream
            .last()
            .unwrap()
            .get("x-authgate-assertion")
            .expect("an assertion")
    }

    #[tokio::test]
    async fn a_reload_with_a_new_key_file_keeps_the_old_key_published() {
        let h = Harness::start().await;
        let key = h.dir.path().join("assertion.pem");
        openssl_key(&key);
        let yaml = with_assertion(&format!("key_file: {}", key.display()));
        h.gateway.install(reloaded(&h, &yaml, 2).await);
        let first = jwks(&h).await;
        assert_eq!(first.keys.len(), 1);
        let old_token = token_for_alice(&h).await;

        // The operator rotates the key file and reloads: the new key signs, the old one is
        // still published, so a token signed a moment ago still verifies.
        openssl_key(&h.dir.path().join("next.pem"));
        std::fs::rename(h.dir.path().join("next.pem"), &key).unwrap();
        h.gateway.install(reloaded(&h, &yaml, 3).await);
        let second = jwks(&h).await;
        assert_eq!(second.keys.len(), 2);
        assert_eq!(second.keys[1], first.keys[0]);
        assert_eq!(
            verify(&h, &second, &old_token, Algorithm::EdDSA)["sub"],
            "alice"
        );
        let new_token = token_for_alice(&h).await;
        let new_kid = jsonwebtoken::decode_header(&new_token)
            .unwrap()
            .kid
            .unwrap();
        assert_eq!(
            second.keys[0].common.key_id.as_deref(),
            Some(new_kid.as_str())
        );
        assert_ne!(new_token, old_token);
        assert_eq!(
            verify(&h, &second, &new_token, Algorithm::EdDSA)["sub"],
            "alice"
        );
    }
}

//! End-to-end: identification and the gateway's endpoints (Basic, challenge, login form,
//! rotation, logout, whoami, forward-auth check, lockout, revalidation).

mod support;

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

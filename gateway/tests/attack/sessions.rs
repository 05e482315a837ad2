//! Attack class 4: sessions. Fixation, tampered and truncated cookies, replay after logout,
//! switching users in one browser, CSRF on login and logout, cookie flags — against the
//! `memory` and the stateless `cookie` stores, over raw TCP.

use crate::support;

use support::Harness;
use support::raw::{self, RawResponse};

fn config(store: &str, secure: &str) -> String {
    format!(
        r#"
server:
  public_url: "http://127.0.0.1:8080"
upstream:
  url: "http://{{upstream}}"
session:
  store: {store}
  secure: {secure}
  # named explicitly: with `secure: true` the default is `__Host-gw_session`
  # (attack/cookie_tossing.rs)
  cookie_name: gw_session
  secret: "0123456789abcdef0123456789abcdef-test"
routes:
  - match: {{ path: / }}
    access: authenticated
"#
    )
}

const STORES: &[&str] = &["memory", "cookie"];

async fn as_cookie(h: &Harness, cookie: &str) -> (u16, Option<String>) {
    h.upstream.clear();
    let ex = raw::send(h.addr, &raw::get("/app", &format!("Cookie: {cookie}\r\n"))).await;
    let user = h.upstream.last().and_then(|r| r.get("x-remote-user"));
    (ex.status(), user)
}

fn session_of(resp: &RawResponse) -> String {
    raw::set_cookie(resp, "gw_session")
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| panic!("no session cookie set: {:?}", resp.headers))
}

#[tokio::test]
async fn fixation_an_attacker_chosen_cookie_is_never_adopted() {
    for store in STORES {
        let h = Harness::start_with(&config(store, "false")).await;
        // a made-up value, and a real session the attacker holds (eve's)
        let eve = session_of(&raw::login_raw(h.addr, "eve", "eve-pw", "/", "").await);
        for planted in [
            "attacker-chosen",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            eve.as_str(),
        ] {
            let resp = raw::login_raw(
                h.addr,
                "alice",
                "alice-pw",
                "/",
                &format!("gw_session={planted}"),
            )
            .await;
            assert_eq!(resp.status, 303, "{store}");
            let fresh = session_of(&resp);
            assert_ne!(fresh, planted, "{store}: planted cookie adopted");
            assert_eq!(
                as_cookie(&h, &format!("gw_session={fresh}")).await,
                (200, Some("alice".into()))
            );
            // the planted value never becomes alice
            let (st, user) = as_cookie(&h, &format!("gw_session={planted}")).await;
            assert_ne!(
                user.as_deref(),
                Some("alice"),
                "{store}: planted cookie is alice"
            );
            assert!(st == 401 || user.as_deref() == Some("eve"), "{store}: {st}");
        }
    }
}

#[tokio::test]
async fn tampered_and_truncated_cookies_are_anonymous() {
    for store in STORES {
        let h = Harness::start_with(&config(store, "false")).await;
        let good = session_of(&raw::login_raw(h.addr, "alice", "alice-pw", "/", "").await);
        assert_eq!(as_cookie(&h, &format!("gw_session={good}")).await.0, 200);
        let mut variants: Vec<String> = Vec::new();
        // flip each of a few characters
        for i in [0, good.len() / 3, good.len() / 2, good.len() - 1] {
            let mut b = good.clone().into_bytes();
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            variants.push(String::from_utf8(b).unwrap());
        }
        variants.push(good[..good.len() - 1].to_string());
        variants.push(good[..good.len() / 2].to_string());
        variants.push(good[1..].to_string());
        variants.push(format!("{good}A"));
        variants.push(format!("{good}{good}"));
        variants.push(String::new());
        variants.push("%00".into());
        variants.push("x".repeat(3000));
        variants.push(good.replace(['-', '_'], "+"));
        variants.push(good.to_ascii_uppercase());
        // A variant that happens to equal the cookie is no tampering: about one cookie in 15
        // has neither `-` nor `_`, and the replacement above then changes nothing.
        variants.retain(|v| *v != good);
        for v in &variants {
            let (st, user) = as_cookie(&h, &format!("gw_session={v}")).await;
            assert_eq!((st, user), (401, None), "{store}: tampered {v:?}");
        }
        // the good one still works afterwards
        assert_eq!(as_cookie(&h, &format!("gw_session={good}")).await.0, 200);
    }
}

#[tokio::test]
async fn replay_after_logout_is_refused() {
    for store in STORES {
        let h = Harness::start_with(&config(store, "false")).await;
        let cookie = format!(
            "gw_session={}",
            session_of(&raw::login_raw(h.addr, "alice", "alice-pw", "/", "").await)
        );
        let page = raw::send(
            h.addr,
            &raw::get("/_auth/logout", &format!("Cookie: {cookie}\r\n")),
        )
        .await
        .first();
        let csrf = support::hidden_field(&page.text(), "csrf").unwrap();
        let resp = raw::post_form(
            h.addr,
            "/_auth/logout",
            &cookie,
            "",
            &raw::form_body(&[("csrf", &csrf)]),
        )
        .await;
        assert_eq!(resp.status, 303);
        assert_eq!(
            raw::set_cookie(&resp, "gw_session").as_deref(),
            Some(""),
            "{store}: cleared"
        );
        assert_eq!(
            as_cookie(&h, &cookie).await,
            (401, None),
            "{store}: replayed after logout"
        );
        // the replayed cookie cannot log out or read whoami either
        let ex = raw::send(
            h.addr,
            &raw::get("/_auth/whoami", &format!("Cookie: {cookie}\r\n")),
        )
        .await;
        assert_eq!(ex.status(), 401, "{store}");
    }
}

#[tokio::test]
async fn switching_users_in_one_browser_gives_a_fresh_session() {
    for store in STORES {
        let h = Harness::start_with(&config(store, "false")).await;
        let alice = session_of(&raw::login_raw(h.addr, "alice", "alice-pw", "/", "").await);
        let resp =
            raw::login_raw(h.addr, "bob", "bob-pw", "/", &format!("gw_session={alice}")).await;
        assert_eq!(resp.status, 303);
        let bob = session_of(&resp);
        assert_ne!(bob, alice);
        assert_eq!(
            as_cookie(&h, &format!("gw_session={bob}")).await,
            (200, Some("bob".into())),
            "{store}"
        );
        // alice's old session was ended by the new login in this browser
        assert_eq!(
            as_cookie(&h, &format!("gw_session={alice}")).await,
            (401, None),
            "{store}"
        );
        // a failed login with a live session leaves it (no downgrade, no new cookie)
        let resp =
            raw::login_raw(h.addr, "alice", "wrong", "/", &format!("gw_session={bob}")).await;
        assert_eq!(resp.status, 401);
        assert!(raw::set_cookie(&resp, "gw_session").is_none_or(|v| v.is_empty() || v == bob));
    }
}

#[tokio::test]
async fn login_csrf_missing_or_wrong_is_refused() {
    let h = Harness::start_with(&config("memory", "false")).await;
    let form = raw::fetch_login_form(h.addr, "", "").await;
    let other = raw::fetch_login_form(h.addr, "", "").await;
    let body = |csrf: Option<&str>| {
        let mut f = vec![
            ("username", "alice"),
            ("password", "alice-pw"),
            ("next", "/"),
        ];
        if let Some(c) = csrf {
            f.push(("csrf", c));
        }
        raw::form_body(&f)
    };
    let cases: Vec<(String, String)> = vec![
        (String::new(), body(Some(&form.csrf))),        // no cookie
        (form.csrf_cookie.clone(), body(None)),         // no token
        (form.csrf_cookie.clone(), body(Some(""))),     // empty token
        (form.csrf_cookie.clone(), body(Some("AAAA"))), // garbage token
        (form.csrf_cookie.clone(), body(Some(&other.csrf))), // another pair's token
        (other.csrf_cookie.clone(), body(Some(&form.csrf))), // another pair's cookie
        ("gw_session_csrf=".into(), body(Some(&form.csrf))), // empty cookie
        (format!("{}x", form.csrf_cookie), body(Some(&form.csrf))), // tampered cookie
    ];
    for (cookie, body) in cases {
        let resp = raw::post_form(h.addr, "/_auth/login", &cookie, "", &body).await;
        assert!(
            resp.status == 403 || resp.status == 400,
            "cookie {cookie:?}: {}",
            resp.status
        );
        assert!(
            raw::set_cookie(&resp, "gw_session").is_none_or(|v| v.is_empty()),
            "session set without CSRF"
        );
    }
    // the right pair still works
    let resp = raw::post_form(
        h.addr,
        "/_auth/login",
        &form.csrf_cookie,
        "",
        &body(Some(&form.csrf)),
    )
    .await;
    assert_eq!(resp.status, 303);
}

#[tokio::test]
async fn logout_csrf_missing_or_wrong_is_refused() {
    let h = Harness::start_with(&config("memory", "false")).await;
    let alice = format!(
        "gw_session={}",
        session_of(&raw::login_raw(h.addr, "alice", "alice-pw", "/", "").await)
    );
    let bob = format!(
        "gw_session={}",
        session_of(&raw::login_raw(h.addr, "bob", "bob-pw", "/", "").await)
    );
    let page = raw::send(
        h.addr,
        &raw::get("/_auth/logout", &format!("Cookie: {bob}\r\n")),
    )
    .await
    .first();
    let bob_token = support::hidden_field(&page.text(), "csrf").unwrap();
    let login_form = raw::fetch_login_form(h.addr, "", "").await;
    for body in [
        String::new(),
        raw::form_body(&[("csrf", "")]),
        raw::form_body(&[("csrf", "AAAA")]),
        raw::form_body(&[("csrf", &bob_token)]),
        raw::form_body(&[("csrf", &login_form.csrf)]),
    ] {
        let resp = raw::post_form(h.addr, "/_auth/logout", &alice, "", &body).await;
        assert_eq!(resp.status, 403, "{body}");
        assert!(
            raw::set_cookie(&resp, "gw_session").is_none(),
            "cookie cleared without CSRF"
        );
        assert_eq!(
            as_cookie(&h, &alice).await,
            (200, Some("alice".into())),
            "logged out without CSRF"
        );
    }
    // a GET never logs anyone out
    let _ = raw::send(
        h.addr,
        &raw::get(
            &format!("/_auth/logout?csrf={bob_token}"),
            &format!("Cookie: {bob}\r\n"),
        ),
    )
    .await;
    assert_eq!(as_cookie(&h, &bob).await, (200, Some("bob".into())));
}

/// Login CSRF: the attacker fetches a login form (a valid CSRF pair of their own), plants its
/// unprefixed cookie in the victim's browser (a sibling subdomain of a plain-HTTP deployment
/// can), and has the victim's browser post the attacker's credentials from their site. The
/// browser says where the form came from: `Origin` (or `Referer` without it) must be our own
/// origin or an `allowed_redirect_hosts` one; `null` is refused. Neither header (curl, scripts)
/// is let through to the token check.
#[tokio::test]
async fn login_and_logout_from_another_site_are_refused() {
    let yaml = config("memory", "false").replace(
        "routes:",
        "login:\n  allowed_redirect_hosts: [app.example.org]\nroutes:",
    );
    let h = Harness::start_with(&yaml).await;
    let addr = h.addr;
    let login = move |extra: &'static str| async move {
        let form = raw::fetch_login_form(addr, "", "").await;
        let body = raw::form_body(&[
            ("username", "eve"),
            ("password", "eve-pw"),
            ("csrf", &form.csrf),
            ("next", "/"),
        ]);
        raw::post_form(addr, "/_auth/login", &form.csrf_cookie, extra, &body).await
    };
    for extra in [
        "Origin: https://evil.example\r\n",
        "Origin: http://127.0.0.1:8080.evil.example\r\n",
        "Origin: null\r\n",
        "Origin: https://127.0.0.1:8080\r\n",
        "Origin: http://127.0.0.1:8080\r\nOrigin: https://evil.example\r\n",
        "Origin: https://evil.example\r\nReferer: http://127.0.0.1:8080/_auth/login\r\n",
        "Referer: https://evil.example/http://127.0.0.1:8080/\r\n",
        "Referer: http://127.0.0.1:9999/_auth/login\r\n",
    ] {
        let resp = login(extra).await;
        assert_eq!(resp.status, 403, "{extra:?}");
        assert!(
            raw::set_cookie(&resp, "gw_session").is_none_or(|v| v.is_empty()),
            "session created from {extra:?}"
        );
        assert!(resp.text().contains("another site"), "{extra:?}");
    }
    for extra in [
        "Origin: http://127.0.0.1:8080\r\n",
        "Origin: http://app.example.org\r\n",
        "Referer: http://127.0.0.1:8080/_auth/login?next=/\r\n",
        "",
    ] {
        let resp = login(extra).await;
        assert_eq!(resp.status, 303, "{extra:?}");
        assert!(raw::set_cookie(&resp, "gw_session").is_some_and(|v| !v.is_empty()));
    }

    // Logout: a valid session and token, posted from another site, ends nothing.
    let alice = format!(
        "gw_session={}",
        session_of(&raw::login_raw(h.addr, "alice", "alice-pw", "/", "").await)
    );
    let page = raw::send(
        h.addr,
        &raw::get("/_auth/logout", &format!("Cookie: {alice}\r\n")),
    )
    .await
    .first();
    let token = support::hidden_field(&page.text(), "csrf").unwrap();
    let body = raw::form_body(&[("csrf", &token)]);
    for extra in ["Origin: https://evil.example\r\n", "Origin: null\r\n"] {
        let resp = raw::post_form(h.addr, "/_auth/logout", &alice, extra, &body).await;
        assert_eq!(resp.status, 403, "{extra:?}");
        assert_eq!(as_cookie(&h, &alice).await, (200, Some("alice".into())));
    }
    let resp = raw::post_form(
        h.addr,
        "/_auth/logout",
        &alice,
        "Origin: http://127.0.0.1:8080\r\n",
        &body,
    )
    .await;
    assert_eq!(resp.status, 303);
    assert_eq!(as_cookie(&h, &alice).await.1, None);
}

fn attrs(set_cookie: &str) -> Vec<String> {
    set_cookie
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
        .collect()
}

#[tokio::test]
async fn cookie_flags() {
    for (secure_cfg, want_secure) in [("false", false), ("true", true)] {
        let h = Harness::start_with(&config("memory", secure_cfg)).await;
        let form = raw::send(h.addr, &raw::get("/_auth/login", ""))
            .await
            .first();
        let resp = raw::login_raw(h.addr, "alice", "alice-pw", "/", "").await;
        let mut checked = 0;
        for r in [&form, &resp] {
            for (name, value, sc) in raw::set_cookies(r) {
                let a = attrs(&sc);
                assert!(a.contains(&"httponly".into()), "{sc}");
                assert!(a.contains(&"samesite=lax".into()), "{sc}");
                assert!(a.contains(&"path=/".into()), "{sc}");
                assert!(!a.iter().any(|x| x.starts_with("domain")), "{sc}");
                assert_eq!(a.contains(&"secure".into()), want_secure, "{sc}");
                if name == "gw_session" && !value.is_empty() {
                    assert!(
                        a.iter()
                            .any(|x| x.starts_with("max-age=") || x.starts_with("expires=")),
                        "{sc}"
                    );
                }
                checked += 1;
            }
        }
        assert!(checked >= 3, "{checked}");
        // the gateway's cookies never reach the upstream; others do
        let session = session_of(&resp);
        h.upstream.clear();
        let _ = raw::send(
            h.addr,
            &raw::get(
                "/app",
                &format!("Cookie: a=1; gw_session={session}; gw_session_csrf=x; b=2\r\n"),
            ),
        )
        .await;
        let seen = h.upstream.last().unwrap();
        let c = seen.all("cookie").join("; ");
        assert!(c.contains("a=1") && c.contains("b=2"), "{c}");
        assert!(!c.contains("gw_session"), "{c}");
        // split over several Cookie headers, with odd spacing
        h.upstream.clear();
        let st = raw::send(
            h.addr,
            &raw::get(
                "/app",
                &format!("Cookie: a=1\r\nCookie:  gw_session = {session} ;b=2\r\nCookie: gw_session_csrf=x\r\nCookie: gw_session={session}\r\n"),
            ),
        )
        .await
        .status();
        assert_eq!(st, 200);
        let seen = h.upstream.last().unwrap();
        let c = seen.all("cookie").join("; ");
        assert!(c.contains("a=1") && c.contains("b=2"), "{c}");
        assert!(!c.contains("gw_session") && !c.contains(&session), "{c}");
    }
}

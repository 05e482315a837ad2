//! Attack class 5b: cookie tossing, over raw TCP. A sibling subdomain (or any host of the parent
//! domain) can set a cookie named like the gateway's for the parent domain, with a longer path
//! so browsers send it first: to fix a session (log the victim into the attacker's account) or
//! to break the login form's CSRF check. Defences: Secure cookies are named `__Host-...` by
//! default (browsers refuse such a cookie from another host, with a `Domain`, or without
//! `Secure`), and when a request carries several cookies of the session's name the gateway
//! never picks one blindly.

use crate::support;

use support::Harness;
use support::raw::{self, RawResponse};

fn config(store: &str, secure: &str, cookie_name: Option<&str>) -> String {
    let name = cookie_name
        .map(|n| format!("  cookie_name: {n}\n"))
        .unwrap_or_default();
    format!(
        r#"
server:
  public_url: "http://127.0.0.1:8080"
upstream:
  url: "http://{{upstream}}"
session:
  store: {store}
  secure: {secure}
  secret: "0123456789abcdef0123456789abcdef-test"
{name}routes:
  - match: {{ path: / }}
    access: authenticated
"#
    )
}

/// Status and the user the upstream saw, for `GET /app` with the given header lines.
async fn as_headers(h: &Harness, headers: &str) -> (u16, Option<String>) {
    h.upstream.clear();
    let ex = raw::send(h.addr, &raw::get("/app", headers)).await;
    let user = h.upstream.last().and_then(|r| r.get("x-remote-user"));
    (ex.status(), user)
}

async fn as_cookie(h: &Harness, cookie: &str) -> (u16, Option<String>) {
    as_headers(h, &format!("Cookie: {cookie}\r\n")).await
}

fn cookie_named(resp: &RawResponse, name: &str) -> (String, String) {
    let (_, value, set_cookie) = raw::set_cookies(resp)
        .into_iter()
        .find(|(n, v, _)| n == name && !v.is_empty())
        .unwrap_or_else(|| panic!("no `{name}` cookie set: {:?}", resp.headers));
    (value, set_cookie.to_ascii_lowercase())
}

async fn login(h: &Harness, user: &str, password: &str, name: &str) -> String {
    let resp = raw::login_raw(h.addr, user, password, "/", "").await;
    assert_eq!(resp.status, 303, "{user} logs in: {}", resp.text());
    cookie_named(&resp, name).0
}

#[tokio::test]
async fn secure_cookies_are_host_prefixed_by_default() {
    // (secure, configured name, expected session cookie name, Secure flag)
    for (secure, name, want, want_secure) in [
        ("true", None, "__Host-gw_session", true),
        ("false", None, "gw_session", false),
        // `auto` on a plain-HTTP local public_url (the quickstart): not Secure, no prefix
        ("auto", None, "gw_session", false),
        ("true", Some("app_sid"), "app_sid", true),
        ("true", Some("__Secure-sid"), "__Secure-sid", true),
    ] {
        let h = Harness::start_with(&config("memory", secure, name)).await;
        let form = raw::send(h.addr, &raw::get("/_auth/login", ""))
            .await
            .first();
        let (_, csrf) = cookie_named(&form, &format!("{want}_csrf"));
        let resp = raw::login_raw(h.addr, "alice", "alice-pw", "/", "").await;
        assert_eq!(resp.status, 303, "{}", resp.text());
        let (value, session) = cookie_named(&resp, want);
        for sc in [&csrf, &session] {
            let attrs: Vec<&str> = sc.split(';').skip(1).map(str::trim).collect();
            assert!(attrs.contains(&"path=/"), "{sc}");
            assert!(!attrs.iter().any(|a| a.starts_with("domain")), "{sc}");
            assert_eq!(attrs.contains(&"secure"), want_secure, "{sc}");
        }
        assert_eq!(
            as_cookie(&h, &format!("{want}={value}")).await,
            (200, Some("alice".into())),
            "{want}"
        );
        if want != "gw_session" {
            // The genuine value under the unprefixed name (what a tossed cookie could use) is
            // not the session cookie.
            assert_eq!(
                as_cookie(&h, &format!("gw_session={value}")).await,
                (401, None),
                "{want}"
            );
        }
    }
}

#[tokio::test]
async fn a_tossed_session_cookie_is_never_picked_over_the_genuine_one() {
    for store in ["memory", "cookie"] {
        let h = Harness::start_with(&config(store, "false", None)).await;
        let alice = login(&h, "alice", "alice-pw", "gw_session").await;
        // the attacker's own, valid session, tossed into alice's browser
        let eve = login(&h, "eve", "eve-pw", "gw_session").await;
        let ok = (200, Some("alice".to_string()));
        let refused = (400, None);
        for (cookie, want) in [
            (format!("gw_session={alice}"), &ok),
            // two live sessions: which is genuine cannot be told, so neither is used
            (format!("gw_session={eve}; gw_session={alice}"), &refused),
            (format!("gw_session={alice}; gw_session={eve}"), &refused),
            // values that load nothing (forged, stale) are ignored, wherever they come
            (format!("gw_session=forged; gw_session={alice}"), &ok),
            (format!("gw_session={alice}; gw_session=forged"), &ok),
            (format!("gw_session={alice}x; gw_session={alice}"), &ok),
            (format!("gw_session={alice}; gw_session={alice}"), &ok),
            // a non-ASCII value (sent as raw UTF-8 bytes) does not hide the genuine cookie
            (format!("gw_session=tossé; gw_session={alice}"), &ok),
            // more values than a browser would send: refused, not tried one by one
            (
                format!(
                    "gw_session=a; gw_session=b; gw_session=c; gw_session=d; gw_session={alice}"
                ),
                &refused,
            ),
        ] {
            assert_eq!(&as_cookie(&h, &cookie).await, want, "{store}: {cookie}");
        }
        // split over two Cookie headers (HTTP/1.1 clients may), in either order
        for (first, second) in [(&eve, &alice), (&alice, &eve)] {
            let got = as_headers(
                &h,
                &format!("Cookie: gw_session={first}\r\nCookie: a=1; gw_session={second}\r\n"),
            )
            .await;
            assert_eq!(got, refused, "{store}: two Cookie headers");
        }
    }
}

#[tokio::test]
async fn a_tossed_csrf_cookie_neither_breaks_nor_forges_the_login() {
    let h = Harness::start_with(&config("memory", "false", None)).await;
    let victim = raw::fetch_login_form(h.addr, "", "").await;
    let attacker = raw::fetch_login_form(h.addr, "", "").await;
    let body = |token: &str| {
        raw::form_body(&[
            ("username", "alice"),
            ("password", "alice-pw"),
            ("csrf", token),
            ("next", "/"),
        ])
    };
    // a garbage cookie tossed ahead of the genuine one does not lock the user out
    let tossed = format!("gw_session_csrf=garbage; {}", victim.csrf_cookie);
    let resp = raw::post_form(h.addr, "/_auth/login", &tossed, "", &body(&victim.csrf)).await;
    assert_eq!(resp.status, 303, "{}", resp.text());
    // the attacker's own cookie does not pair with the victim's form token
    let resp = raw::post_form(
        h.addr,
        "/_auth/login",
        &attacker.csrf_cookie,
        "",
        &body(&victim.csrf),
    )
    .await;
    assert_eq!(resp.status, 403, "{}", resp.text());
}

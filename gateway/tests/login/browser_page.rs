//! The built-in login page in a real headless Chromium: labelled, keyboard-focusable, styled
//! under its own Content-Security-Policy, and submitting the fields the gateway parses.

use crate::browser;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use browser::Browser;
use bytes::Bytes;
use fantoccini::Locator;
use fantoccini::key::Key;
use gateway::__test::{
    LoginPage, builtin_csp, parse_login_form, render_error, render_forbidden, render_logged_out,
    render_login, render_logout_confirm,
};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

const CSRF: &str = "csrf-token-123";
const NEXT: &str = "/app/reports?year=2026&q=a+b";

fn login_html(error: Option<&str>, username: &str) -> String {
    render_login(&LoginPage {
        title: "Sign in",
        action: "/login",
        next: NEXT,
        csrf_token: CSRF,
        error,
        username,
        sso: &[],
        password_form: true,
    })
}

async fn handle(
    request: Request<Incoming>,
    posted: mpsc::UnboundedSender<Vec<u8>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let html = match (&parts.method, parts.uri.path()) {
        (&Method::GET, "/") => login_html(None, ""),
        (&Method::GET, "/failed") => login_html(Some("Wrong username or password."), "alice"),
        (&Method::GET, "/forbidden") => render_forbidden("alice", "/logout"),
        (&Method::GET, "/logout") => render_logout_confirm("/logout", CSRF, Some("alice")),
        (&Method::GET, "/logged-out") => render_logged_out("/"),
        (&Method::GET, "/error") => render_error(
            StatusCode::BAD_GATEWAY,
            "The application is not answering. Try again in a moment.",
        ),
        (&Method::POST, "/login") => {
            let body = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let _ = posted.send(body.to_vec());
            "<!doctype html><html lang=\"en\"><title>Received</title><h1>Received</h1></html>"
                .to_string()
        }
        _ => {
            let mut response = Response::new(Full::new(Bytes::from_static(b"not found")));
            *response.status_mut() = StatusCode::NOT_FOUND;
            return Ok(response);
        }
    };
    let mut response = Response::new(Full::new(Bytes::from(html)));
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        http::header::CONTENT_SECURITY_POLICY,
        http::HeaderValue::from_static(builtin_csp()),
    );
    Ok(response)
}

/// Serves the page on 127.0.0.1:0; returns its address, the posted bodies, and the server task.
async fn serve() -> (
    SocketAddr,
    mpsc::UnboundedReceiver<Vec<u8>>,
    tokio::task::JoinHandle<()>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let mut connections = JoinSet::new();
        while let Ok((stream, _)) = listener.accept().await {
            let tx = tx.clone();
            connections.spawn(async move {
                let service = service_fn(move |request| handle(request, tx.clone()));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, rx, task)
}

async fn active_id(browser: &Browser) -> Option<String> {
    browser
        .client()
        .active_element()
        .await
        .expect("active element")
        .attr("id")
        .await
        .expect("id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_page_in_chromium() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let (addr, mut posted, server) = serve().await;
    let client = browser.client();
    client
        .goto(&format!("http://{addr}/"))
        .await
        .expect("open page");
    assert_eq!(client.title().await.expect("title"), "Sign in");

    // Labels are bound to their inputs (what a screen reader announces).
    let labels = client
        .execute(
            "return ['username','password'].map(id => {\
               const el = document.getElementById(id);\
               return [el.labels.length, el.labels[0].textContent.trim(), el.autocomplete];\
             });",
            vec![],
        )
        .await
        .expect("labels");
    assert_eq!(
        labels,
        serde_json::json!([
            [1, "Username", "username"],
            [1, "Password", "current-password"]
        ])
    );
    // The error region is present for announcements but shows nothing without an error.
    let alert = client
        .find(Locator::Css("[role=alert]"))
        .await
        .expect("alert region");
    assert!(!alert.is_displayed().await.expect("displayed"));

    // The stylesheet applied, so the CSP hash matches: the button is the primary colour, not
    // the browser's grey default.
    let button = client
        .find(Locator::Css("button[type=submit]"))
        .await
        .expect("button");
    assert_eq!(
        button.css_value("background-color").await.expect("css"),
        "rgba(47, 91, 234, 1)"
    );

    // Keyboard: the username has focus on load; Tab moves to the password, then the button.
    assert_eq!(active_id(&browser).await.as_deref(), Some("username"));
    let username = client
        .find(Locator::Id("username"))
        .await
        .expect("username");
    username.send_keys("alice").await.expect("type");
    username
        .send_keys(&String::from(char::from(Key::Tab)))
        .await
        .expect("tab");
    assert_eq!(active_id(&browser).await.as_deref(), Some("password"));
    let focus_ring = client
        .execute(
            "return getComputedStyle(document.activeElement).outlineStyle;",
            vec![],
        )
        .await
        .expect("outline");
    assert_eq!(
        focus_ring,
        serde_json::json!("solid"),
        "visible keyboard focus"
    );
    let password = client
        .find(Locator::Id("password"))
        .await
        .expect("password");
    password.send_keys("s3cret &=+ é").await.expect("type");
    browser.screenshot("login").await;

    // Enter submits without any script; the POST carries every field.
    password
        .send_keys(&String::from(char::from(Key::Enter)))
        .await
        .expect("submit");
    let body = tokio::time::timeout(Duration::from_secs(10), posted.recv())
        .await
        .expect("POST within 10s")
        .expect("body");
    let form = parse_login_form(&body).expect("the gateway parses what Chromium sends");
    assert_eq!(form.username, "alice");
    assert_eq!(form.password(), "s3cret &=+ é");
    assert_eq!(form.csrf, CSRF);
    assert_eq!(form.next.as_deref(), Some(NEXT));
    client
        .wait()
        .for_element(Locator::XPath("//h1[text()='Received']"))
        .await
        .expect("landed on the response");

    // After a failure: the message is shown in the alert region, the username is re-filled.
    client
        .goto(&format!("http://{addr}/failed"))
        .await
        .expect("open failed page");
    let alert = client
        .find(Locator::Css("[role=alert]"))
        .await
        .expect("alert region");
    assert!(alert.is_displayed().await.expect("displayed"));
    assert_eq!(
        alert.text().await.expect("text"),
        "Wrong username or password."
    );
    let username = client
        .find(Locator::Id("username"))
        .await
        .expect("username");
    assert_eq!(
        username.prop("value").await.expect("value").as_deref(),
        Some("alice")
    );
    browser.screenshot("login-error").await;

    server.abort();
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_page_on_a_phone_in_dark_mode() {
    let Some(browser) = Browser::start_with(&["--window-size=390,844", "--force-dark-mode"]).await
    else {
        return;
    };
    let (addr, _posted, server) = serve().await;
    let client = browser.client();
    client
        .goto(&format!("http://{addr}/failed"))
        .await
        .expect("open");
    let layout = client
        .execute(
            "const main = document.querySelector('main').getBoundingClientRect();\
             return [main.width <= window.innerWidth, document.documentElement.scrollWidth <= window.innerWidth,\
                     matchMedia('(prefers-color-scheme: dark)').matches];",
            vec![],
        )
        .await
        .expect("layout");
    assert_eq!(
        layout,
        serde_json::json!([true, true, true]),
        "fits the phone width without horizontal scrolling, dark scheme"
    );
    let background = client
        .find(Locator::Css("main"))
        .await
        .expect("main")
        .css_value("background-color")
        .await
        .expect("css");
    assert_eq!(background, "rgba(23, 28, 38, 1)", "dark card colour");
    browser.screenshot("login-phone-dark").await;
    server.abort();
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_pages_in_chromium() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let (addr, _posted, server) = serve().await;
    let client = browser.client();
    for (path, heading, shot) in [
        ("/forbidden", "Access denied", "forbidden"),
        ("/logout", "Sign out?", "logout-confirm"),
        ("/logged-out", "Signed out", "logged-out"),
        ("/error", "502 Bad Gateway", "error"),
    ] {
        client
            .goto(&format!("http://{addr}{path}"))
            .await
            .expect("open");
        let h1 = client.find(Locator::Css("h1")).await.expect("h1");
        assert_eq!(h1.text().await.expect("text"), heading);
        let card = client
            .find(Locator::Css("main"))
            .await
            .expect("main")
            .css_value("border-top-left-radius")
            .await
            .expect("css");
        assert_eq!(card, "14px", "{path}: styled under the CSP");
        browser.screenshot(shot).await;
    }
    // The confirm page's button posts the CSRF token (no script needed).
    client
        .goto(&format!("http://{addr}/logout"))
        .await
        .expect("open");
    let token = client
        .find(Locator::Css("form[method=post] input[name=csrf]"))
        .await
        .expect("csrf field")
        .prop("value")
        .await
        .expect("value");
    assert_eq!(token.as_deref(), Some(CSRF));
    server.abort();
    browser.close().await;
}

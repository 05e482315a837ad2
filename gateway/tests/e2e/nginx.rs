//! End-to-end: a real nginx in front, using the gateway's `check` endpoint through
//! `auth_request` (Debian package `nginx`). Skips loudly when nginx is missing, unless `CI=true`.
//! The README's nginx recipe (browsers sent to the login page and back) runs in headless
//! Chromium.

use crate::browser;
use crate::support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::{Harness, basic, client};

struct Nginx {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn nginx_binary() -> Option<&'static str> {
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
}

/// A port the kernel just handed out (nginx cannot report an ephemeral port).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_nginx(
    gateway: std::net::SocketAddr,
    upstream: std::net::SocketAddr,
) -> Option<Nginx> {
    let locations = format!(
        r#"
    location = /_auth/check {{
      internal;
      proxy_pass http://{gateway};
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URI $request_uri;
      proxy_set_header X-Forwarded-Method $request_method;
    }}
    location / {{
      auth_request /_auth/check;
      auth_request_set $gw_user $upstream_http_x_remote_user;
      auth_request_set $gw_groups $upstream_http_x_remote_groups;
      proxy_set_header X-Remote-User $gw_user;
      proxy_set_header X-Remote-Groups $gw_groups;
      proxy_pass http://{upstream};
    }}"#
    );
    start_nginx_on(free_port(), &locations).await
}

/// nginx on `port` with `locations` as its one server's body.
async fn start_nginx_on(port: u16, locations: &str) -> Option<Nginx> {
    let Some(bin) = nginx_binary() else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("nginx is not installed (apt-get install -y nginx)");
        }
        eprintln!("!!! SKIPPING: nginx is not installed (apt-get install -y nginx)");
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let conf = format!(
        r#"
daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  server {{
    listen 127.0.0.1:{port};
{locations}
  }}
}}
"#
    );
    let conf_path = dir.path().join("nginx.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let child = Command::new(bin)
        .arg("-c")
        .arg(&conf_path)
        .arg("-p")
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("nginx starts");
    let nginx = Nginx {
        child,
        port,
        _dir: dir,
    };
    for _ in 0..50 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Some(nginx);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("nginx did not start listening on {port}");
}

#[tokio::test]
async fn nginx_auth_request_uses_check() {
    let yaml = support::BASE_CONFIG.replace(
        "  public_url:",
        "  trusted_proxies: [127.0.0.1/32]\n  public_url:",
    );
    let h = Harness::start_with(&yaml).await;
    let Some(nginx) = start_nginx(h.addr, h.upstream.addr).await else {
        return;
    };
    let url = |p: &str| format!("http://127.0.0.1:{}{p}", nginx.port);
    let c = client();

    let anon = c.get(url("/app/x")).send().await.unwrap();
    assert_eq!(anon.status(), 401);
    assert!(h.upstream.seen().is_empty());

    let ok = c
        .get(url("/app/x?y=1"))
        .header("authorization", basic("alice", "alice-pw"))
        .header("x-remote-user", "admin")
        .header("x-original-uri", "/static/x")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let seen = h.upstream.last().unwrap();
    assert_eq!(seen.path, "/app/x?y=1");
    assert_eq!(seen.all("x-remote-user"), vec!["alice".to_string()]);
    assert_eq!(seen.get("x-remote-groups").as_deref(), Some("staff"));

    // The client's own X-Original-URI does not pick the checked path: nginx sets it.
    h.upstream.clear();
    let forbidden = c
        .get(url("/admin/x"))
        .header("authorization", basic("alice", "alice-pw"))
        .header("x-original-uri", "/static/x")
        .send()
        .await
        .unwrap();
    assert_eq!(forbidden.status(), 403);
    let public = c.get(url("/static/app.css")).send().await.unwrap();
    assert_eq!(public.status(), 200);
    assert!(
        h.upstream
            .seen()
            .iter()
            .all(|r| !r.path.starts_with("/admin"))
    );
}

/// The README's nginx recipe ("nginx forward-auth for browsers"), as written there: `check`
/// decides, a 401 sends the browser to the login page through `error_page`, the login prefix is
/// proxied to the gateway, and the app receives the identity and the signed assertion.
fn recipe_locations(gateway: std::net::SocketAddr, upstream: std::net::SocketAddr) -> String {
    format!(
        r#"
    # The gateway's own pages (login, logout, jwks.json) under its prefix.
    location /_auth/ {{
      proxy_pass http://{gateway};
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Proto $scheme;
    }}
    location = /_auth/check {{
      internal;
      proxy_pass http://{gateway};
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URI $request_uri;
      proxy_set_header X-Forwarded-Method $request_method;
      proxy_set_header X-Forwarded-For $remote_addr;
    }}
    # A 401 from check: to the login page. X-Auth-Login is the login URL with `next` already
    # percent-encoded (a raw $request_uri would lose everything after its first `&`).
    location @login {{
      return 302 $gw_login;
    }}
    location / {{
      auth_request /_auth/check;
      auth_request_set $gw_login $upstream_http_x_auth_login;
      error_page 401 = @login;
      auth_request_set $gw_user $upstream_http_x_remote_user;
      auth_request_set $gw_groups $upstream_http_x_remote_groups;
      auth_request_set $gw_assertion $upstream_http_x_authgate_assertion;
      proxy_set_header X-Remote-User $gw_user;
      proxy_set_header X-Remote-Groups $gw_groups;
      proxy_set_header X-Authgate-Assertion $gw_assertion;
      proxy_pass http://{upstream};
    }}"#
    )
}

/// Waits until the browser's path is `path` (navigations after a submit are asynchronous).
async fn wait_for_path(client: &fantoccini::Client, path: &str) -> url::Url {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let url = client.current_url().await.expect("current url");
        if url.path() == path {
            return url;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "expected to reach {path}, still at {url}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_recipe_sends_browsers_to_login_and_back_with_identity() {
    use fantoccini::Locator;
    use fantoccini::key::Key;

    let Some(browser) = browser::Browser::start().await else {
        return;
    };
    let port = free_port();
    // `public_url` is nginx's origin: the browser's login POST comes from it.
    let yaml = support::BASE_CONFIG
        .replace(
            "  public_url: \"http://127.0.0.1:8080\"",
            &format!(
                "  trusted_proxies: [127.0.0.1/32]\n  public_url: \"http://127.0.0.1:{port}\""
            ),
        )
        .replace("session:", "identity_headers:\n  assertion: {}\nsession:");
    let h = Harness::start_with(&yaml).await;
    let Some(_nginx) = start_nginx_on(port, &recipe_locations(h.addr, h.upstream.addr)).await
    else {
        return;
    };
    let client = browser.client();
    let wanted = "/app/reports?year=2026&q=a+b";
    client
        .goto(&format!("http://127.0.0.1:{port}{wanted}"))
        .await
        .expect("open protected page");
    let login = wait_for_path(client, "/_auth/login").await;
    assert_eq!(
        login.port(),
        Some(port),
        "the login page is served through nginx"
    );
    assert_eq!(
        login
            .query_pairs()
            .find(|(k, _)| k == "next")
            .map(|(_, v)| v.into_owned())
            .as_deref(),
        Some(wanted)
    );
    assert!(h.upstream.seen().is_empty(), "nothing reached the app yet");
    client
        .find(Locator::Id("username"))
        .await
        .expect("username")
        .send_keys("alice")
        .await
        .expect("type");
    let password = client
        .find(Locator::Id("password"))
        .await
        .expect("password");
    password.send_keys("alice-pw").await.expect("type");
    password
        .send_keys(&String::from(char::from(Key::Enter)))
        .await
        .expect("submit");
    let landed = wait_for_path(client, "/app/reports").await;
    assert_eq!(landed.port(), Some(port));
    assert_eq!(landed.query(), Some("year=2026&q=a+b"));

    // (The browser asks for /favicon.ico too, with the session: the app may see that last.)
    let seen = h
        .upstream
        .seen()
        .into_iter()
        .find(|r| r.path == wanted)
        .expect("the app got the original request");
    assert_eq!(seen.all("x-remote-user"), vec!["alice".to_string()]);
    assert_eq!(seen.get("x-remote-groups").as_deref(), Some("staff"));
    // The assertion nginx passed verifies against the keys nginx serves from the prefix.
    let token = seen.get("x-authgate-assertion").expect("the assertion");
    let jwks: jsonwebtoken::jwk::JwkSet =
        client_json(&format!("http://127.0.0.1:{port}/_auth/jwks.json")).await;
    let kid = jsonwebtoken::decode_header(&token).unwrap().kid.unwrap();
    let jwk = jwks.find(&kid).expect("the signing key is published");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_audience(&[format!("http://{}", h.upstream.addr)]);
    validation.set_issuer(&[format!("http://127.0.0.1:{port}")]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(
        &token,
        &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(),
        &validation,
    )
    .expect("the assertion verifies")
    .claims;
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["groups"], serde_json::json!(["staff"]));
    browser.close().await;
}

async fn client_json<T: serde::de::DeserializeOwned>(url: &str) -> T {
    let resp = client().get(url).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{url}");
    resp.json().await.unwrap()
}

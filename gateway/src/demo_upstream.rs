//! A small stand-in for the legacy app behind the gateway (`upstream: {demo: true}`): it shows
//! what the app receives, so an operator can see the identity headers before pointing the
//! gateway at the real thing.
//!
//! Routes: `/static/...` (public content), `/api/whoami` (the identity headers as JSON), and any
//! other path: an HTML page with the identity headers, the `X-Forwarded-*` headers and, folded
//! away, every other header. The page's "Sign out" button links to `GET {prefix}/logout`, which
//! the gateway answers with a confirmation form carrying its CSRF token (the demo cannot know
//! that token, so it never posts the logout itself).

use std::convert::Infallible;
use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use percent_encoding::percent_decode_str;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

/// The gateway prefix the demo's logout link assumes when started with [`spawn`].
pub const DEFAULT_AUTH_PREFIX: &str = "/_auth";

/// The identity headers the gateway sets by default (`identity_headers:`), in display order.
const IDENTITY_HEADERS: [(&str, &str); 5] = [
    ("x-remote-user", "User"),
    ("x-remote-email", "Email"),
    ("x-remote-name", "Name"),
    ("x-remote-groups", "Groups"),
    ("x-remote-backend", "Backend"),
];

const APP_CSS: &str = "\
:root{color-scheme:light dark;--bg:#f6f7f9;--card:#fff;--text:#1d2330;--muted:#5e6778;\
--border:#d8dde6;--accent:#0f766e;--code:#eef1f5}\
@media (prefers-color-scheme:dark){:root{--bg:#101318;--card:#181c24;--text:#e4e7ec;\
--muted:#9aa3b2;--border:#2c3340;--accent:#2dd4bf;--code:#11151b}}\
*{box-sizing:border-box}body{margin:0;background:var(--bg);color:var(--text);\
font:15px/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif}\
header{display:flex;align-items:center;justify-content:space-between;gap:1rem;\
padding:.9rem 1.5rem;background:var(--card);border-bottom:1px solid var(--border)}\
header strong{font-size:1.05rem}header .tag{color:var(--muted);font-size:.85rem;margin-left:.5rem}\
main{max-width:56rem;margin:2rem auto;padding:0 1.25rem}\
section{background:var(--card);border:1px solid var(--border);border-radius:10px;\
padding:1.25rem 1.5rem;margin-bottom:1.25rem}\
h1{font-size:1.4rem;margin:0 0 .25rem}h2{font-size:1.05rem;margin:0 0 .75rem}\
p{margin:.25rem 0 .75rem;color:var(--muted)}\
table{width:100%;border-collapse:collapse}th,td{text-align:left;padding:.45rem .5rem;\
border-top:1px solid var(--border);vertical-align:top}th{width:18rem;font-weight:600}\
th code{white-space:nowrap}\
td code,th code{background:var(--code);padding:.1rem .35rem;border-radius:4px;\
font-size:.85rem;overflow-wrap:anywhere}.none{color:var(--muted);font-style:italic}\
summary{cursor:pointer;font-weight:600}a.button{display:inline-block;padding:.45rem .9rem;\
border-radius:8px;border:1px solid var(--border);color:var(--text);text-decoration:none;\
font-weight:600}a.button:hover{border-color:var(--accent)}\
a:focus-visible,summary:focus-visible{outline:3px solid var(--accent);outline-offset:2px}\
";

/// Starts the demo app on `addr` (use port 0 for any free port) with its logout link pointing at
/// [`DEFAULT_AUTH_PREFIX`]. Returns the bound address and the server task; aborting the task
/// stops the server and every open connection.
pub async fn spawn(addr: SocketAddr) -> io::Result<(SocketAddr, JoinHandle<()>)> {
    spawn_with_prefix(addr, DEFAULT_AUTH_PREFIX).await
}

/// Like [`spawn`], for a gateway whose `login.prefix` is `auth_prefix`.
pub async fn spawn_with_prefix(
    addr: SocketAddr,
    auth_prefix: &str,
) -> io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let prefix: Arc<str> = auth_prefix.trim_end_matches('/').into();
    let task = tokio::spawn(async move {
        // Connections live in this set, so aborting the accept task drops (and aborts) them too.
        let mut connections = JoinSet::new();
        loop {
            let stream = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        tracing::warn!(%error, "demo upstream: accept failed");
                        continue;
                    }
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            };
            let prefix = prefix.clone();
            connections.spawn(async move {
                let service = service_fn(move |request| {
                    let response = handle(request, &prefix);
                    async move { Ok::<_, Infallible>(response) }
                });
                if let Err(error) = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades()
                    .await
                {
                    tracing::debug!(%error, "demo upstream: connection ended with an error");
                }
            });
        }
    });
    Ok((local, task))
}

fn handle(request: Request<Incoming>, prefix: &str) -> Response<Full<Bytes>> {
    let path = request.uri().path();
    if !matches!(*request.method(), Method::GET | Method::HEAD | Method::POST) {
        return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    if let Some(name) = path.strip_prefix("/static/") {
        return static_file(name);
    }
    if path == "/api/whoami" {
        return whoami(request.headers());
    }
    let target = request
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/");
    let page = render_page(request.method(), target, request.headers(), prefix);
    response(StatusCode::OK, "text/html; charset=utf-8", page)
}

fn static_file(name: &str) -> Response<Full<Bytes>> {
    match name {
        "app.css" => response(StatusCode::OK, "text/css; charset=utf-8", APP_CSS.into()),
        "hello.txt" => text(
            StatusCode::OK,
            "Public static content from the demo upstream: no login needed.\n",
        ),
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

fn whoami(headers: &HeaderMap) -> Response<Full<Bytes>> {
    let value = |name: &str| headers.get(name).map(|v| decoded(v.as_bytes()));
    let groups: Vec<String> = value("x-remote-groups")
        .map(|g| {
            g.split(',')
                .map(str::trim)
                .filter(|g| !g.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let extras: serde_json::Map<String, serde_json::Value> = extra_identity(headers)
        .into_iter()
        .map(|(name, value)| (name, serde_json::Value::String(value)))
        .collect();
    let forwarded: serde_json::Map<String, serde_json::Value> = forwarded(headers)
        .into_iter()
        .map(|(name, value)| (name, serde_json::Value::String(value)))
        .collect();
    let body = serde_json::json!({
        "user": value("x-remote-user"),
        "email": value("x-remote-email"),
        "name": value("x-remote-name"),
        "groups": groups,
        "backend": value("x-remote-backend"),
        "extra": extras,
        "forwarded": forwarded,
    });
    response(StatusCode::OK, "application/json", format!("{body:#}\n"))
}

fn render_page(method: &Method, target: &str, headers: &HeaderMap, prefix: &str) -> String {
    let mut identity = String::new();
    for (name, label) in IDENTITY_HEADERS {
        row(
            &mut identity,
            label,
            name,
            headers.get(name).map(|v| v.as_bytes()),
        );
    }
    for (name, value) in extra_identity(headers) {
        row(&mut identity, "Extra", &name, Some(value.as_bytes()));
    }
    let mut forwarding = String::new();
    for (name, value) in forwarded(headers) {
        row(&mut forwarding, "", &name, Some(value.as_bytes()));
    }
    if forwarding.is_empty() {
        forwarding.push_str("<tr><td class=\"none\">No forwarding headers.</td></tr>");
    }
    let mut others = String::new();
    let mut other_count = 0;
    for (name, value) in headers {
        let name = name.as_str();
        if is_identity(name) || is_forwarding(name) {
            continue;
        }
        other_count += 1;
        row(&mut others, "", name, Some(value.as_bytes()));
    }
    let user = headers.get("x-remote-user").map(|v| decoded(v.as_bytes()));
    let greeting = match &user {
        Some(user) => format!("Hello, {}!", escape(user)),
        None => "No user: this request reached the app without identity headers.".to_string(),
    };
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Legacy app (demo upstream)</title>\n\
         <link rel=\"stylesheet\" href=\"/static/app.css\">\n</head>\n<body>\n\
         <header><div><strong>Legacy app</strong><span class=\"tag\">demo upstream behind the \
         gateway</span></div><a class=\"button\" id=\"logout\" href=\"{prefix}/logout\">Sign out\
         </a></header>\n<main>\n<section><h1 id=\"greeting\">{greeting}</h1>\
         <p>You asked for <code id=\"target\">{method} {target}</code>. This page shows what the \
         legacy app sees.</p></section>\n\
         <section aria-labelledby=\"identity-h\"><h2 id=\"identity-h\">Identity headers</h2>\
         <table id=\"identity\">{identity}</table></section>\n\
         <section aria-labelledby=\"forwarded-h\"><h2 id=\"forwarded-h\">Forwarding headers</h2>\
         <table id=\"forwarded\">{forwarding}</table></section>\n\
         <section><details><summary>All other headers ({other_count})</summary>\
         <table id=\"other-headers\">{others}</table></details></section>\n\
         </main>\n</body>\n</html>\n",
        prefix = escape(prefix),
        method = escape(method.as_str()),
        target = escape(target),
    )
}

fn row(out: &mut String, label: &str, name: &str, value: Option<&[u8]>) {
    let cell = match value {
        None => "<span class=\"none\">not sent</span>".to_string(),
        Some(raw) => {
            let shown = decoded(raw);
            let raw_text = String::from_utf8_lossy(raw);
            if shown == raw_text {
                format!("<code>{}</code>", escape(&shown))
            } else {
                format!(
                    "<code>{}</code> <span class=\"none\">(sent as <code>{}</code>)</span>",
                    escape(&shown),
                    escape(&raw_text)
                )
            }
        }
    };
    let _ = write!(
        out,
        "<tr><th scope=\"row\">{label}<code>{name}</code></th><td data-header=\"{name}\">{cell}</td></tr>",
        label = if label.is_empty() {
            String::new()
        } else {
            format!("{} ", escape(label))
        },
        name = escape(name),
    );
}

/// Identity values may arrive percent-encoded UTF-8 (`identity_headers.encoding: percent`).
fn decoded(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    percent_decode_str(&text).decode_utf8_lossy().into_owned()
}

fn is_identity(name: &str) -> bool {
    name.starts_with("x-remote-")
}

fn is_forwarding(name: &str) -> bool {
    name.starts_with("x-forwarded-") || name == "forwarded" || name == "x-real-ip"
}

fn extra_identity(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(name, _)| {
            is_identity(name.as_str())
                && !IDENTITY_HEADERS
                    .iter()
                    .any(|(known, _)| *known == name.as_str())
        })
        .map(|(name, value)| (name.as_str().to_string(), decoded(value.as_bytes())))
        .collect()
}

fn forwarded(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(name, _)| is_forwarding(name.as_str()))
        .map(|(name, value)| {
            (
                name.as_str().to_string(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect()
}

fn escape(text: &str) -> std::borrow::Cow<'_, str> {
    html_escape::encode_quoted_attribute(text)
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    response(status, "text/plain; charset=utf-8", body.into())
}

fn response(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, http::HeaderValue::from_static(content_type));
    response
        .headers_mut()
        .insert(CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
    response
}

//! The `http` backend against a real HTTP server (hyper on 127.0.0.1:0) started by each test, and
//! a chain of `ldap` (real slapd, stopped mid-test) and `http`.

mod support;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use auth_backends::http::HttpBackend;
use auth_backends::ldap::LdapBackend;
use auth_core::{
    AttributeMapping, Backend, BuildContext, Chain, ChainEntry, ChainOutcome, Context, Credentials,
    Duration, OnError, Outcome, Secret, User,
};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};

/// What the test server saw: method, path, Authorization header, body.
type Seen = Arc<Mutex<Vec<(String, String, Option<String>, String)>>>;

struct Server {
    addr: SocketAddr,
    seen: Seen,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn reply(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r
}

fn user_json(login: &str) -> Value {
    json!({
        "login": login,
        "mail": format!("{login}@example.org"),
        "full_name": "Alice Example",
        "roles": ["staff", "dev"],
        "department": "R&D",
    })
}

async fn handle(req: Request<Incoming>, seen: Seen) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let body_text = String::from_utf8_lossy(&body).into_owned();
    seen.lock()
        .unwrap()
        .push((method.clone(), path.clone(), auth, body_text));

    if method == "GET" {
        let id = path.strip_prefix("/users/").unwrap_or_default();
        return Ok(match id {
            "alice" => reply(StatusCode::OK, user_json("alice").to_string()),
            "inactive" => {
                let mut u = user_json("inactive");
                u["active"] = json!(false);
                reply(StatusCode::OK, u.to_string())
            }
            "liar" => reply(StatusCode::OK, user_json("alice").to_string()),
            "boom" => reply(StatusCode::INTERNAL_SERVER_ERROR, "oops"),
            _ => reply(StatusCode::NOT_FOUND, "{}"),
        });
    }
    if method != "POST" || path != "/authenticate" {
        return Ok(reply(StatusCode::METHOD_NOT_ALLOWED, ""));
    }
    let Ok(Value::Object(creds)) = serde_json::from_slice::<Value>(&body) else {
        return Ok(reply(StatusCode::BAD_REQUEST, "bad json"));
    };
    let username = creds["username"].as_str().unwrap_or_default().to_string();
    let password = creds["password"].as_str().unwrap_or_default().to_string();
    let ok = |extra: Value| {
        let mut u = user_json(&username);
        u["authenticated"] = json!(true);
        if let (Value::Object(u), Value::Object(extra)) = (&mut u, extra) {
            u.extend(extra);
        }
        reply(StatusCode::OK, u.to_string())
    };
    Ok(match username.as_str() {
        "alice" | "jos\u{e9}" if password == "right" => ok(json!({})),
        "alice" | "jos\u{e9}" => reply(StatusCode::UNAUTHORIZED, "{}"),
        "banned" => reply(StatusCode::FORBIDDEN, "{}"),
        "boom" => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            "{\"authenticated\": true}",
        ),
        "slow" => {
            tokio::time::sleep(StdDuration::from_secs(5)).await;
            ok(json!({}))
        }
        "badjson" => reply(StatusCode::OK, "{\"authenticated\": true, "),
        "array" => reply(StatusCode::OK, "[true]"),
        "noflag" => reply(StatusCode::OK, user_json("noflag").to_string()),
        "falseflag" => ok(json!({"authenticated": false})),
        "stringflag" => ok(json!({"authenticated": "true"})),
        "inactive" => ok(json!({"active": false})),
        "nologin" => reply(StatusCode::OK, "{\"authenticated\": true}"),
        "huge" => ok(json!({"padding": "x".repeat(200_000)})),
        "redirect" => {
            let mut r = reply(StatusCode::FOUND, "");
            r.headers_mut()
                .insert("location", "/authenticate".parse().unwrap());
            r
        }
        _ => reply(StatusCode::NOT_FOUND, "{}"),
    })
}

async fn start_server() -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let seen2 = seen.clone();
    let task = tokio::spawn(serve(listener, seen2));
    Server { addr, seen, task }
}

/// Accepts connections until aborted; aborting also closes every open connection (they live in
/// the JoinSet), as a server going down would.
async fn serve(listener: tokio::net::TcpListener, seen: Seen) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let seen = seen.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |req| handle(req, seen.clone()));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

fn options(addr: SocketAddr) -> HttpBackend {
    HttpBackend {
        url: format!("http://{addr}/authenticate"),
        user_url: Some(format!("http://{addr}/users/{{id}}")),
        timeout: Duration::from_millis(800),
        success_field: "authenticated".into(),
        active_field: Some("active".into()),
        attributes: Some(AttributeMapping {
            username: "login".into(),
            email: Some("mail".into()),
            name: Some("full_name".into()),
            groups: Some("roles".into()),
            extra: [("department".to_string(), "department".to_string())].into(),
            ..AttributeMapping::default()
        }),
        headers: BTreeMap::from([("Authorization".to_string(), Secret::new("Bearer svc-token"))]),
        max_response_bytes: 65536,
    }
}

fn build(o: HttpBackend) -> Arc<dyn Backend> {
    o.build(&BuildContext::default()).expect("build")
}

async fn login(backend: &Arc<dyn Backend>, username: &str, password: &str) -> Outcome {
    backend
        .authenticate(
            &Credentials::password(username, password),
            &Context::default(),
        )
        .await
}

fn authenticated(outcome: Outcome) -> User {
    match outcome {
        Outcome::Authenticated(user) => user,
        other => panic!("expected Authenticated, got {other:?}"),
    }
}

#[tokio::test]
async fn good_credentials_map_the_json_user() {
    let server = start_server().await;
    let backend = build(options(server.addr));
    let alice = authenticated(login(&backend, "alice", "right").await);
    assert_eq!(alice.username, "alice");
    assert_eq!(alice.email.as_deref(), Some("alice@example.org"));
    assert_eq!(alice.display_name.as_deref(), Some("Alice Example"));
    assert_eq!(
        alice.groups.iter().map(String::as_str).collect::<Vec<_>>(),
        ["dev", "staff"]
    );
    assert_eq!(alice.attribute("department"), Some("R&D"));

    let jose = authenticated(login(&backend, "jos\u{e9}", "right").await);
    assert_eq!(jose.username, "jos\u{e9}");

    let seen = server.seen.lock().unwrap().clone();
    let (method, path, auth, body) = &seen[0];
    assert_eq!((method.as_str(), path.as_str()), ("POST", "/authenticate"));
    assert_eq!(auth.as_deref(), Some("Bearer svc-token"));
    let body: Value = serde_json::from_str(body).unwrap();
    assert_eq!(body, json!({"username": "alice", "password": "right"}));
}

#[tokio::test]
async fn status_codes_and_explicit_flag() {
    let server = start_server().await;
    let backend = build(options(server.addr));
    let cases: &[(&str, &str)] = &[
        ("alice", "rejected"),
        ("banned", "rejected"),
        ("ghost", "not_found"),
        ("boom", "unavailable"),
        ("badjson", "unavailable"),
        ("array", "unavailable"),
        ("noflag", "unavailable"),
        ("stringflag", "unavailable"),
        ("falseflag", "rejected"),
        ("inactive", "denied"),
        ("nologin", "unavailable"),
        ("huge", "unavailable"),
        ("redirect", "unavailable"),
    ];
    for (username, expected) in cases {
        let out = login(&backend, username, "wrong").await;
        assert_eq!(out.label(), *expected, "{username}: {out:?}");
        if let Outcome::Unavailable(e) = &out {
            assert!(!e.to_string().contains("wrong"), "{e}");
        }
    }
    // Only the login endpoint was called: the redirect was not followed.
    assert!(
        server
            .seen
            .lock()
            .unwrap()
            .iter()
            .all(|s| s.1 == "/authenticate")
    );
    assert_eq!(server.seen.lock().unwrap().len(), cases.len());
}

#[tokio::test]
async fn timeout_is_unavailable() {
    let server = start_server().await;
    let backend = build(options(server.addr));
    let started = std::time::Instant::now();
    let out = login(&backend, "slow", "x").await;
    assert!(matches!(out, Outcome::Unavailable(_)), "{out:?}");
    assert!(
        started.elapsed() < StdDuration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn get_user_through_user_url() {
    let server = start_server().await;
    let backend = build(options(server.addr));
    let alice = authenticated(login(&backend, "alice", "right").await);
    let restored = backend.get_user(&alice.id).await.unwrap().expect("alice");
    assert_eq!(restored.username, "alice");
    assert_eq!(restored.groups, alice.groups);
    assert_eq!(backend.get_user("ghost").await.unwrap(), None);
    assert_eq!(backend.get_user("inactive").await.unwrap(), None);
    // The service answered for another user: not trusted.
    assert_eq!(backend.get_user("liar").await.unwrap(), None);
    assert!(backend.get_user("boom").await.is_err());
    // Ids are percent-encoded into one path segment.
    assert_eq!(backend.get_user("../a b/c?d").await.unwrap(), None);
    let paths: Vec<String> = server
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.1.clone())
        .collect();
    assert!(
        paths.contains(&"/users/%2E%2E%2Fa%20b%2Fc%3Fd".to_string()),
        "{paths:?}"
    );

    // Without user_url, get_user answers None without asking anyone.
    let before = server.seen.lock().unwrap().len();
    let backend = build(HttpBackend {
        user_url: None,
        ..options(server.addr)
    });
    assert_eq!(backend.get_user("alice").await.unwrap(), None);
    assert_eq!(server.seen.lock().unwrap().len(), before);
}

#[tokio::test]
async fn service_down_is_unavailable_then_recovers() {
    let server = start_server().await;
    let addr = server.addr;
    let backend = build(options(addr));
    authenticated(login(&backend, "alice", "right").await);
    drop(server);
    tokio::time::sleep(StdDuration::from_millis(50)).await;
    let out = login(&backend, "alice", "right").await;
    assert!(matches!(out, Outcome::Unavailable(_)), "{out:?}");
    assert!(backend.get_user("alice").await.is_err());

    // A new server on the same port: the backend uses it again.
    let listener = loop {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => break l,
            Err(_) => tokio::time::sleep(StdDuration::from_millis(50)).await,
        }
    };
    let task = tokio::spawn(serve(listener, Seen::default()));
    authenticated(login(&backend, "alice", "right").await);
    task.abort();
}

#[test]
fn build_refuses_bad_options() {
    let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let ctx = BuildContext::default();
    assert!(
        HttpBackend {
            url: "ftp://x/".into(),
            ..options(addr)
        }
        .build(&ctx)
        .is_err()
    );
    assert!(
        HttpBackend {
            url: "not a url".into(),
            ..options(addr)
        }
        .build(&ctx)
        .is_err()
    );
    assert!(
        HttpBackend {
            user_url: Some(format!("http://{addr}/users")),
            ..options(addr)
        }
        .build(&ctx)
        .is_err()
    );
    assert!(
        HttpBackend {
            success_field: String::new(),
            ..options(addr)
        }
        .build(&ctx)
        .is_err()
    );
}

/// A chain of a real directory (stopped mid-test) and the HTTP service: `on_error` decides
/// whether the outage denies or passes on.
#[tokio::test]
async fn chain_on_error_with_a_directory_outage() {
    use support::slapd::{self, Slapd};
    let Some(mut directory) = Slapd::start_or_skip().await else {
        return;
    };
    let server = start_server().await;
    let ldap = LdapBackend {
        url: directory.url(),
        starttls: false,
        ca_file: None,
        bind_dn: Some(slapd::READER_DN.into()),
        bind_password: Some(Secret::new(slapd::READER_PW)),
        user_base: Some(slapd::PEOPLE.into()),
        user_filter: "(uid={username})".into(),
        user_dn: None,
        group_attribute: Some("memberOf".into()),
        group_base: None,
        group_filter: "(member={dn})".into(),
        group_name: Some("cn".into()),
        attributes: None,
        connect_timeout: Duration::from_secs(2),
        timeout: Duration::from_secs(2),
    }
    .build(&BuildContext::default())
    .unwrap();
    let http = build(options(server.addr));
    let chain = |on_error| {
        let mut dir = ChainEntry::new("directory", ldap.clone());
        dir.on_error = on_error;
        Chain::new(vec![dir, ChainEntry::new("hr", http.clone())])
    };
    let ctx = Context::default();
    let alice_ldap = Credentials::password("alice", "alice-ldap-pw");
    let alice_http = Credentials::password("alice", "right");

    // Directory up: it answers for its password; the other password falls through (on_reject
    // next) to the HTTP service.
    let r = chain(OnError::Deny).authenticate(&alice_ldap, &ctx).await;
    assert!(
        matches!(&r.outcome, ChainOutcome::Authenticated { entry, .. } if entry == "directory")
    );
    let r = chain(OnError::Deny).authenticate(&alice_http, &ctx).await;
    assert!(matches!(&r.outcome, ChainOutcome::Authenticated { entry, .. } if entry == "hr"));
    assert_eq!(r.trace[0].outcome, "rejected");

    directory.stop();
    let r = chain(OnError::Deny).authenticate(&alice_http, &ctx).await;
    assert!(
        matches!(&r.outcome, ChainOutcome::Unavailable { entry, .. } if entry == "directory"),
        "{r:?}"
    );
    let r = chain(OnError::Next).authenticate(&alice_http, &ctx).await;
    assert!(
        matches!(&r.outcome, ChainOutcome::Authenticated { entry, .. } if entry == "hr"),
        "{r:?}"
    );
    assert_eq!(r.trace[0].outcome, "unavailable");

    directory.restart().await.unwrap();
    let r = chain(OnError::Deny).authenticate(&alice_ldap, &ctx).await;
    assert!(
        matches!(&r.outcome, ChainOutcome::Authenticated { entry, .. } if entry == "directory")
    );
}

/// The options as `gateway.reference.yaml` writes them.
#[tokio::test]
async fn reference_yaml_options() {
    let server = start_server().await;
    let yaml = format!(
        "url: http://{}/authenticate     # POST {{\"username\",\"password\"}} as JSON\nattributes: {{ username: login, email: mail, name: full_name, groups: roles }}\n",
        server.addr
    );
    let options: HttpBackend = serde_saphyr::from_str(&yaml).unwrap();
    assert_eq!(options.timeout, Duration::from_secs(5));
    assert_eq!(options.success_field, "authenticated");
    let backend = build(options);
    let alice = authenticated(login(&backend, "alice", "right").await);
    assert_eq!(alice.display_name.as_deref(), Some("Alice Example"));
    assert!(matches!(
        login(&backend, "alice", "nope").await,
        Outcome::Rejected
    ));
    // No user_url: sessions are not restored.
    assert_eq!(backend.get_user("alice").await.unwrap(), None);

    let yaml = format!(
        "url: http://{}/authenticate\nheaders: {{ Authorization: \"Bearer from-yaml\" }}\n",
        server.addr
    );
    let options: HttpBackend = serde_saphyr::from_str(&yaml).unwrap();
    assert!(!format!("{options:?}").contains("from-yaml"));
    let backend = build(options);
    let _ = login(&backend, "ghost", "x").await;
    let seen = server.seen.lock().unwrap().clone();
    assert_eq!(seen.last().unwrap().2.as_deref(), Some("Bearer from-yaml"));
    assert!(serde_saphyr::from_str::<HttpBackend>("url: http://x/\ntimout: 1s\n").is_err());
}

#[tokio::test]
async fn errors_never_show_url_credentials_or_the_password() {
    let closed = support::free_port();
    let backend = build(HttpBackend {
        url: format!("http://svc:hunter2@127.0.0.1:{closed}/authenticate"),
        user_url: Some(format!(
            "http://svc:hunter2@127.0.0.1:{closed}/users/{{id}}"
        )),
        ..options("127.0.0.1:9".parse().unwrap())
    });
    match login(&backend, "alice", "s3cret-pw").await {
        Outcome::Unavailable(e) => {
            let msg = e.to_string();
            assert!(
                !msg.contains("hunter2") && !msg.contains("s3cret-pw"),
                "{msg}"
            );
            assert!(
                msg.to_lowercase().contains("connect"),
                "the cause is shown: {msg}"
            );
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    let err = backend.get_user("alice").await.unwrap_err().to_string();
    assert!(!err.contains("hunter2"), "{err}");
}

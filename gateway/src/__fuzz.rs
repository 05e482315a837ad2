//! Not public API: the fuzz targets' bodies, shared by `fuzz/` (libFuzzer) and the property
//! fallback in `tests/fault/fuzz_properties.rs`. Each function takes arbitrary bytes, runs one parser
//! the gateway exposes to untrusted input, and panics only when an invariant is broken (a panic
//! inside the parser itself is a finding too). Re-exported as `gateway::__fuzz`.

use std::path::Path;
use std::sync::OnceLock;

use auth_core::{Credentials, User};
use base64::Engine;
use http::{HeaderMap, HeaderValue, header};
use url::Url;

use auth_core::Secret;

use crate::config::{SessionConfig, spanned};
use crate::session::{CookieLookup, SessionManager};

/// `config::load_str` on `data` (as UTF-8): errors are fine, panics are not.
pub fn config_load(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = crate::config::load_str("fuzz.yaml", text, Path::new("/nonexistent-fuzz-dir"));
}

fn folded_routes() -> &'static crate::request::route::RouteTable {
    static T: OnceLock<crate::request::route::RouteTable> = OnceLock::new();
    T.get_or_init(|| {
        let routes: Vec<crate::config::RouteConfig> = serde_saphyr::from_str(
            "- match: { path: /admin }\n  access: deny\n\
             - match: { path: /Static/ }\n  access: public\n\
             - match: { path_regex: '^/api/v[0-9]+/' }\n  access: { groups: [api] }\n",
        )
        .expect("fuzz routes parse");
        crate::request::route::RouteTable::compile_with(
            &routes,
            &crate::config::RouteMatchingConfig {
                case_insensitive: true,
            },
        )
        .expect("fuzz routes compile")
    })
}

/// Path normalization: a normalized path is absolute, free of dot segments and empty segments,
/// and normalizing it again changes nothing. With `route_matching.case_insensitive`, an accepted
/// path has no segment ending in `.` or a space, keeps its case, and every ASCII case variant
/// of it meets the same rule.
pub fn normalize_path(data: &[u8]) {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let result = crate::request::route::normalize_path(raw);
    assert_eq!(
        result,
        crate::request::route::normalize_slow(raw),
        "{raw:?}: the fast path disagrees with the full normalization"
    );
    let Ok(p) = result else {
        return;
    };
    assert!(p.starts_with('/'), "{raw:?} -> {p:?} is not absolute");
    assert!(!p.contains("//"), "{raw:?} -> {p:?} has an empty segment");
    for seg in p.split('/') {
        assert!(
            seg != "." && seg != "..",
            "{raw:?} -> {p:?} has a dot segment"
        );
    }
    let again = crate::request::route::normalize_path(&p);
    assert_eq!(again.as_deref(), Ok(p.as_str()), "{raw:?}: not idempotent");

    let table = folded_routes();
    let Ok(f) = table.normalize(raw) else {
        return;
    };
    assert_eq!(
        f, p,
        "{raw:?}: case-insensitive matching changed the forwarded path"
    );
    for seg in f.split('/') {
        assert!(
            !seg.ends_with('.') && !seg.ends_with("%20"),
            "{raw:?} -> {f:?} has a segment Windows would strip"
        );
    }
    let rule = table.decide(None, "GET", &f).index;
    for variant in [f.to_ascii_uppercase(), f.to_ascii_lowercase()] {
        assert_eq!(
            table.decide(None, "GET", &variant).index,
            rule,
            "{f:?} and {variant:?} meet different rules"
        );
    }
}

/// Redirect validation: an accepted `next` is either a local path-absolute reference (never
/// scheme-relative, never a backslash) or an http(s) URL on our origin or an allowed host.
pub fn validate_next(data: &[u8]) {
    static PUBLIC: OnceLock<Url> = OnceLock::new();
    let public = PUBLIC.get_or_init(|| Url::parse("https://gw.example.org").expect("valid URL"));
    let allowed = [
        "app.example.org".to_string(),
        "other.example.org:8443".to_string(),
    ];
    let Ok(next) = std::str::from_utf8(data) else {
        return;
    };
    let Some(target) = crate::login::validate_next(next, public, &allowed) else {
        return;
    };
    assert!(!target.contains('\\'), "{next:?} -> {target:?}");
    assert!(
        !target.chars().any(char::is_control),
        "{next:?} -> {target:?} has a control character"
    );
    if target.starts_with('/') {
        assert!(
            !target.starts_with("//"),
            "{next:?} -> {target:?} is scheme-relative"
        );
        // Resolved against our origin, it must stay on our origin.
        let resolved = public.join(&target).expect("a local target resolves");
        assert_eq!(resolved.origin(), public.origin(), "{next:?} -> {target:?}");
        return;
    }
    let url = Url::parse(&target).unwrap_or_else(|e| panic!("{next:?} -> {target:?}: {e}"));
    assert!(
        matches!(url.scheme(), "http" | "https"),
        "{next:?} -> {target:?}"
    );
    assert!(
        url.username().is_empty() && url.password().is_none(),
        "{target:?} has userinfo"
    );
    let host = url.host_str().unwrap_or_default();
    let ok = url.origin() == public.origin()
        || host == "app.example.org"
        || (host == "other.example.org" && url.port_or_known_default() == Some(8443));
    assert!(ok, "{next:?} -> {target:?} leaves the allowed hosts");
}

struct Sessions {
    rt: tokio::runtime::Runtime,
    memory: SessionManager,
    cookie: SessionManager,
    /// A genuine cookie of each store, so mutations of a valid value get explored.
    valid: [String; 2],
}

fn sessions() -> &'static Sessions {
    static S: OnceLock<Sessions> = OnceLock::new();
    S.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let secret = b"fuzz-secret-0123456789abcdef-0123456789";
        let build = |store: &str| {
            let cfg = SessionConfig {
                store: spanned(store.into()),
                secret: Some(spanned(Secret::new(
                    String::from_utf8_lossy(secret).into_owned(),
                ))),
                ..SessionConfig::default()
            };
            rt.block_on(SessionManager::from_config(
                &cfg,
                secret,
                Path::new("/nonexistent"),
            ))
            .expect("session manager")
        };
        let memory = build("memory");
        let cookie = build("cookie");
        let mut user = User::new("alice");
        user.backend = "fuzz".into();
        let valid = [
            rt.block_on(memory.create(&user, Some("v1")))
                .expect("memory session"),
            rt.block_on(cookie.create(&user, Some("v1")))
                .expect("cookie session"),
        ];
        Sessions {
            rt,
            memory,
            cookie,
            valid,
        }
    })
}

/// Session cookie decoding (`SessionManager::load`) on the memory and the cookie store: any
/// value but the exact genuine one loads as no session; nothing panics. A first byte that is odd
/// makes the rest a list of `(position, byte)` edits applied to a genuine cookie of each store,
/// so tampering with valid values is explored too. The value is also sent (tossed) ahead of
/// the genuine cookie in one `Cookie` header: `SessionManager::lookup` picks the genuine
/// session, or refuses when there are more values than it tries.
pub fn session_cookie(data: &[u8]) {
    let s = sessions();
    for (manager, valid) in [(&s.memory, &s.valid[0]), (&s.cookie, &s.valid[1])] {
        let value = match data.split_first() {
            Some((mode, edits)) if mode % 2 == 1 => {
                let mut v = valid.as_bytes().to_vec();
                for edit in edits.chunks_exact(2) {
                    let at = usize::from(edit[0]) % v.len();
                    v[at] = edit[1];
                }
                String::from_utf8_lossy(&v).into_owned()
            }
            _ => String::from_utf8_lossy(data).into_owned(),
        };
        match s.rt.block_on(manager.load(&value)) {
            Ok(Some(session)) => {
                assert_eq!(value, *valid, "forged cookie {value:?} was accepted");
                assert_eq!(session.user_id(), "alice");
            }
            Ok(None) => {}
            Err(e) => panic!("an in-process store reported {e}"),
        }
        let name = manager.cookie_name();
        let Ok(tossed) = HeaderValue::from_str(&format!("{name}={value}; {name}={valid}")) else {
            continue;
        };
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, tossed);
        let values = crate::session::cookie_values(&headers, name).len();
        match s.rt.block_on(manager.lookup(&headers)) {
            Ok(CookieLookup::Valid { value: picked, .. }) => {
                assert_eq!(picked, *valid, "{value:?} tossed: picked {picked:?}");
            }
            Ok(CookieLookup::Ambiguous) => assert!(values > 4, "{value:?}: refused {values}"),
            Ok(other) => panic!("{value:?} tossed ahead of the genuine cookie: {other:?}"),
            Err(e) => panic!("an in-process store reported {e}"),
        }
    }
}

/// `Authorization` parsing: accepted Basic credentials are exactly the decoded `user:password`
/// split at the first `:`.
pub fn basic_header(data: &[u8]) {
    let Ok(value) = HeaderValue::from_bytes(data) else {
        return;
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::AUTHORIZATION, value);
    let Ok(Some(creds)) = crate::request::identify::authorization_credentials(&headers) else {
        return;
    };
    match creds {
        Credentials::Password { username, password } => {
            assert!(
                !username.contains(':'),
                "username {username:?} holds a colon"
            );
            let payload = data
                .splitn(2, |b| *b == b' ')
                .nth(1)
                .expect("a scheme and a payload");
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(trim_ows(payload))
                .expect("accepted credentials are base64");
            assert_eq!(decoded, format!("{username}:{password}").into_bytes());
        }
        Credentials::Bearer(token) => {
            assert!(!token.is_empty(), "empty bearer token accepted");
        }
        _ => {}
    }
}

/// The login form parser: accepted fields are non-empty where required, free of NUL bytes, and
/// the username holds no control character.
pub fn login_form(data: &[u8]) {
    let Ok(form) = crate::login::parse_login_form(data) else {
        return;
    };
    assert!(!form.username.is_empty() && !form.password().is_empty() && !form.csrf.is_empty());
    assert!(!form.username.chars().any(char::is_control));
    assert!(!form.password().contains('\0') && !form.csrf.contains('\0'));
    if let Some(next) = &form.next {
        assert!(!next.is_empty());
    }
}

fn trim_ows(mut b: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = b {
        b = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = b {
        b = rest;
    }
    b
}

/// What a client made of one upstream response: status, version, reason phrase (when not the
/// canonical one), headers in order, and the body, or where it failed.
#[derive(Debug, PartialEq, Eq)]
struct Received {
    status: u16,
    version: http::Version,
    reason: Option<Vec<u8>>,
    headers: Vec<(String, Vec<u8>)>,
    body: Result<Vec<u8>, ()>,
}

async fn receive(resp: http::Response<crate::request::Body>) -> Received {
    use http_body_util::BodyExt;
    let status = resp.status().as_u16();
    let version = resp.version();
    let reason = resp
        .extensions()
        .get::<hyper::ext::ReasonPhrase>()
        .map(|r| r.as_bytes().to_vec());
    let headers = resp
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_string(), v.as_bytes().to_vec()))
        .collect();
    let body = resp
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .map_err(|_| ());
    Received {
        status,
        version,
        reason,
        headers,
        body,
    }
}

/// Plays `response` as the upstream on an in-memory connection: reads the request head, answers
/// with the bytes, closes. Returns the request head it read.
async fn play_upstream(io: tokio::io::DuplexStream, response: Vec<u8>) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut io = io;
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    while !head.ends_with(b"\r\n\r\n") {
        match io.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
    }
    let _ = io.write_all(&response).await;
    let _ = io.shutdown().await;
    // Keep reading until the client is done, so a write of its never fails.
    while let Ok(n) = io.read(&mut chunk).await {
        if n == 0 {
            break;
        }
    }
    head
}

/// The differential target of the common upstream exchange (`request::upstream_h1`): the
/// same upstream response bytes go to hyper's client and to ours. Whatever ours accepts, hyper
/// accepts too, with the same status, version, reason, headers and body; ours may refuse what
/// hyper takes (it is stricter on framing), never the other way round. Both write the same
/// request head. The first byte chooses `GET` or `HEAD` and an extra request header.
pub fn upstream_response(data: &[u8]) {
    use crate::request::upstream_h1::{Conn, NoHome};
    let Some((&flags, response)) = data.split_first() else {
        return;
    };
    let method = if flags & 1 == 1 {
        http::Method::HEAD
    } else {
        http::Method::GET
    };
    let request = || {
        let mut b = http::Request::builder()
            .method(method.clone())
            .uri("/fuzz?q=1")
            .header(header::HOST, "upstream.test")
            .header("x-remote-user", "alice");
        if flags & 2 == 2 {
            b = b.header("x-remote-user", "second value");
        }
        b.body(crate::request::error::full_body(""))
            .expect("a valid request")
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let limit = std::time::Duration::from_secs(5);
        // hyper's client.
        let (client, server) = tokio::io::duplex(64 * 1024);
        let upstream = tokio::spawn(play_upstream(server, response.to_vec()));
        let hyper_result = tokio::time::timeout(limit, async {
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake::<_, crate::request::Body>(
                    hyper_util::rt::TokioIo::new(client),
                )
                .await
                .ok()?;
            tokio::spawn(conn);
            let resp = sender.send_request(request()).await.ok()?;
            let resp = resp.map(|b| {
                http_body_util::BodyExt::boxed(http_body_util::BodyExt::map_err(b, |e| {
                    Box::new(e) as crate::request::BoxError
                }))
            });
            Some(receive(resp).await)
        })
        .await
        .expect("hyper's client hung");
        let hyper_head = upstream.await.expect("the upstream task");

        // Ours.
        let (client, server) = tokio::io::duplex(64 * 1024);
        let upstream = tokio::spawn(play_upstream(server, response.to_vec()));
        let req = request();
        assert!(crate::request::upstream_h1::eligible(&req));
        let ours = tokio::time::timeout(limit, async {
            let resp = Conn::new(client).send(&req, NoHome).await.ok()?;
            Some(receive(resp).await)
        })
        .await
        .expect("the common exchange hung");
        let our_head = upstream.await.expect("the upstream task");

        assert_eq!(
            String::from_utf8_lossy(&our_head),
            String::from_utf8_lossy(&hyper_head),
            "the request heads differ"
        );
        if let Some(ours) = ours {
            let Some(theirs) = hyper_result else {
                panic!("accepted a response hyper's client refuses: {ours:?}");
            };
            if ours.body.is_ok() {
                assert_eq!(
                    ours, theirs,
                    "the two clients read the response differently"
                );
            } else {
                assert_eq!(
                    (ours.status, &ours.headers),
                    (theirs.status, &theirs.headers),
                    "the two clients read the response head differently"
                );
            }
        }
    });
}

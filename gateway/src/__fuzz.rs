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

/// A request as a server hands it to its service: method, target, version, headers in order.
#[derive(Debug, PartialEq, Eq)]
struct Served {
    method: String,
    uri: String,
    version: http::Version,
    headers: Vec<(String, Vec<u8>)>,
}

impl Served {
    fn of<B>(req: &http::Request<B>) -> Served {
        Served {
            method: req.method().to_string(),
            uri: req.uri().to_string(),
            version: req.version(),
            headers: req
                .headers()
                .iter()
                .map(|(n, v)| (n.as_str().to_string(), v.as_bytes().to_vec()))
                .collect(),
        }
    }
}

/// The `max_buf_size` both servers get here (hyper's smallest).
const FUZZ_MAX_HEAD: usize = 8192;

/// Reads from `io` until `done` says the bytes are complete, the stream ends, or nothing comes
/// for a while; returns what was read.
async fn read_until(
    io: &mut tokio::io::DuplexStream,
    done: impl Fn(&[u8]) -> bool,
    quiet: std::time::Duration,
) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    while !done(&got) {
        match tokio::time::timeout(quiet, io.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&chunk[..n]),
            _ => break,
        }
    }
    got
}

/// The differential target of the client side's fast path (`server::h1`): the same request
/// bytes go to its parser and to hyper's HTTP/1 server. Whatever the fast path serves, hyper's
/// server hands its service the same method, target, version and headers, with an ended body,
/// and answers with `connection: close` exactly when the fast path would close. What the fast
/// path does not serve it hands over with the bytes untouched.
pub fn client_request(data: &[u8]) {
    use crate::server::h1::{Head, parse};
    let mut buf = bytes::BytesMut::from(data);
    let (ours, keep_alive) = match parse(&mut buf, FUZZ_MAX_HEAD) {
        Head::Fast { req, keep_alive } => (Served::of(&req), keep_alive),
        Head::Partial | Head::HandOver => {
            assert_eq!(
                &buf[..],
                data,
                "the bytes handed over differ from those read"
            );
            return;
        }
    };
    assert!(
        data.ends_with(&buf),
        "what follows the head is not the rest of the bytes"
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        use tokio::io::AsyncWriteExt;
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let service =
            hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let _ = tx.send((
                    Served::of(&req),
                    hyper::body::Body::is_end_stream(req.body()),
                ));
                async {
                    Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Empty::<
                        bytes::Bytes,
                    >::new(
                    )))
                }
            });
        let served = tokio::spawn(
            hyper::server::conn::http1::Builder::new()
                .max_buf_size(FUZZ_MAX_HEAD)
                .serve_connection(hyper_util::rt::TokioIo::new(server), service),
        );
        client.write_all(data).await.expect("written");
        let head = read_until(
            &mut client,
            |b| b.windows(4).any(|w| w == b"\r\n\r\n"),
            std::time::Duration::from_secs(5),
        )
        .await;
        let (theirs, ended) = rx
            .recv()
            .await
            .expect("hyper's server served no request the fast path serves");
        assert_eq!(ours, theirs, "the two servers read the request differently");
        assert!(ended, "hyper's server saw a body the fast path does not");
        // hyper says how the connection goes on: `close` to HTTP/1.1, `keep-alive` to HTTP/1.0.
        // Only the first response counts (a pipelined request may have been answered too).
        let first = head
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(head.len(), |at| at + 4);
        let head = String::from_utf8_lossy(&head[..first]).to_ascii_lowercase();
        let (status_line, says, means) = if ours.version == http::Version::HTTP_10 {
            (
                "http/1.0 200 ok\r\n",
                "\r\nconnection: keep-alive\r\n",
                true,
            )
        } else {
            ("http/1.1 200 ok\r\n", "\r\nconnection: close\r\n", false)
        };
        assert!(head.starts_with(status_line), "hyper answered {head:?}");
        assert_eq!(
            head.contains(says) == means,
            keep_alive,
            "keep-alive differs: hyper answered {head:?}"
        );
        drop(client);
        served.abort();
    });
}

/// One response to play through both servers: built anew for each (bodies are consumed).
fn fuzz_response(data: &[u8]) -> http::Response<crate::request::Body> {
    use http_body_util::BodyExt;
    const STATUS: [u16; 8] = [200, 201, 204, 304, 404, 500, 302, 599];
    let flags = data.first().copied().unwrap_or(0);
    let pick = data.get(1).copied().unwrap_or(0);
    let body: crate::request::Body = match (flags >> 2) & 3 {
        0 => crate::request::error::full_body(""),
        1 => crate::request::error::full_body("hello"),
        2 => http_body_util::StreamBody::new(futures_util::stream::iter(
            ["hel", "", "lo"].map(|s| Ok(hyper::body::Frame::data(bytes::Bytes::from(s)))),
        ))
        .boxed(),
        _ => crate::request::error::full_body(vec![b'x'; 20_000]),
    };
    let mut resp = http::Response::new(body);
    if flags & 0x20 != 0 {
        // What `upstream_h1` gives an HTTP/1.0 upstream's response.
        *resp.version_mut() = http::Version::HTTP_10;
    }
    *resp.status_mut() =
        http::StatusCode::from_u16(STATUS[usize::from(pick & 7)]).expect("a status");
    if pick & 0x80 != 0 {
        resp.extensions_mut()
            .insert(hyper::ext::ReasonPhrase::from_static(b"Gone Fishing"));
    }
    for line in data.get(2..).unwrap_or_default().split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(trim_ows(&line[colon + 1..])),
        ) else {
            continue;
        };
        resp.headers_mut().append(name, value);
    }
    resp
}

/// `date: ...` values blanked: the two servers format the same clock at different moments.
fn without_dates(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::new();
    let mut rest = &text[..];
    while let Some(at) = rest.find("\r\ndate: ") {
        out.push_str(&rest[..at + 8]);
        rest = &rest[at + 8..];
        let end = rest.find("\r\n").unwrap_or(rest.len());
        out.push_str("<date>");
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// The differential target of the fast path's response writer (`server::h1::encode_head` and
/// its body framing): the same response, to `GET` or `HEAD`, with or without
/// `Connection: close` on the request, is written by hyper's HTTP/1 server and by the fast
/// path; the bytes must be the same (dates aside), and where hyper refuses the head, the fast
/// path refuses it too. The first byte picks the method, the request's close (or keep-alive),
/// the body, the request's and the response's versions; the second the status and a custom
/// reason; the rest are `name: value` lines.
pub fn client_response(data: &[u8]) {
    use crate::server::h1;
    let flags = data.first().copied().unwrap_or(0);
    let head_request = flags & 1 == 1;
    let close = flags & 2 == 2;
    let method = if head_request { "HEAD" } else { "GET" };
    // An HTTP/1.0 request asks for keep-alive instead of for a close.
    let http10 = flags & 0x10 != 0;
    let asked = h1::Asked {
        version: if http10 {
            http::Version::HTTP_10
        } else {
            http::Version::HTTP_11
        },
        head: head_request,
        keep_alive: !close,
    };
    let connection = match (http10, close) {
        (false, true) => "connection: close\r\n",
        (true, false) => "connection: keep-alive\r\n",
        _ => "",
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    // A body whose length contradicts its `Content-Length`: hyper's server asserts against it
    // (debug) or trusts the header (release); the fast path refuses the head.
    {
        let resp = fuzz_response(data);
        let exact = hyper::body::Body::size_hint(resp.body()).exact();
        let contradicts = !hyper::body::Body::is_end_stream(resp.body())
            && exact.is_some_and(|n| {
                !(head_request && n == 0)
                    && resp
                        .headers()
                        .get_all(header::CONTENT_LENGTH)
                        .iter()
                        .any(|v| h1::content_length(v.as_bytes()) != Some(n))
            });
        if contradicts {
            let (mut parts, body) = resp.into_parts();
            let encoded = h1::encode_head(&mut parts, Some(exact), asked, &mut Vec::new());
            drop(body);
            assert!(
                encoded.is_err(),
                "a head contradicting its body's length was written"
            );
            return;
        }
    }
    runtime.block_on(async {
        use tokio::io::AsyncWriteExt;
        // hyper's server: the response under test, then a marker response that closes.
        const MARKER: &str = "HTTP/1.1 200 OK\r\nx-end: 1\r\n";
        let (mut client, server) = tokio::io::duplex(256 * 1024);
        let owned = data.to_vec();
        let service = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
            let resp = if req.uri().path() == "/end" {
                let mut r = http::Response::new(crate::request::error::full_body(""));
                r.headers_mut().insert("x-end", HeaderValue::from_static("1"));
                r
            } else {
                fuzz_response(&owned)
            };
            async move { Ok::<_, std::convert::Infallible>(resp) }
        });
        let served = tokio::spawn(
            hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(server), service),
        );
        let request = format!(
            "{method} / HTTP/1.{}\r\nhost: t\r\n{connection}\r\nGET /end HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n",
            if http10 { 0 } else { 1 }
        );
        client.write_all(request.as_bytes()).await.expect("written");
        let all = read_until(&mut client, |_| false, std::time::Duration::from_secs(5)).await;
        let _ = served.await;
        let hyper_bytes = match all.windows(MARKER.len()).rposition(|w| w == MARKER.as_bytes()) {
            Some(at) => &all[..at],
            None => &all[..],
        };

        // The fast path's writer.
        let (mut parts, mut body) = fuzz_response(data).into_parts();
        let mut out = Vec::new();
        let encoded = h1::encode_head(&mut parts, h1::body_length(&body), asked, &mut out);
        let ours = match encoded {
            Ok((framing, _)) => {
                let mut wire = Vec::new();
                let sent = h1::write_body(&mut wire, &mut out, &mut body, framing).await;
                Some((wire, sent.is_ok()))
            }
            Err(h1::BadHead) => None,
        };
        match ours {
            None => assert!(
                hyper_bytes.is_empty(),
                "the fast path refused a head hyper wrote: {:?}",
                String::from_utf8_lossy(hyper_bytes)
            ),
            Some((wire, true)) => assert_eq!(
                without_dates(&wire),
                without_dates(hyper_bytes),
                "the two servers wrote the response differently"
            ),
            // A body that does not fit its head: both end the connection after what they
            // wrote of it; the heads must agree.
            Some((wire, false)) => {
                let head = |b: &[u8]| {
                    let end = b.windows(4).position(|w| w == b"\r\n\r\n").map_or(b.len(), |p| p + 4);
                    without_dates(&b[..end])
                };
                assert_eq!(head(&wire), head(hyper_bytes), "the response heads differ");
            }
        }
    });
}

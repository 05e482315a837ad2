//! Micro-benchmarks of the gateway's per-request work.
//!
//! Run: `cargo bench -p gateway --bench request_path`.
//!
//! Each group asserts first that the benched call takes the intended path, so `cargo test
//! --benches` (which runs every bench once) also checks the set-up.
//! - `config_parse`: parsing a typical configuration (the reload path);
//! - `sanitize`: dropping every spelling of the identity headers from a request with ~20
//!   headers, some of them spoofed;
//! - `route`: path normalization + first-match over the reference routes and over 50 routes
//!   (a hit on the first, a hit on the last, the default);
//! - `session`: verifying a `gw_session` cookie and the memory-store lookup (hit, unknown id,
//!   tampered cookie), and the same with the `cookie` store (decrypting the cookie);
//! - `credential_cache`: the keyed digest of (username, password) + lookup (hit and miss).

use std::hint::black_box;
use std::path::Path;

use auth_core::User;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use gateway::__bench::{
    Access, CacheConfig, CacheHit, Config, CredentialCache, RouteConfig, Routes, Sanitizer,
    SessionConfig, SessionManager, normalize_path,
};
use http::{HeaderMap, HeaderName, HeaderValue};

/// A configuration in the shape of `gateway.reference.yaml` (without `chain:`, which the
/// loader's second pass parses through the backend registry).
const CONFIG: &str = r#"
server:
  listen: "127.0.0.1:8080"
  public_url: "http://127.0.0.1:8080"
  trusted_proxies: ["10.0.0.0/8"]
  header_read_timeout: 10s
admin:
  listen: "127.0.0.1:9090"
upstream:
  url: "http://127.0.0.1:9000"
  connect_timeout: 5s
  timeout: 60s
identity_headers:
  user: X-Remote-User
  email: X-Remote-Email
  groups: X-Remote-Groups
  extra:
    X-Remote-Department: department
session:
  store: memory
  secret: "bench-secret-bench-secret-bench-secret-0123"
  ttl: 8h
  idle_timeout: 1h
login:
  prefix: /_auth
  basic_auth: true
protection:
  max_failures: 10
  window: 15m
  lockout: 15m
cache:
  credentials_ttl: 60s
routes:
  - match: { path: /static/ }
    access: public
  - match: { path: /admin/, methods: [GET, POST] }
    access: { groups: [admins] }
  - match: { host: api.example.org, path: / }
    access: { users: [svc-reporting] }
  - match: { path: /internal/ }
    access: deny
  - match: { path: / }
    access: authenticated
"#;

fn config_parse(c: &mut Criterion) {
    let parsed: Config = serde_saphyr::from_str(CONFIG).expect("the bench config parses");
    assert_eq!(parsed.routes.len(), 5);
    assert_eq!(
        parsed.routes[1].access.value,
        Access::Groups(vec!["admins".into()])
    );

    c.bench_function("config_parse/typical", |b| {
        b.iter(|| {
            let config: Config = serde_saphyr::from_str(black_box(CONFIG)).expect("parses");
            black_box(config)
        });
    });
}

/// A browser-like request with 20 headers, three of them spoofed identity headers.
fn browser_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    for (name, value) in [
        ("host", "app.example.org"),
        (
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        ),
        (
            "accept",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        ),
        ("accept-language", "en-US,en;q=0.5"),
        ("accept-encoding", "gzip, deflate, br"),
        ("referer", "https://app.example.org/dashboard"),
        ("cookie", "gw_session=abc; theme=dark; _ga=GA1.2.3"),
        ("upgrade-insecure-requests", "1"),
        ("sec-fetch-dest", "document"),
        ("sec-fetch-mode", "navigate"),
        ("sec-fetch-site", "same-origin"),
        ("sec-fetch-user", "?1"),
        ("priority", "u=0, i"),
        ("cache-control", "max-age=0"),
        ("dnt", "1"),
        ("x-request-id", "5f0c6e1e-6a4e-4f53-9a53-0d9d4c1b2a3e"),
        ("connection", "keep-alive"),
        ("x-remote-user", "admin"),
        ("x-remote_user", "admin"),
        ("x-remote-groups", "admins"),
    ] {
        h.append(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    h
}

fn sanitize(c: &mut Criterion) {
    let config: Config = serde_saphyr::from_str(CONFIG).expect("the bench config parses");
    let sanitizer = Sanitizer::new(&config.identity_headers).expect("valid identity headers");
    let headers = browser_headers();
    let mut once = headers.clone();
    let dropped = sanitizer.sanitize(&mut once);
    assert!(dropped >= 3, "the spoofed headers are dropped ({dropped})");
    assert!(!once.keys().any(|k| k.as_str().starts_with("x-remote")));
    assert!(once.contains_key("user-agent"));

    c.bench_function("sanitize/20_headers_3_spoofed", |b| {
        b.iter_batched_ref(
            || headers.clone(),
            |h| black_box(sanitizer.sanitize(h)),
            BatchSize::SmallInput,
        );
    });
    let clean = once;
    c.bench_function("sanitize/17_clean_headers", |b| {
        b.iter_batched_ref(
            || clean.clone(),
            |h| black_box(sanitizer.sanitize(h)),
            BatchSize::SmallInput,
        );
    });
}

fn many_routes() -> Vec<RouteConfig> {
    let mut yaml = String::new();
    for i in 0..49 {
        yaml.push_str(&format!(
            "- match: {{ path: /app{i}/section/, methods: [GET, POST] }}\n  access: {{ groups: [team{i}] }}\n"
        ));
    }
    yaml.push_str("- match: { path: /last/ }\n  access: public\n");
    serde_saphyr::from_str(&yaml).expect("the 50 routes parse")
}

fn route(c: &mut Criterion) {
    let config: Config = serde_saphyr::from_str(CONFIG).expect("the bench config parses");
    let reference = Routes::compile(&config.routes).expect("the reference routes compile");
    let fifty = Routes::compile(&many_routes()).expect("the 50 routes compile");

    let decide = |routes: &Routes, path: &str| {
        let path = normalize_path(path).expect("a clean path");
        routes.decide(Some("app.example.org"), "GET", &path)
    };
    assert_eq!(decide(&reference, "/static/app.css").0, Some(0));
    assert_eq!(decide(&reference, "/orders/42/edit").0, Some(4));
    assert_eq!(decide(&fifty, "/app0/section/x").0, Some(0));
    assert_eq!(decide(&fifty, "/last/x").0, Some(49));
    assert_eq!(decide(&fifty, "/elsewhere").0, None);
    assert_eq!(normalize_path("/a/../b"), None);

    c.bench_function("route/normalize_only", |b| {
        b.iter(|| black_box(normalize_path(black_box("/orders//42/edit"))))
    });
    c.bench_function("route/reference_first", |b| {
        b.iter(|| black_box(decide(&reference, black_box("/static/app.css"))))
    });
    c.bench_function("route/reference_catch_all", |b| {
        b.iter(|| black_box(decide(&reference, black_box("/orders/42/edit"))))
    });
    c.bench_function("route/50_first", |b| {
        b.iter(|| black_box(decide(&fifty, black_box("/app0/section/x"))))
    });
    c.bench_function("route/50_last", |b| {
        b.iter(|| black_box(decide(&fifty, black_box("/last/x"))))
    });
    c.bench_function("route/50_default", |b| {
        b.iter(|| black_box(decide(&fifty, black_box("/elsewhere"))))
    });
}

fn session_config(store: &str) -> SessionConfig {
    serde_saphyr::from_str(&format!("store: {store}\n")).expect("the session config parses")
}

fn bench_user() -> User {
    let mut user = User::new("alice")
        .with_email("alice@example.org")
        .with_display_name("Alice Liddell")
        .with_groups(["staff", "admins", "reporting"]);
    user.backend = "bench".into();
    user
}

fn session(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let secret = [7u8; 32];
    let user = bench_user();
    for store in ["memory", "cookie"] {
        let manager = rt
            .block_on(SessionManager::from_config(
                &session_config(store),
                &secret,
                Path::new("."),
            ))
            .expect("the session manager builds");
        // Many live sessions, so the lookup is not into a one-entry map.
        for _ in 0..1000 {
            rt.block_on(manager.create(&user, Some("v1")))
                .expect("a session");
        }
        let cookie = rt
            .block_on(manager.create(&user, Some("v1")))
            .expect("a session");
        let mut tampered = cookie.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).expect("ASCII");
        let loaded = rt
            .block_on(manager.load(&cookie))
            .expect("the store answers");
        assert_eq!(
            loaded.map(|s| s.user.username.clone()),
            Some("alice".to_string())
        );
        assert!(
            rt.block_on(manager.load(&tampered))
                .expect("answers")
                .is_none()
        );

        c.bench_function(&format!("session/{store}_hit"), |b| {
            b.iter(|| rt.block_on(manager.load(black_box(&cookie))))
        });
        c.bench_function(&format!("session/{store}_tampered"), |b| {
            b.iter(|| rt.block_on(manager.load(black_box(&tampered))))
        });
        if store == "memory" {
            // A well-signed id the store never issued: only a fresh manager's secret can sign
            // it, so sign with the same secret in another manager.
            let other = rt
                .block_on(SessionManager::from_config(
                    &session_config(store),
                    &secret,
                    Path::new("."),
                ))
                .expect("builds");
            let unknown = rt.block_on(other.create(&user, None)).expect("a session");
            assert!(
                rt.block_on(manager.load(&unknown))
                    .expect("answers")
                    .is_none()
            );
            c.bench_function("session/memory_unknown_id", |b| {
                b.iter(|| rt.block_on(manager.load(black_box(&unknown))))
            });
        }
    }
}

fn credential_cache(c: &mut Criterion) {
    let cfg: CacheConfig =
        serde_saphyr::from_str("credentials_ttl: 30m\n").expect("the cache config parses");
    let cache = CredentialCache::from_config(&cfg);
    let user = bench_user();
    for i in 0..1000 {
        cache.insert_success(
            &format!("bench{i:03}"),
            format!("pw-{i}").as_bytes(),
            "bench",
            &user,
            None,
        );
    }
    assert!(matches!(
        cache.get("bench500", b"pw-500"),
        Some(CacheHit::Success(_))
    ));
    assert!(cache.get("bench500", b"pw-501").is_none());

    c.bench_function("credential_cache/hit_of_1000", |b| {
        b.iter(|| black_box(cache.get(black_box("bench500"), black_box(b"pw-500"))))
    });
    c.bench_function("credential_cache/miss_wrong_password", |b| {
        b.iter(|| black_box(cache.get(black_box("bench500"), black_box(b"pw-501"))))
    });
}

criterion_group!(
    benches,
    config_parse,
    sanitize,
    route,
    session,
    credential_cache
);
criterion_main!(benches);

//! Micro-benchmarks of the gateway's per-request work.
//!
//! Run: `cargo bench -p gateway --bench request_path`.
//!
//! Measured today: parsing a typical configuration (the reload path).
//!
//! To add once their branches are merged (the lead's list; each one a `bench_function` in its
//! own group, with an assertion first that the benched call takes the intended path):
//! - header sanitizing: stripping every spelling of the identity headers from a request with
//!   ~20 headers, some of them spoofed (`X-Remote-User`, `x-remote_user`...);
//! - route matching: path normalization + first-match over the reference routes and over
//!   ~50 routes, for a hit on the first, a hit on the last, and the default;
//! - session cookie: decoding/verifying a `gw_session` cookie and the memory-store lookup
//!   (hit, unknown id, tampered cookie);
//! - the credential cache: keyed digest of a Basic header + lookup (hit and miss).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use gateway::config::{Access, Config};

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

criterion_group!(benches, config_parse);
criterion_main!(benches);

//! The `jwt` backend against tokens signed by PyJWT (an independent implementation, in a cached
//! virtualenv: `support/pyjwt.rs`) with RSA, EC P-256 and Ed25519 keys, the JWKS served by a real
//! HTTP server (hyper on 127.0.0.1:0) that counts its fetches; and the classic JWT attacks.

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use auth_backends as _;
use auth_core::{Backend, BuildContext, Context, Credentials, Outcome, Registry, User};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use serde_json::{Value, json};
use support::pyjwt::{PyJwt, pyjwt};

const ISSUER: &str = "https://idp.example.org/realms/main";
const AUDIENCE: &str = "legacy-app";

/// The PyJWT helper and one set of keys for the whole binary (RSA generation is slow).
fn signer() -> Option<(PyJwt, &'static Value)> {
    static KEYS: OnceLock<Value> = OnceLock::new();
    let py = pyjwt()?;
    let keys = KEYS.get_or_init(|| py.keys());
    Some((py, keys))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn jwks(keys: &Value, names: &[&str]) -> String {
    json!({"keys": names.iter().map(|n| keys[n]["jwk"].clone()).collect::<Vec<_>>()}).to_string()
}

/// Good claims, valid for five minutes.
fn claims() -> Value {
    json!({
        "iss": ISSUER,
        "aud": ["account", AUDIENCE],
        "sub": "f3a9c0de-0001",
        "preferred_username": "alice",
        "email": "alice@example.org",
        "name": "Alice Example",
        "realm_access": {"roles": ["staff", "dev"]},
        "iat": now(),
        "exp": now() + 300,
    })
}

/// A sign request: key `name` (its `kid` too) with `alg`.
fn signed(keys: &Value, name: &str, alg: &str, claims: Value) -> Value {
    json!({"alg": alg, "key": keys[name]["private"], "headers": {"kid": name}, "claims": claims})
}

/// A JWKS server: serves `body` (or `status` when not 200) and counts the fetches.
struct Jwks {
    addr: SocketAddr,
    body: Arc<Mutex<(u16, String)>>,
    fetches: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Jwks {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Jwks {
    async fn start(body: String) -> Jwks {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let body = Arc::new(Mutex::new((200, body)));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (b, f) = (body.clone(), fetches.clone());
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let (b, f) = (b.clone(), f.clone());
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |_req: Request<Incoming>| {
                        f.fetch_add(1, Ordering::SeqCst);
                        let (status, text) = b.lock().unwrap().clone();
                        let mut r = Response::new(Full::new(Bytes::from(text)));
                        *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                        async move { Ok::<_, Infallible>(r) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Jwks {
            addr,
            body,
            fetches,
            task,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/certs", self.addr)
    }

    fn set(&self, status: u16, body: String) {
        *self.body.lock().unwrap() = (status, body);
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

fn options(url: &str, extra: Value) -> Value {
    let mut o = json!({
        "jwks_url": url,
        "issuer": ISSUER,
        "audiences": [AUDIENCE],
        "attributes": {
            "id": "sub",
            "username": "preferred_username",
            "email": "email",
            "name": "name",
            "groups": "realm_access.roles",
        },
    });
    for (k, v) in extra.as_object().unwrap() {
        o[k] = v.clone();
    }
    o
}

fn try_build(options: Value) -> Result<Arc<dyn Backend>, String> {
    let dir = std::env::temp_dir();
    Registry::from_inventory()
        .expect("registry")
        .build("jwt", options, &BuildContext::new("idp", dir))
        .map_err(|e| format!("{e}: {:?}", std::error::Error::source(&e)))
}

fn build(options: Value) -> Arc<dyn Backend> {
    try_build(options).expect("build")
}

async fn auth(backend: &Arc<dyn Backend>, token: &str) -> Outcome {
    backend
        .authenticate(&Credentials::Bearer(token.to_string()), &Context::default())
        .await
}

fn user(outcome: Outcome) -> User {
    match outcome {
        Outcome::Authenticated(user) => user,
        other => panic!("expected Authenticated, got {other:?}"),
    }
}

#[tokio::test]
async fn rs256_es256_and_eddsa_tokens_map_the_user() {
    let Some((py, keys)) = signer() else { return };
    let server = Jwks::start(jwks(keys, &["rsa", "ec", "ed"])).await;
    let backend = build(options(&server.url(), json!({})));
    let tokens = py.sign(&[
        signed(keys, "rsa", "RS256", claims()),
        signed(keys, "ec", "ES256", claims()),
        signed(keys, "ed", "EdDSA", claims()),
    ]);
    for token in &tokens {
        let alice = user(auth(&backend, token).await);
        assert_eq!(alice.id, "f3a9c0de-0001");
        assert_eq!(alice.username, "alice");
        assert_eq!(alice.email.as_deref(), Some("alice@example.org"));
        assert_eq!(alice.display_name.as_deref(), Some("Alice Example"));
        assert_eq!(
            alice.groups.iter().map(String::as_str).collect::<Vec<_>>(),
            ["dev", "staff"]
        );
    }
    assert_eq!(server.fetches(), 1, "the keys are cached");
    // Token logins make no session: there is nobody to restore.
    assert_eq!(backend.get_user("f3a9c0de-0001").await.unwrap(), None);
}

#[tokio::test]
async fn default_mapping_takes_the_username_from_sub() {
    let Some((py, keys)) = signer() else { return };
    let server = Jwks::start(jwks(keys, &["ed"])).await;
    let mut o = options(&server.url(), json!({}));
    o.as_object_mut().unwrap().remove("attributes");
    let backend = build(o);
    let token = py.sign(&[signed(keys, "ed", "EdDSA", claims())]);
    let u = user(auth(&backend, &token[0]).await);
    assert_eq!(u.username, "f3a9c0de-0001");
    assert_eq!(u.email.as_deref(), Some("alice@example.org"));
}

#[tokio::test]
async fn classic_attacks_are_rejected() {
    let Some((py, keys)) = signer() else { return };
    let server = Jwks::start(jwks(keys, &["rsa", "ec", "ed"])).await;
    let backend = build(options(&server.url(), json!({})));
    let mut wrong_aud = claims();
    wrong_aud["aud"] = json!("another-app");
    let mut wrong_iss = claims();
    wrong_iss["iss"] = json!("https://evil.example.org/realms/main");
    let mut no_exp = claims();
    no_exp.as_object_mut().unwrap().remove("exp");
    let mut future_iat = claims();
    future_iat["iat"] = json!(now() + 3600);
    let mut future_nbf = claims();
    future_nbf["nbf"] = json!(now() + 3600);
    let cases = [
        (
            "alg none",
            json!({"alg": "none", "headers": {"kid": "rsa"}, "claims": claims()}),
        ),
        (
            "HS256 keyed with the RSA public key",
            json!({"forge_hmac": keys["rsa"]["public"], "headers": {"kid": "rsa"}, "claims": claims()}),
        ),
        ("wrong audience", signed(keys, "rsa", "RS256", wrong_aud)),
        ("wrong issuer", signed(keys, "rsa", "RS256", wrong_iss)),
        ("no exp", signed(keys, "rsa", "RS256", no_exp)),
        ("iat in the future", signed(keys, "ec", "ES256", future_iat)),
        ("nbf in the future", signed(keys, "ec", "ES256", future_nbf)),
        // Signed by a key the issuer does not publish, under a kid it does.
        (
            "foreign key",
            json!({"alg": "RS256", "key": keys["rsa2"]["private"], "headers": {"kid": "rsa"}, "claims": claims()}),
        ),
        // The signing key embedded in the header (`jwk`) or pointed at (`jku`, `x5u`).
        (
            "key in the header",
            json!({"alg": "RS256", "key": keys["rsa2"]["private"], "claims": claims(),
                   "headers": {"kid": "rsa2", "jwk": keys["rsa2"]["jwk"],
                               "jku": "http://127.0.0.1:9/evil.json", "x5u": "http://127.0.0.1:9/x"}}),
        ),
        // The EC key signs, the header points at the RSA key: the JWK's type does not fit.
        (
            "kid of another key type",
            json!({"alg": "ES256", "key": keys["ec"]["private"], "headers": {"kid": "rsa"}, "claims": claims()}),
        ),
        // PS256 is a good algorithm, but not in this entry's allowed list.
        (
            "algorithm not allowed",
            signed(keys, "rsa", "PS256", claims()),
        ),
    ];
    let requests: Vec<Value> = cases.iter().map(|(_, r)| r.clone()).collect();
    let tokens = py.sign(&requests);
    for ((name, _), token) in cases.iter().zip(&tokens) {
        let outcome = auth(&backend, token).await;
        assert!(
            matches!(outcome, Outcome::Rejected),
            "{name}: expected Rejected, got {outcome:?}"
        );
    }
    // A signature bit flipped in a good token.
    let good = py.sign(&[signed(keys, "rsa", "RS256", claims())]).remove(0);
    user(auth(&backend, &good).await);
    let mut tampered = good.clone().into_bytes();
    let i = good.rfind('.').unwrap() + 5;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert!(matches!(auth(&backend, &tampered).await, Outcome::Rejected));
}

#[tokio::test]
async fn expiry_is_checked_with_the_leeway() {
    let Some((py, keys)) = signer() else { return };
    let server = Jwks::start(jwks(keys, &["ec"])).await;
    let backend = build(options(&server.url(), json!({"leeway": "60s"})));
    let mut within = claims();
    within["exp"] = json!(now() - 30);
    let mut beyond = claims();
    beyond["exp"] = json!(now() - 120);
    let tokens = py.sign(&[
        signed(keys, "ec", "ES256", within),
        signed(keys, "ec", "ES256", beyond),
    ]);
    user(auth(&backend, &tokens[0]).await);
    assert!(matches!(
        auth(&backend, &tokens[1]).await,
        Outcome::Rejected
    ));
}

#[tokio::test]
async fn what_is_not_a_jwt_is_not_found() {
    let Some((_, keys)) = signer() else { return };
    let server = Jwks::start(jwks(keys, &["rsa"])).await;
    let backend = build(options(&server.url(), json!({})));
    for token in [
        "opaque-api-token-1234",
        "a.b",
        "a.b.c.d",
        "bm90IGpzb24.eyJzdWIiOiJhIn0.c2ln",
        "eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiJhIn0.c2ln", // a header without alg
        "ey J.ab.cd",
    ] {
        let outcome = auth(&backend, token).await;
        assert!(
            matches!(outcome, Outcome::NotFound),
            "{token}: expected NotFound, got {outcome:?}"
        );
    }
    assert!(matches!(
        backend
            .authenticate(&Credentials::password("alice", "x"), &Context::default())
            .await,
        Outcome::NotFound
    ));
    assert_eq!(server.fetches(), 0, "no fetch for what is not a JWT");
}

#[tokio::test]
async fn an_unknown_kid_flood_costs_at_most_one_fetch() {
    let Some((py, keys)) = signer() else { return };
    let server = Jwks::start(jwks(keys, &["rsa"])).await;
    let backend = build(options(&server.url(), json!({"min_refresh": "2s"})));
    let good = py.sign(&[signed(keys, "rsa", "RS256", claims())]);
    user(auth(&backend, &good[0]).await);
    assert_eq!(server.fetches(), 1);
    tokio::time::sleep(Duration::from_millis(2100)).await;

    let requests: Vec<Value> = (0..50)
        .map(|i| {
            json!({"alg": "RS256", "key": keys["rsa"]["private"],
                   "headers": {"kid": format!("random-{i}-{}", now())}, "claims": claims()})
        })
        .collect();
    let flood = py.sign(&requests);
    let outcomes = futures_util::future::join_all(flood.iter().map(|t| auth(&backend, t))).await;
    for outcome in outcomes {
        assert!(matches!(outcome, Outcome::Rejected), "got {outcome:?}");
    }
    // Once more, sequentially: still within `min_refresh` of the flood's fetch.
    for t in &flood[..10] {
        assert!(matches!(auth(&backend, t).await, Outcome::Rejected));
    }
    assert_eq!(server.fetches(), 2, "one fetch for the whole flood");
}

#[tokio::test]
async fn a_new_key_is_picked_up_at_its_first_token() {
    let Some((py, keys)) = signer() else { return };
    let server = Jwks::start(jwks(keys, &["rsa"])).await;
    let backend = build(options(&server.url(), json!({"min_refresh": "200ms"})));
    let tokens = py.sign(&[
        signed(keys, "rsa", "RS256", claims()),
        signed(keys, "rsa2", "RS256", claims()),
    ]);
    user(auth(&backend, &tokens[0]).await);
    // The issuer rotates: rsa2 is published.
    server.set(200, jwks(keys, &["rsa", "rsa2"]));
    tokio::time::sleep(Duration::from_millis(300)).await;
    user(auth(&backend, &tokens[1]).await);
    assert_eq!(server.fetches(), 2);
}

#[tokio::test]
async fn a_failed_fetch_keeps_the_known_keys() {
    let Some((py, keys)) = signer() else { return };
    let server = Jwks::start(jwks(keys, &["ed"])).await;
    let backend = build(options(&server.url(), json!({"min_refresh": "100ms"})));
    let tokens = py.sign(&[
        signed(keys, "ed", "EdDSA", claims()),
        signed(keys, "ec", "ES256", claims()),
    ]);
    user(auth(&backend, &tokens[0]).await);
    server.set(500, "down".into());
    tokio::time::sleep(Duration::from_millis(150)).await;
    // The unknown kid triggers a fetch that fails: the known keys stay, the kid is refused.
    assert!(matches!(
        auth(&backend, &tokens[1]).await,
        Outcome::Rejected
    ));
    assert_eq!(server.fetches(), 2);
    user(auth(&backend, &tokens[0]).await);
}

#[tokio::test]
async fn no_keys_at_all_is_unavailable() {
    let Some((py, keys)) = signer() else { return };
    let server = Jwks::start(String::new()).await;
    server.set(503, "maintenance".into());
    let backend = build(options(&server.url(), json!({})));
    let token = py.sign(&[signed(keys, "ed", "EdDSA", claims())]);
    assert!(matches!(
        auth(&backend, &token[0]).await,
        Outcome::Unavailable(_)
    ));
    // Unreachable (nothing listens on the port once the server is gone).
    let url = server.url();
    drop(server);
    let backend = build(options(&url, json!({})));
    assert!(matches!(
        auth(&backend, &token[0]).await,
        Outcome::Unavailable(_)
    ));
    assert!(backend.health().await.is_err());
}

#[tokio::test]
async fn jwks_file_relative_to_the_config() {
    let Some((py, keys)) = signer() else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("jwks.json"), jwks(keys, &["ec"])).unwrap();
    let mut o = options("unused", json!({"jwks_file": "jwks.json"}));
    o.as_object_mut().unwrap().remove("jwks_url");
    let backend = Registry::from_inventory()
        .unwrap()
        .build("jwt", o, &BuildContext::new("idp", dir.path()))
        .expect("build");
    let token = py.sign(&[signed(keys, "ec", "ES256", claims())]);
    assert_eq!(user(auth(&backend, &token[0]).await).username, "alice");
}

#[test]
fn build_refuses_unsafe_or_incomplete_options() {
    let url = "http://127.0.0.1:9/certs";
    let cases = [
        (json!({"algorithms": ["HS256"]}), "HMAC"),
        (json!({"algorithms": ["RS256", "hs512"]}), "HMAC"),
        (json!({"algorithms": ["none"]}), "`none`"),
        (json!({"algorithms": ["RS1"]}), "unknown algorithm"),
        (json!({"algorithms": []}), "at least one algorithm"),
        (json!({"audiences": []}), "audiences"),
        (json!({"min_refresh": "0s"}), "min_refresh"),
        (json!({"issuer": ""}), "issuer"),
        (json!({"jwks_file": "jwks.json"}), "exactly one"),
        (json!({"jwks_url": "ftp://idp/certs"}), "http"),
    ];
    for (extra, expected) in cases {
        let err = try_build(options(url, extra.clone()))
            .err()
            .unwrap_or_else(|| panic!("{extra} built"));
        assert!(err.contains(expected), "{extra}: {err}");
    }
    let mut neither = options(url, json!({}));
    neither.as_object_mut().unwrap().remove("jwks_url");
    let err = try_build(neither).err().expect("no key source built");
    assert!(err.contains("exactly one"), "{err}");
    try_build(options(
        url,
        json!({"algorithms": ["PS256", "ES384", "EdDSA"]}),
    ))
    .expect("asymmetric algorithms build");
}

#[tokio::test]
async fn a_key_is_used_only_for_what_its_jwk_says() {
    let Some((py, keys)) = signer() else { return };
    let mut rsa = keys["rsa"]["jwk"].clone();
    rsa["alg"] = json!("RS384");
    let mut ed = keys["ed"]["jwk"].clone();
    ed["use"] = json!("enc");
    let server = Jwks::start(json!({"keys": [rsa, ed]}).to_string()).await;
    let backend = build(options(
        &server.url(),
        json!({"algorithms": ["RS256", "RS384", "EdDSA"]}),
    ));
    let tokens = py.sign(&[
        signed(keys, "rsa", "RS256", claims()),
        signed(keys, "ed", "EdDSA", claims()),
        signed(keys, "rsa", "RS384", claims()),
    ]);
    assert!(matches!(
        auth(&backend, &tokens[0]).await,
        Outcome::Rejected
    ));
    assert!(matches!(
        auth(&backend, &tokens[1]).await,
        Outcome::Rejected
    ));
    user(auth(&backend, &tokens[2]).await);
}

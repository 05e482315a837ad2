//! `type: static`: built from YAML through the registry, as the gateway does.

use std::sync::Arc;
use std::time::{Duration, Instant};

use auth_core::password::{credential_version, hash_password};
use auth_core::{Backend, BuildContext, Context, Credentials, Outcome, Registry};

// Links the backends into this test binary so that `inventory` sees them.
use auth_backends as _;

fn build(yaml: &str) -> Result<Arc<dyn Backend>, String> {
    let registry = Registry::from_inventory().expect("registry");
    let reg = registry.get("static").expect("static is registered");
    let value: serde_json::Value = serde_saphyr::from_str(yaml).map_err(|e| e.to_string())?;
    let mut de = <dyn erased_serde::Deserializer>::erase(value);
    let factory = (reg.parse)(&mut de).map_err(|e| e.to_string())?;
    factory
        .build(&BuildContext::new("demo", "/nonexistent"))
        .map_err(|e| e.to_string())
}

async fn login(backend: &dyn Backend, user: &str, password: &str) -> Outcome {
    backend
        .authenticate(&Credentials::password(user, password), &Context::default())
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_from_yaml_log_in_with_their_attributes() {
    let hash = hash_password("wonderland").expect("hash");
    let yaml = format!(
        r#"
users:
  alice:
    password: "{hash}"
    email: alice@example.org
    name: Alice Liddell
    groups: [staff, admins]
    attributes: {{ department: R&D, phone: ["1", "2"] }}
  bob: {{ password: "{hash}" }}
"#
    );
    let backend = build(&yaml).expect("builds");

    let Outcome::Authenticated(user) = login(&*backend, "alice", "wonderland").await else {
        panic!("alice should log in");
    };
    assert_eq!(user.id, "alice");
    assert_eq!(user.username, "alice");
    assert_eq!(user.email.as_deref(), Some("alice@example.org"));
    assert_eq!(user.display_name.as_deref(), Some("Alice Liddell"));
    assert!(user.in_group("staff") && user.in_group("admins"));
    assert_eq!(user.attribute("department"), Some("R&D"));
    assert_eq!(user.attributes["phone"], ["1", "2"]);
    assert_eq!(user.credential_version, Some(credential_version(&hash)));

    assert!(matches!(
        login(&*backend, "alice", "Wonderland").await,
        Outcome::Rejected
    ));
    assert!(matches!(
        login(&*backend, "carol", "wonderland").await,
        Outcome::NotFound
    ));
    assert!(matches!(
        backend
            .authenticate(&Credentials::Bearer("t".into()), &Context::default())
            .await,
        Outcome::NotFound
    ));

    let restored = backend
        .get_user("alice")
        .await
        .expect("get_user")
        .expect("alice");
    assert_eq!(restored, user);
    assert_eq!(backend.get_user("carol").await.expect("get_user"), None);
}

#[tokio::test]
async fn plaintext_passwords_need_allow_plaintext() {
    let err = build("users:\n  demo: { password: demo-pass }\n")
        .err()
        .expect("refused");
    assert!(
        err.contains("demo") && err.contains("allow_plaintext"),
        "{err}"
    );
    assert!(!err.contains("demo-pass"), "the password leaked: {err}");

    let backend =
        build("allow_plaintext: true\nusers:\n  demo: { password: demo-pass }\n").expect("builds");
    assert!(matches!(
        login(&*backend, "demo", "demo-pass").await,
        Outcome::Authenticated(_)
    ));
    assert!(matches!(
        login(&*backend, "demo", "demo-pas").await,
        Outcome::Rejected
    ));
}

#[test]
fn plaintext_users_are_listed_for_gateway_check() {
    let hash = hash_password("x").expect("hash");
    let yaml = format!(
        "allow_plaintext: true\nusers:\n  a: {{ password: secret }}\n  b: {{ password: \"{hash}\" }}\n  c: {{ password: other }}\n"
    );
    let options: auth_backends::static_users::StaticUsers =
        serde_saphyr::from_str(&yaml).expect("parses");
    assert_eq!(options.plaintext_users(), ["a", "c"]);
}

#[test]
fn bad_options_are_refused() {
    let err = build("users: {}\nallow_plain: true\n")
        .err()
        .expect("unknown key");
    assert!(err.contains("allow_plain"), "{err}");
    let err = build("users:\n  a: { password: x, mail: a@b }\n")
        .err()
        .expect("unknown key");
    assert!(err.contains("mail"), "{err}");
    let err = build("users:\n  a: { password: \"pbkdf2_sha256$99999999$s$AAAA\" }\n")
        .err()
        .expect("absurd cost");
    assert!(err.contains("absurd"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_users_cost_about_a_wrong_password() {
    let hash = hash_password("wonderland").expect("hash");
    let backend = build(&format!("users:\n  alice: {{ password: \"{hash}\" }}\n")).expect("builds");
    let time = |user: &'static str| {
        let backend = Arc::clone(&backend);
        async move {
            let mut times = Vec::new();
            for _ in 0..3 {
                let started = Instant::now();
                login(&*backend, user, "guess").await;
                times.push(started.elapsed());
            }
            times.sort();
            times[1]
        }
    };
    let wrong = time("alice").await;
    let unknown = time("nobody").await;
    assert!(
        wrong > Duration::from_millis(5),
        "wrong password took {wrong:?}"
    );
    assert!(
        unknown * 10 > wrong,
        "unknown user {unknown:?} vs wrong password {wrong:?}: no dummy verification?"
    );
}

/// Every built-in backend's literal defaults deserialize (the gateway should run this check at
/// start-up: a bad default is the backend author's bug, not the operator's).
#[test]
fn every_built_in_default_parses() {
    let registry = Registry::from_inventory().expect("registry");
    assert!(registry.iter().count() > 3, "the built-in types are linked");
    if let Err(errors) = registry.check_defaults() {
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        panic!("{}", shown.join("\n"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_and_truncated_passwords_never_log_in() {
    // `htpasswd -nbB -C 4 u ""` and `htpasswd -nbB -C 4 u "$PW72"`, PW72 below.
    let empty = "$2y$04$aYu0/dOZtfmKQMaK.8AM1esTlD524tvxW.V44JQDK6CZleKMqqXb6";
    let bcrypt72 = "$2y$04$SBvQWCkhpQSpBI.k8YEKPehrfmxqGb4uU0nOsTLmxFT1qW0IvSzzC";
    let pw72 = format!("carl-bcrypt-{}", "x".repeat(60));
    let backend = build(&format!(
        "users:\n  nopw: {{ password: \"{empty}\" }}\n  carl: {{ password: \"{bcrypt72}\" }}\n"
    ))
    .expect("builds");
    let out = login(&*backend, "nopw", "").await;
    assert!(matches!(out, Outcome::Rejected), "empty password: {out:?}");
    let out = login(&*backend, "carl", &pw72).await;
    assert!(matches!(out, Outcome::Authenticated(_)), "{out:?}");
    let out = login(&*backend, "carl", &format!("{pw72}-and-more")).await;
    assert!(matches!(out, Outcome::Rejected), "72-byte prefix: {out:?}");
}

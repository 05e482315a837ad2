//! The dictionary backend through the registry, as the gateway uses it: parse YAML options,
//! build, authenticate.

use std::sync::Arc;

use auth_core::{Backend, BuildContext, Context, Credentials, Outcome, Registry};
use dictionary_backend::Dictionary;

const YAML: &str = "\
users:
  alice: wonderland
  bob: builder
groups:
  alice: [staff, readers]
";

/// Builds the backend the way the gateway does: through the `dictionary` registration.
fn backend(yaml: &str) -> Arc<dyn Backend> {
    let registry = Registry::from_inventory().unwrap();
    let reg = registry.get("dictionary").unwrap();
    let options: serde_json::Value = serde_saphyr::from_str(yaml).expect("valid YAML");
    let mut de = <dyn erased_serde::Deserializer>::erase(options);
    (reg.parse)(&mut de)
        .expect("parses")
        .build(&BuildContext::new("demo", "."))
        .expect("builds")
}

async fn login(b: &dyn Backend, user: &str, password: &str) -> Outcome {
    b.authenticate(&Credentials::password(user, password), &Context::default())
        .await
}

#[test]
fn options_parse_from_yaml() {
    let d: Dictionary = serde_saphyr::from_str(YAML).unwrap();
    assert_eq!(d.users["alice"].expose(), "wonderland");
    assert_eq!(d.groups["alice"], ["staff", "readers"]);
    assert!(!d.case_insensitive);
    let shown = format!("{:?}", d.users);
    assert!(
        !shown.contains("wonderland") && !shown.contains("builder"),
        "{shown}"
    );

    let err = serde_saphyr::from_str::<Dictionary>("users: {}\ncase_sensitive: true\n")
        .err()
        .expect("unknown key refused")
        .to_string();
    assert!(
        err.contains("unknown field `case_sensitive`") && err.contains("line 2"),
        "{err}"
    );
}

#[tokio::test]
async fn alice_logs_in_with_her_groups() {
    let b = backend(YAML);
    match login(&*b, "alice", "wonderland").await {
        Outcome::Authenticated(user) => {
            assert_eq!(user.username, "alice");
            assert_eq!(user.id, "alice");
            assert!(user.in_group("staff") && user.in_group("readers"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn bobs_wrong_password_is_rejected() {
    let b = backend(YAML);
    assert!(matches!(
        login(&*b, "bob", "wonderland").await,
        Outcome::Rejected
    ));
    assert!(matches!(login(&*b, "bob", "").await, Outcome::Rejected));
    assert!(matches!(
        login(&*b, "bob", "builder").await,
        Outcome::Authenticated(_)
    ));
}

#[tokio::test]
async fn unknown_users_are_not_found() {
    let b = backend(YAML);
    assert!(matches!(
        login(&*b, "carol", "wonderland").await,
        Outcome::NotFound
    ));
    assert!(matches!(
        login(&*b, "Alice", "wonderland").await,
        Outcome::NotFound
    ));
    let bearer = b
        .authenticate(
            &Credentials::Bearer("wonderland".into()),
            &Context::default(),
        )
        .await;
    assert!(matches!(bearer, Outcome::NotFound));
}

#[tokio::test]
async fn case_insensitive_usernames_keep_the_configured_spelling() {
    let b = backend(&format!("{YAML}case_insensitive: true\n"));
    match login(&*b, "ALICE", "wonderland").await {
        Outcome::Authenticated(user) => assert_eq!(user.username, "alice"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        login(&*b, "ALICE", "WONDERLAND").await,
        Outcome::Rejected
    ));
}

#[tokio::test]
async fn get_user_restores_known_users_only() {
    let b = backend(YAML);
    let alice = b.get_user("alice").await.unwrap().expect("known");
    assert!(alice.in_group("staff"));
    assert_eq!(
        b.get_user("bob").await.unwrap().map(|u| u.groups.len()),
        Some(0)
    );
    assert_eq!(b.get_user("carol").await.unwrap(), None);
}

#[test]
fn the_registry_lists_dictionary_with_its_options() {
    let registry = Registry::from_inventory().unwrap();
    assert!(registry.names().any(|n| n == "dictionary"));
    let reg = registry.get("dictionary").unwrap();
    assert_eq!(reg.rust_path, "dictionary_backend::Dictionary");
    assert!(reg.description.starts_with("Users and passwords listed"));
    let users = reg.options.iter().find(|o| o.name == "users").unwrap();
    assert!(users.required && users.secret);
    let ci = reg
        .options
        .iter()
        .find(|o| o.name == "case_insensitive")
        .unwrap();
    assert_eq!((ci.required, ci.default), (false, Some("false")));
    let err = registry.get("dictionay").unwrap_err().to_string();
    assert!(err.contains("did you mean `dictionary`?"), "{err}");
}

//! Loading a config and building its chain: options reach the backend, policies reach the
//! chain, and the chain authenticates.

use std::path::Path;

use auth_core::{BuildContext, ChainOutcome, Context, Credentials, OnError, OnReject, Provision};

const CONFIG: &str = r#"
upstream:
  url: http://127.0.0.1:9000
data_dir: state
chain:
  - name: people
    type: table
    on_reject: stop
    on_error: next
    timeout: 750ms
    options:
      path: people.txt
      users:
        alice: wonderland
  - name: fallback
    type: table
    provision: create
    options:
      path: fallback.txt
      users:
        bob: builder
"#;

#[tokio::test]
async fn the_built_chain_uses_each_entrys_options_and_policies() {
    let mut loaded =
        gateway::__test::load_str("inline.yaml", CONFIG, Path::new("/etc/gw")).expect("loads");
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(loaded.users_db_url(), "sqlite:///etc/gw/state/users.db");
    let chain =
        gateway::__test::build_chain(&mut loaded, &BuildContext::default()).expect("builds");

    let names: Vec<_> = chain.entries().iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["people", "fallback"]);
    let people = &chain.entries()[0];
    assert_eq!(people.type_name, "table");
    assert_eq!(people.on_reject, OnReject::Stop);
    assert_eq!(people.on_error, OnError::Next);
    assert_eq!(people.timeout, std::time::Duration::from_millis(750));
    assert_eq!(chain.entries()[1].provision, Provision::Create);

    let ctx = Context::default();
    let bob = chain
        .authenticate(&Credentials::password("bob", "builder"), &ctx)
        .await;
    match bob.outcome {
        ChainOutcome::Authenticated { entry, user } => {
            assert_eq!(entry, "fallback");
            assert_eq!(user.username, "bob");
        }
        other => panic!("bob should authenticate through fallback: {other:?}"),
    }
    let wrong = chain
        .authenticate(&Credentials::password("alice", "nope"), &ctx)
        .await;
    assert!(
        matches!(wrong.outcome, ChainOutcome::Rejected),
        "{:?}",
        wrong.outcome
    );
    assert_eq!(
        wrong.trace.len(),
        1,
        "on_reject: stop ends the chain at `people`"
    );
}

#[test]
fn build_chain_takes_the_options_so_a_second_build_is_an_error() {
    let mut loaded =
        gateway::__test::load_str("inline.yaml", CONFIG, Path::new(".")).expect("loads");
    gateway::__test::build_chain(&mut loaded, &BuildContext::default()).expect("first build");
    let err = gateway::__test::build_chain(&mut loaded, &BuildContext::default())
        .expect_err("options were taken");
    assert!(
        err.to_string()
            .starts_with("inline.yaml:6:11: entry `people` has no parsed options"),
        "{err}"
    );
}

#[test]
fn default_users_db_lives_in_data_dir_next_to_the_config() {
    let text = CONFIG.replace("data_dir: state\n", "");
    let loaded = gateway::__test::load_str("x.yaml", &text, Path::new("/srv/gw")).expect("loads");
    assert_eq!(loaded.data_dir(), Path::new("/srv/gw/data"));
    assert_eq!(loaded.users_db_url(), "sqlite:///srv/gw/data/users.db");
}

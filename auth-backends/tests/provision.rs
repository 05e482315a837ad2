//! Provisioning into the local user store on real SQLite, PostgreSQL and MariaDB (see
//! tests/store_common for the URLs and the skip rule).

use auth_backends::provision;
use auth_core::{Provision, User};

mod store_common;

use store_common::{Db, open};

fn carol(groups: &[&str], dept: &str) -> User {
    let mut user = User::new("carol")
        .with_email("carol@example.org")
        .with_display_name("Carol")
        .with_groups(groups.iter().copied());
    user.id = "uid=carol,ou=people".into();
    user.attributes
        .insert("department".into(), vec![dept.into()]);
    user
}

fn names(user: &auth_backends::StoredUser) -> Vec<&str> {
    user.groups.iter().map(String::as_str).collect()
}

async fn provisioning(db: Db) {
    let Some(t) = open(db, "t_prov").await else {
        return;
    };
    let store = &t.store;

    // None: nothing is stored.
    provision(store, &carol(&["a"], "R&D"), "directory", Provision::None)
        .await
        .expect("none");
    assert!(store.list().await.expect("list").is_empty());

    // First login creates, from entry "directory", without a local password.
    provision(
        store,
        &carol(&["staff"], "R&D"),
        "directory",
        Provision::Update,
    )
    .await
    .expect("first login");
    let listed = store.list().await.expect("list");
    assert_eq!(listed.len(), 1);
    let first = &listed[0];
    assert_eq!(first.username, "carol");
    assert_eq!(first.source, "directory");
    assert_eq!(first.password_hash, None);
    assert_eq!(first.email.as_deref(), Some("carol@example.org"));
    assert_eq!(names(first), ["staff"]);
    assert_eq!(first.attributes["department"], ["R&D"]);
    assert!(first.last_login_at.is_some());

    // A later login with `update` refreshes groups and attributes.
    provision(
        store,
        &carol(&["admins", "ops"], "Ops"),
        "directory",
        Provision::Update,
    )
    .await
    .expect("second login");
    let second = store
        .get_by_username("carol")
        .await
        .expect("get")
        .expect("carol");
    assert_eq!(names(&second), ["admins", "ops"]);
    assert_eq!(second.attributes["department"], ["Ops"]);
    assert_eq!(second.id, first.id);
    assert_eq!(second.password_hash, None);

    // With `create`, an existing user is left as it is.
    provision(
        store,
        &carol(&["nobody"], "Sales"),
        "directory",
        Provision::Create,
    )
    .await
    .expect("create-only login");
    let third = store
        .get_by_username("carol")
        .await
        .expect("get")
        .expect("carol");
    assert_eq!(names(&third), ["admins", "ops"]);
    assert_eq!(third.attributes["department"], ["Ops"]);

    // `create` on a first login does create.
    let mut dave = User::new("dave").with_groups(["x"]);
    dave.email = None;
    provision(store, &dave, "hr-service", Provision::Create)
        .await
        .expect("dave");
    let dave = store
        .get_by_username("dave")
        .await
        .expect("get")
        .expect("dave");
    assert_eq!(dave.source, "hr-service");
    assert_eq!(names(&dave), ["x"]);
    assert_eq!(dave.email, None);

    // A local user with the same name keeps its password and source.
    store
        .add("erin", Some("pw"), None, None, &[])
        .await
        .expect("add erin");
    provision(
        store,
        &User::new("erin").with_groups(["g"]),
        "directory",
        Provision::Update,
    )
    .await
    .expect("erin");
    let erin = store
        .get_by_username("erin")
        .await
        .expect("get")
        .expect("erin");
    assert!(erin.password_hash.is_some());
    assert_eq!(erin.source, "local");
    assert_eq!(names(&erin), ["g"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisioning_sqlite() {
    provisioning(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisioning_postgres() {
    provisioning(Db::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisioning_mysql() {
    provisioning(Db::MySql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_logins_create_one_user() {
    let Some(t) = open(Db::Postgres, "t_prov").await else {
        return;
    };
    let store = &t.store;
    let user = carol(&["staff"], "R&D");
    let logins = (0..8).map(|_| provision(store, &user, "directory", Provision::Update));
    for result in futures_util::future::join_all(logins).await {
        result.expect("provision");
    }
    assert_eq!(store.list().await.expect("list").len(), 1);
}

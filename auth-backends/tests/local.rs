//! The local user store on real SQLite, PostgreSQL and MariaDB, and the `local` backend on it.
//! Each test uses its own table and drops it (tests/store_common: URLs and the skip rule).

use std::sync::Arc;
use std::time::{Duration, Instant};

use auth_backends::{StoreError, UserStore};
use auth_core::{Backend, BuildContext, Context, Credentials, Outcome, Provision, Registry, User};

mod store_common;

use store_common::{Db, open};

fn groups(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

async fn store_round_trip(db: Db) {
    let Some(t) = open(db, "t_local").await else {
        return;
    };
    let store = &t.store;

    let alice = store
        .add(
            "alice",
            Some("wonderland"),
            Some("alice@example.org"),
            Some("Alice Liddell"),
            &groups(&["staff", "admins"]),
        )
        .await
        .expect("add alice");
    assert_eq!(alice.username, "alice");
    assert_eq!(alice.email.as_deref(), Some("alice@example.org"));
    assert_eq!(alice.display_name.as_deref(), Some("Alice Liddell"));
    assert!(
        alice
            .password_hash
            .as_deref()
            .is_some_and(|h| h.starts_with("$argon2id$"))
    );
    assert!(
        !format!("{alice:?}").contains("argon2"),
        "Debug shows the hash"
    );
    assert_eq!(alice.source, "local");
    assert!(!alice.disabled);
    assert!(alice.groups.contains("staff") && alice.groups.contains("admins"));
    assert!(alice.created_at > 1_700_000_000 && alice.last_login_at.is_none());

    assert!(matches!(
        store.add("alice", Some("x"), None, None, &[]).await,
        Err(StoreError::Exists(_))
    ));
    let zoe = store
        .add("zoë", None, None, Some("Zoë Ågren"), &[])
        .await
        .expect("add zoë");
    assert_eq!(zoe.password_hash, None);
    assert_eq!(zoe.display_name.as_deref(), Some("Zoë Ågren"));

    let listed: Vec<String> = store
        .list()
        .await
        .expect("list")
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(listed, ["alice", "zoë"]);
    assert_eq!(
        store.get_by_id(alice.id).await.expect("get"),
        Some(alice.clone())
    );
    assert_eq!(store.get_by_username("nobody").await.expect("get"), None);
    assert_eq!(store.get_by_username("ALICE").await.expect("get"), None);

    store
        .set_password("alice", "looking-glass")
        .await
        .expect("passwd");
    let changed = store
        .get_by_username("alice")
        .await
        .expect("get")
        .expect("alice");
    assert_ne!(changed.password_hash, alice.password_hash);
    assert!(matches!(
        store.set_password("nobody", "x").await,
        Err(StoreError::NoSuchUser(_))
    ));

    store.disable("alice").await.expect("disable");
    store.disable("alice").await.expect("disable twice");
    assert!(
        store
            .get_by_username("alice")
            .await
            .expect("get")
            .expect("alice")
            .disabled
    );
    store.enable("alice").await.expect("enable");
    assert!(
        !store
            .get_by_username("alice")
            .await
            .expect("get")
            .expect("alice")
            .disabled
    );
    assert!(matches!(
        store.disable("nobody").await,
        Err(StoreError::NoSuchUser(_))
    ));

    store.record_login("alice").await.expect("record");
    let logged = store
        .get_by_username("alice")
        .await
        .expect("get")
        .expect("alice");
    assert!(logged.last_login_at.is_some_and(|t| t >= alice.created_at));

    store.delete("zoë").await.expect("delete");
    assert_eq!(store.get_by_username("zoë").await.expect("get"), None);
    assert!(matches!(
        store.delete("zoë").await,
        Err(StoreError::NoSuchUser(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_round_trip_sqlite() {
    store_round_trip(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_round_trip_postgres() {
    store_round_trip(Db::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_round_trip_mysql() {
    store_round_trip(Db::MySql).await;
}

#[tokio::test]
async fn bad_urls_and_table_names_are_refused() {
    assert!(matches!(
        UserStore::connect("redis://127.0.0.1").await,
        Err(StoreError::Config(_))
    ));
    assert!(matches!(
        UserStore::connect_with_table("sqlite::memory:", "users; DROP TABLE x").await,
        Err(StoreError::Config(_))
    ));
    let store = UserStore::connect("sqlite::memory:").await.expect("memory");
    store.add("a", None, None, None, &[]).await.expect("add");
    assert_eq!(store.list().await.expect("list").len(), 1);
}

fn build_local(store: Option<UserStore>) -> Result<Arc<dyn Backend>, String> {
    let registry = Registry::from_inventory().expect("registry");
    let reg = registry.get("local").expect("local is registered");
    let mut de = <dyn erased_serde::Deserializer>::erase(serde_json::json!({}));
    let factory = (reg.parse)(&mut de).map_err(|e| e.to_string())?;
    let mut ctx = BuildContext::new("local", "/");
    if let Some(store) = store {
        ctx.provide(Arc::new(store));
    }
    factory.build(&ctx).map_err(|e| e.to_string())
}

async fn login(backend: &dyn Backend, user: &str, password: &str) -> Outcome {
    backend
        .authenticate(&Credentials::password(user, password), &Context::default())
        .await
}

async fn local_backend(db: Db) {
    let Some(t) = open(db, "t_local").await else {
        return;
    };
    let store = &t.store;
    let alice = store
        .add("alice", Some("wonderland"), None, None, &groups(&["staff"]))
        .await
        .expect("add");
    store
        .add("nopass", None, None, None, &[])
        .await
        .expect("add");
    auth_backends::provision(
        store,
        &User::new("mirrored"),
        "directory",
        Provision::Create,
    )
    .await
    .expect("provision");
    let backend = build_local(Some(store.clone())).expect("builds");

    let Outcome::Authenticated(user) = login(&*backend, "alice", "wonderland").await else {
        panic!("alice logs in");
    };
    assert_eq!(user.id, alice.id.to_string());
    assert!(user.in_group("staff"));
    assert!(
        store
            .get_by_username("alice")
            .await
            .expect("get")
            .expect("a")
            .last_login_at
            .is_some()
    );
    assert!(matches!(
        login(&*backend, "alice", "Wonderland").await,
        Outcome::Rejected
    ));
    assert!(matches!(
        login(&*backend, "nobody", "x").await,
        Outcome::NotFound
    ));
    assert!(matches!(
        login(&*backend, "nopass", "").await,
        Outcome::NotFound
    ));
    assert!(matches!(
        login(&*backend, "mirrored", "").await,
        Outcome::NotFound
    ));

    assert_eq!(
        backend.get_user(&user.id).await.expect("get"),
        Some(user.clone())
    );
    assert_eq!(backend.get_user("not-a-number").await.expect("get"), None);

    store
        .set_password("alice", "looking-glass")
        .await
        .expect("passwd");
    let now = backend
        .get_user(&user.id)
        .await
        .expect("get")
        .expect("alice");
    assert_ne!(now.credential_version, user.credential_version);

    store.disable("alice").await.expect("disable");
    let denied = login(&*backend, "alice", "looking-glass").await;
    assert!(matches!(denied, Outcome::Denied(_)), "{denied:?}");
    assert!(matches!(
        login(&*backend, "alice", "wrong").await,
        Outcome::Rejected
    ));
    assert_eq!(backend.get_user(&user.id).await.expect("get"), None);

    store.enable("alice").await.expect("enable");
    assert!(backend.get_user(&user.id).await.expect("get").is_some());
    store.delete("alice").await.expect("delete");
    assert_eq!(backend.get_user(&user.id).await.expect("get"), None);
    assert!(backend.health().await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_backend_sqlite() {
    local_backend(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_backend_postgres() {
    local_backend(Db::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_backend_mysql() {
    local_backend(Db::MySql).await;
}

#[test]
fn local_without_a_store_is_a_build_error() {
    let err = build_local(None).err().expect("refused");
    assert!(err.contains("users_db"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_users_cost_about_a_wrong_password() {
    let Some(t) = open(Db::Sqlite, "t_local").await else {
        return;
    };
    t.store
        .add("alice", Some("wonderland"), None, None, &[])
        .await
        .expect("add");
    let backend = build_local(Some(t.store.clone())).expect("builds");
    let time = async |user: &str| {
        let mut times = Vec::new();
        for _ in 0..3 {
            let started = Instant::now();
            login(&*backend, user, "guess").await;
            times.push(started.elapsed());
        }
        times.sort();
        times[1]
    };
    let wrong = time("alice").await;
    let unknown = time("nobody").await;
    assert!(wrong > Duration::from_millis(5), "{wrong:?}");
    assert!(
        unknown * 10 > wrong,
        "unknown {unknown:?} vs wrong {wrong:?}"
    );
}

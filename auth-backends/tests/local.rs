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

async fn key_login(backend: &dyn Backend, key: &str) -> Outcome {
    let credentials = Credentials::ApiKey {
        header: "x-api-key".into(),
        key: key.into(),
    };
    backend
        .authenticate(&credentials, &Context::default())
        .await
}

/// Keys made by the store: shown once, stored hashed, found by id, refused when wrong, revoked
/// or expired, denied for a disabled user, gone with their user.
async fn api_keys(db: Db) {
    let Some(t) = open(db, "t_keys").await else {
        return;
    };
    let store = &t.store;
    store
        .add("ci-bot", None, None, None, &groups(&["deploy"]))
        .await
        .expect("add");
    store
        .add("other", Some("other-password"), None, None, &[])
        .await
        .expect("add");
    let backend = build_local(Some(store.clone())).expect("builds");

    let (key, stored) = store
        .add_api_key("ci-bot", Some("ci"), None)
        .await
        .expect("key");
    let text = key.to_string();
    assert!(text.starts_with(&format!("ag_{}_", stored.id)), "{text}");
    assert!(
        !format!("{key:?}").contains(&text[20..]),
        "Debug shows the secret"
    );
    let Outcome::Authenticated(user) = key_login(&*backend, &text).await else {
        panic!("the key logs in");
    };
    assert_eq!(user.username, "ci-bot");
    assert!(user.in_group("deploy"));

    // Wrong secret for a known id: rejected; unknown id or not a store key: not found.
    let last = if text.ends_with('0') { "1" } else { "0" };
    let wrong = format!("{}{last}", &text[..text.len() - 1]);
    assert!(matches!(
        key_login(&*backend, &wrong).await,
        Outcome::Rejected
    ));
    let unknown = format!("ag_0000000000000000_{}", &text[text.len() - 64..]);
    assert!(matches!(
        key_login(&*backend, &unknown).await,
        Outcome::NotFound
    ));
    assert!(matches!(
        key_login(&*backend, "not-a-key").await,
        Outcome::NotFound
    ));
    // A password login by the key's user (no password) is not found; the key is no password.
    assert!(matches!(
        login(&*backend, "ci-bot", &text).await,
        Outcome::NotFound
    ));

    // Expired.
    let (old, _) = store
        .add_api_key("ci-bot", None, Some(Duration::from_secs(1)))
        .await
        .expect("key");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match key_login(&*backend, &old.to_string()).await {
            Outcome::Authenticated(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Outcome::Rejected => break,
            other => panic!("an expired key: {other:?}"),
        }
    }

    // Listing: never a secret; last use recorded.
    let listed = store.list_api_keys(None).await.expect("list");
    assert_eq!(listed.len(), 2);
    let (first, second) = match listed[0].id == stored.id {
        true => (&listed[0], &listed[1]),
        false => (&listed[1], &listed[0]),
    };
    assert_eq!(first.id, stored.id);
    assert_eq!(first.username, "ci-bot");
    assert_eq!(first.name.as_deref(), Some("ci"));
    assert!(first.last_used_at.is_some());
    assert_eq!(second.id, old.id);
    assert!(second.expires_at.is_some());
    assert!(
        store
            .list_api_keys(Some("other"))
            .await
            .expect("list")
            .is_empty()
    );
    assert!(matches!(
        store.add_api_key("nobody", None, None).await,
        Err(StoreError::NoSuchUser(_))
    ));

    // A disabled user's key is denied; enabled again, it works.
    store.disable("ci-bot").await.expect("disable");
    let denied = key_login(&*backend, &text).await;
    assert!(matches!(denied, Outcome::Denied(_)), "{denied:?}");
    store.enable("ci-bot").await.expect("enable");
    assert!(matches!(
        key_login(&*backend, &text).await,
        Outcome::Authenticated(_)
    ));

    // Revoked: refused at once; revoking twice is fine, an unknown id is an error.
    store.revoke_api_key(&stored.id).await.expect("revoke");
    assert!(matches!(
        key_login(&*backend, &text).await,
        Outcome::Rejected
    ));
    store
        .revoke_api_key(&stored.id)
        .await
        .expect("revoke twice");
    let listed = store.list_api_keys(Some("ci-bot")).await.expect("list");
    assert!(
        listed
            .iter()
            .any(|k| k.id == stored.id && k.revoked_at.is_some())
    );
    assert!(matches!(
        store.revoke_api_key("0000000000000000").await,
        Err(StoreError::NoSuchKey(_))
    ));

    // A deleted user's keys go with them.
    let (live, _) = store.add_api_key("ci-bot", None, None).await.expect("key");
    store.delete("ci-bot").await.expect("delete");
    assert!(matches!(
        key_login(&*backend, &live.to_string()).await,
        Outcome::NotFound
    ));
    assert!(store.list_api_keys(None).await.expect("list").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_sqlite() {
    api_keys(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_postgres() {
    api_keys(Db::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_mysql() {
    api_keys(Db::MySql).await;
}

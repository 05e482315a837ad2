//! Every session store against the real thing: memory, SQLite (temp file), PostgreSQL, Redis,
//! and the stateless cookie store. Each store runs the same suite.

use crate::session_common;

use std::path::Path;
use std::time::Duration;

use gateway::__test::SessionManager;
use session_common::*;

async fn manager(spec: &str, dir: &Path, ttl: Duration, idle: Duration) -> SessionManager {
    let cfg = session_config(spec, ttl, idle);
    SessionManager::from_config(&cfg, SECRET, dir)
        .await
        .expect("session manager")
}

async fn long_lived(spec: &str, dir: &Path) -> SessionManager {
    manager(
        spec,
        dir,
        Duration::from_secs(3600),
        Duration::from_secs(600),
    )
    .await
}

fn flip_char(s: &str, at: usize) -> String {
    let mut b = s.as_bytes().to_vec();
    b[at] = if b[at] == b'A' { b'B' } else { b'A' };
    String::from_utf8(b).expect("ascii")
}

async fn round_trip(spec: &str, dir: &Path) {
    let m = long_lived(spec, dir).await;
    let user = alice();
    let cookie = m.create(&user, Some("pw-v1")).await.expect("create");
    let s = m
        .load(&cookie)
        .await
        .expect("load")
        .expect("session exists");
    assert_eq!(*s.user, user);
    assert_eq!(&*s.entry, "ldap-main");
    let age = s.created_at.elapsed().expect("created in the past");
    assert!(age < Duration::from_secs(5));
    assert_eq!(s.created_at, s.last_seen);
    assert_eq!(s.created_at, s.validated_at);
    assert_eq!(s.user_id(), "uid-42");
    assert!(m.version_matches(&s, Some("pw-v1")));
    assert!(!m.version_matches(&s, Some("pw-v2")));
    assert!(!m.version_matches(&s, None));
    assert!(!m.needs_revalidation(&s));
    let debug = format!("{s:?}");
    let id_part = cookie.split('.').next().expect("id");
    assert!(!debug.contains(id_part), "Debug leaks the id: {debug}");
    assert!(!debug.contains(&cookie));

    let none = m.create(&user, None).await.expect("create");
    let s = m.load(&none).await.expect("load").expect("session exists");
    assert!(m.version_matches(&s, None));
    assert!(!m.version_matches(&s, Some("pw-v1")));
}

async fn tampered(spec: &str, dir: &Path) {
    let m = long_lived(spec, dir).await;
    let cookie = m.create(&alice(), Some("v")).await.expect("create");
    assert!(m.load(&cookie).await.expect("load").is_some());
    for at in [0, cookie.len() / 2, cookie.len() - 1] {
        let bad = flip_char(&cookie, at);
        assert!(
            m.load(&bad).await.expect("load").is_none(),
            "tampered at {at}"
        );
    }
    for bad in [
        "",
        ".",
        "a.b",
        &cookie[..cookie.len() - 1],
        &cookie[1..],
        &format!("{cookie}A"),
        "élan.vital",
        &"A".repeat(100_000),
    ] {
        assert!(
            m.load(bad).await.expect("load").is_none(),
            "accepted {bad:.40}"
        );
    }
    // Same store, another secret: nothing of ours verifies.
    let other_cfg = session_config(spec, Duration::from_secs(3600), Duration::from_secs(600));
    let other = SessionManager::from_config(&other_cfg, &[7u8; 32], dir)
        .await
        .expect("manager");
    assert!(other.load(&cookie).await.expect("load").is_none());
    let foreign = other.create(&alice(), None).await.expect("create");
    assert!(m.load(&foreign).await.expect("load").is_none());
}

async fn rotation(spec: &str, dir: &Path) {
    let m = long_lived(spec, dir).await;
    let a = m.create(&alice(), Some("v")).await.expect("create");
    let b = m.create(&alice(), Some("v")).await.expect("create");
    assert_ne!(a, b);
    // Login rotates: the caller destroys the old one, the new one lives on.
    m.destroy(&a).await.expect("destroy");
    assert!(m.load(&a).await.expect("load").is_none());
    assert!(m.load(&b).await.expect("load").is_some());
}

async fn destroy(spec: &str, dir: &Path) {
    let m = long_lived(spec, dir).await;
    let cookie = m.create(&alice(), None).await.expect("create");
    assert!(m.load(&cookie).await.expect("load").is_some());
    m.destroy(&cookie).await.expect("destroy");
    // Replaying the very same cookie after logout is refused, in every store.
    assert!(m.load(&cookie).await.expect("load").is_none());
    m.destroy(&cookie).await.expect("destroy twice");
    m.destroy("garbage").await.expect("destroy garbage");
}

async fn idle_expiry(spec: &str, dir: &Path) {
    let m = manager(spec, dir, Duration::from_secs(60), Duration::from_secs(1)).await;
    let mut cookie = m.create(&alice(), None).await.expect("create");
    // Used every 600 ms, the session outlives its 1 s idle timeout.
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(600)).await;
        let s = m
            .load(&cookie)
            .await
            .expect("load")
            .expect("alive while used");
        if let Some(c) = m.touch(&s).await {
            cookie = c;
        }
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(
        m.load(&cookie).await.expect("load").is_none(),
        "idle session"
    );
}

async fn absolute_expiry(spec: &str, dir: &Path) {
    let m = manager(spec, dir, Duration::from_secs(1), Duration::from_secs(60)).await;
    let mut cookie = m.create(&alice(), None).await.expect("create");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let s = m.load(&cookie).await.expect("load").expect("alive");
    if let Some(c) = m.touch(&s).await {
        cookie = c;
    }
    if let Some(c) = m.revalidated(&s, &alice()).await {
        cookie = c;
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        m.load(&cookie).await.expect("load").is_none(),
        "used session past its absolute lifetime"
    );
}

async fn revalidation(spec: &str, dir: &Path) {
    let mut cfg = session_config(spec, Duration::from_secs(60), Duration::from_secs(60));
    cfg.revalidate = auth_core::Duration(Duration::from_millis(300));
    let m = SessionManager::from_config(&cfg, SECRET, dir)
        .await
        .expect("manager");
    let mut cookie = m.create(&alice(), Some("v1")).await.expect("create");
    let s = m.load(&cookie).await.expect("load").expect("alive");
    assert!(!m.needs_revalidation(&s));
    tokio::time::sleep(Duration::from_millis(350)).await;
    let s = m.load(&cookie).await.expect("load").expect("alive");
    assert!(m.needs_revalidation(&s));
    let mut fresh = alice();
    fresh.groups.insert("new-group".into());
    fresh.groups.remove("admins");
    if let Some(c) = m.revalidated(&s, &fresh).await {
        cookie = c;
    }
    let before = s.validated_at;
    let s = m.load(&cookie).await.expect("load").expect("alive");
    assert!(!m.needs_revalidation(&s));
    assert!(s.validated_at > before);
    assert!(s.validated_at > s.created_at);
    assert!(s.user.in_group("new-group"));
    assert!(!s.user.in_group("admins"));
    assert!(m.version_matches(&s, Some("v1")));
}

async fn csrf(spec: &str, dir: &Path) {
    let m = long_lived(spec, dir).await;
    let a = m.create(&alice(), None).await.expect("create");
    let b = m.create(&alice(), None).await.expect("create");
    let sa = m.load(&a).await.expect("load").expect("alive");
    let sb = m.load(&b).await.expect("load").expect("alive");
    let t1 = m.csrf_token(&sa);
    let t2 = m.csrf_token(&sa);
    assert_ne!(t1, t2, "tokens are masked afresh");
    assert!(m.verify_csrf(Some(&sa), &t1));
    assert!(m.verify_csrf(Some(&sa), &t2));
    assert!(!m.verify_csrf(Some(&sb), &t1), "another session's token");
    assert!(!m.verify_csrf(None, &t1));
    assert!(!m.verify_csrf(Some(&sa), ""));
    assert!(!m.verify_csrf(Some(&sa), &flip_char(&t1, 40)));
}

macro_rules! store_suite {
    ($name:ident, $check:expr, $spec:expr) => {
        mod $name {
            use super::*;

            fn spec(dir: &Path) -> Option<String> {
                #[allow(clippy::redundant_closure_call)]
                let up: bool = ($check)();
                up.then(|| ($spec)(dir))
            }

            macro_rules! case {
                ($case:ident) => {
                    #[tokio::test]
                    async fn $case() {
                        let dir = tempfile::tempdir().expect("tempdir");
                        if let Some(spec) = spec(dir.path()) {
                            super::$case(&spec, dir.path()).await;
                        }
                    }
                };
            }

            case!(round_trip);
            case!(tampered);
            case!(rotation);
            case!(destroy);
            case!(idle_expiry);
            case!(absolute_expiry);
            case!(revalidation);
            case!(csrf);
        }
    };
}

store_suite!(memory, || true, |_: &Path| "memory".to_string());
store_suite!(cookie, || true, |_: &Path| "cookie".to_string());
store_suite!(sqlite, || true, |dir: &Path| format!(
    "sqlite://{}",
    dir.join("sessions.db").display()
));
store_suite!(
    postgres,
    || service_up("PostgreSQL", "127.0.0.1:5432"),
    |_: &Path| POSTGRES_URL.to_string()
);
store_suite!(
    mysql,
    || service_up("MariaDB", "127.0.0.1:3306"),
    |_: &Path| MYSQL_URL.to_string()
);
store_suite!(
    redis,
    || service_up("Redis", "127.0.0.1:6379"),
    |_: &Path| REDIS_URL.to_string()
);

#[tokio::test]
async fn sqlite_relative_path_is_under_data_dir_and_rows_are_purged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let m = manager(
        "sqlite://state/sessions.db",
        dir.path(),
        Duration::from_millis(300),
        Duration::from_secs(60),
    )
    .await;
    let old = m.create(&alice(), None).await.expect("create");
    assert!(dir.path().join("state/sessions.db").exists());
    tokio::time::sleep(Duration::from_millis(400)).await;
    // A restarted gateway purges expired rows on its first login.
    let restarted = manager(
        "sqlite://state/sessions.db",
        dir.path(),
        Duration::from_secs(60),
        Duration::from_secs(60),
    )
    .await;
    let new = restarted.create(&alice(), None).await.expect("create");
    assert!(restarted.load(&new).await.expect("load").is_some());
    let db = format!(
        "sqlite://{}",
        dir.path().join("state/sessions.db").display()
    );
    let pool = sqlx::SqlitePool::connect(&db).await.expect("open db");
    let (rows,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM gateway_sessions")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(rows, 1, "the expired row was purged");
    // The table holds digests, not the id that is in the cookie.
    let (key,): (String,) = sqlx::query_as("SELECT id FROM gateway_sessions")
        .fetch_one(&pool)
        .await
        .expect("row");
    assert!(!new.contains(&key) && !old.contains(&key));
}

#[tokio::test]
async fn sqlite_unusable_path_fails_closed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = session_config(
        "sqlite:///proc/no-such-dir/sessions.db",
        Duration::from_secs(60),
        Duration::from_secs(60),
    );
    let err = SessionManager::from_config(&cfg, SECRET, dir.path()).await;
    assert!(
        err.is_err(),
        "an unusable SQLite path must not start a store"
    );
}

#[tokio::test]
async fn postgres_down_fails_closed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("postgres://postgres@127.0.0.1:{}/test", closed_port());
    let m = long_lived(&url, dir.path()).await;
    let err = m
        .create(&alice(), None)
        .await
        .expect_err("create must fail");
    assert!(err.is_unavailable());
    // A well-formed cookie must not be taken as "no session" either: the store could not tell.
    let healthy = long_lived("memory", dir.path()).await;
    let cookie = healthy.create(&alice(), None).await.expect("create");
    let err = m.load(&cookie).await.expect_err("load must fail");
    assert!(err.is_unavailable());
    assert!(m.check().await.is_err());
}

#[tokio::test]
async fn redis_down_fails_closed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("redis://127.0.0.1:{}/", closed_port());
    let m = long_lived(&url, dir.path()).await;
    let err = m
        .create(&alice(), None)
        .await
        .expect_err("create must fail");
    assert!(err.is_unavailable());
    let healthy = long_lived("memory", dir.path()).await;
    let cookie = healthy.create(&alice(), None).await.expect("create");
    let err = m.load(&cookie).await.expect_err("load must fail");
    assert!(err.is_unavailable());
    m.destroy(&cookie).await.expect_err("destroy must fail");
    assert!(m.check().await.is_err());
}

#[tokio::test]
async fn redis_sessions_are_shared_between_replicas_with_ttl() {
    if !service_up("Redis", "127.0.0.1:6379") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let a = long_lived(REDIS_URL, dir.path()).await;
    let b = long_lived(REDIS_URL, dir.path()).await;
    let cookie = a.create(&alice(), None).await.expect("create");
    assert!(b.load(&cookie).await.expect("load").is_some());
    b.destroy(&cookie).await.expect("destroy");
    assert!(a.load(&cookie).await.expect("load").is_none());

    // Keys carry a TTL of min(idle, remaining absolute): here 600 s, not the 3600 s lifetime.
    // The Redis server is shared (other suites, earlier runs), so only the key this create adds
    // is inspected.
    let client = ::redis::Client::open(REDIS_URL).expect("client");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let session_keys = |mut conn: ::redis::aio::MultiplexedConnection| async move {
        let keys: Vec<String> = ::redis::cmd("KEYS")
            .arg("gateway:session:*")
            .query_async(&mut conn)
            .await
            .expect("keys");
        keys.into_iter()
            .collect::<std::collections::BTreeSet<String>>()
    };
    let before = session_keys(conn.clone()).await;
    let c = a.create(&alice(), None).await.expect("create");
    assert!(b.load(&c).await.expect("load").is_some());
    let added: Vec<String> = session_keys(conn.clone())
        .await
        .difference(&before)
        .cloned()
        .collect();
    assert!(!added.is_empty(), "creating a session added no key");
    for key in added {
        let ttl: i64 = ::redis::cmd("PTTL")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .expect("pttl");
        // No test in this file uses an idle timeout above 600 s, whatever its absolute lifetime.
        assert!(ttl > 0 && ttl <= 600_000, "{key} has TTL {ttl}");
    }
}

#[tokio::test]
async fn memory_store_counts_active_sessions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let m = long_lived("memory", dir.path()).await;
    assert_eq!(m.active_sessions(), Some(0));
    let a = m.create(&alice(), None).await.expect("create");
    let _b = m.create(&alice(), None).await.expect("create");
    assert_eq!(m.active_sessions(), Some(2));
    m.destroy(&a).await.expect("destroy");
    assert_eq!(m.active_sessions(), Some(1));
    let c = long_lived("cookie", dir.path()).await;
    assert_eq!(c.active_sessions(), None);
}

#[tokio::test]
async fn cookie_store_keeps_no_server_state_but_refuses_replay_after_logout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = long_lived("cookie", dir.path()).await;
    let cookie = a.create(&alice(), Some("v1")).await.expect("create");
    // Another replica with the same secret reads it: the session is in the cookie.
    let b = long_lived("cookie", dir.path()).await;
    let s = b.load(&cookie).await.expect("load").expect("alive");
    assert_eq!(*s.user, alice());
    assert!(b.version_matches(&s, Some("v1")));
    // The user snapshot is encrypted, not merely encoded.
    use base64::Engine;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&cookie)
        .expect("base64url");
    assert!(!String::from_utf8_lossy(&raw).contains("alice"));
    a.destroy(&cookie).await.expect("logout");
    assert!(
        a.load(&cookie).await.expect("load").is_none(),
        "replay after logout"
    );
}

#[tokio::test]
async fn cookie_store_refuses_sessions_too_large_for_a_cookie() {
    let dir = tempfile::tempdir().expect("tempdir");
    let m = long_lived("cookie", dir.path()).await;
    let mut user = alice();
    user.groups
        .extend((0..500).map(|i| format!("group-number-{i}")));
    let err = m.create(&user, None).await.expect_err("too large");
    assert!(matches!(err, gateway::__test::SessionError::TooLarge(_)));
}

#[tokio::test]
async fn cookie_store_revocations_are_shared_through_redis() {
    if !service_up("Redis", "127.0.0.1:6379") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let a = long_lived("cookie", dir.path())
        .await
        .with_shared_revocations(REDIS_URL)
        .expect("shared");
    let b = long_lived("cookie", dir.path())
        .await
        .with_shared_revocations(REDIS_URL)
        .expect("shared");
    let cookie = a.create(&alice(), None).await.expect("create");
    let other = a.create(&alice(), None).await.expect("create");
    assert!(b.load(&cookie).await.expect("load").is_some());
    a.destroy(&cookie).await.expect("logout on replica a");
    assert!(
        b.load(&cookie).await.expect("load").is_none(),
        "replay on replica b"
    );
    assert!(
        b.load(&other).await.expect("load").is_some(),
        "other sessions live on"
    );

    // Shared list down: loads fail closed rather than accept a possibly revoked cookie.
    let url = format!("redis://127.0.0.1:{}/", closed_port());
    let down = long_lived("cookie", dir.path())
        .await
        .with_shared_revocations(&url)
        .expect("lazy");
    assert!(down.load(&other).await.is_err());
    assert!(down.destroy(&other).await.is_err());
}

#[tokio::test]
async fn random_and_mutated_cookies_never_load_or_panic() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5e55);
    let dir = tempfile::tempdir().expect("tempdir");
    for spec in ["memory", "cookie"] {
        let m = long_lived(spec, dir.path()).await;
        let valid = m.create(&alice(), None).await.expect("create");
        let alphabet: Vec<char> = "ABCxyz019-_.=+/ é\u{0}\u{202e}💥".chars().collect();
        for i in 0..5_000 {
            let candidate: String = if i % 2 == 0 {
                let len = rng.gen_range(0..200);
                (0..len)
                    .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
                    .collect()
            } else {
                let mut chars: Vec<char> = valid.chars().collect();
                let at = rng.gen_range(0..chars.len());
                chars[at] = alphabet[rng.gen_range(0..alphabet.len())];
                if rng.gen_bool(0.3) {
                    chars.truncate(rng.gen_range(0..chars.len()));
                }
                chars.into_iter().collect()
            };
            if candidate == valid {
                continue;
            }
            let loaded = m
                .load(&candidate)
                .await
                .expect("never an error for bad input");
            assert!(loaded.is_none(), "{spec} accepted {candidate:?}");
        }
        assert!(m.load(&valid).await.expect("load").is_some());
    }
}

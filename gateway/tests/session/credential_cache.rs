//! The credential cache: successes for `credentials_ttl`, failures only for `negative_ttl`.

use crate::session_common;

use std::time::{Duration, Instant};

use gateway::config::model::CacheConfig;
use gateway::credential_cache::{CacheHit, CredentialCache};
use session_common::*;

fn cache(ttl: Duration, negative: Duration) -> CredentialCache {
    CredentialCache::from_config(&CacheConfig {
        credentials_ttl: auth_core::Duration(ttl),
        negative_ttl: auth_core::Duration(negative),
    })
}

fn success(hit: Option<CacheHit>) -> std::sync::Arc<gateway::credential_cache::CachedSuccess> {
    match hit {
        Some(CacheHit::Success(ok)) => ok,
        other => panic!("expected a cached success, got {other:?}"),
    }
}

#[test]
fn hit_returns_what_the_chain_answered() {
    let c = cache(Duration::from_secs(60), Duration::ZERO);
    assert!(c.get("alice", b"s3cret").is_none());
    c.insert_success("alice", b"s3cret", "ldap-main", &alice(), Some("v7"));
    let ok = success(c.get("alice", b"s3cret"));
    assert_eq!(ok.entry, "ldap-main");
    assert_eq!(*ok.user, alice());
    assert_eq!(ok.credential_version.as_deref(), Some("v7"));
}

#[test]
fn different_password_or_username_misses() {
    let c = cache(Duration::from_secs(60), Duration::ZERO);
    c.insert_success("alice", b"s3cret", "ldap-main", &alice(), None);
    assert!(c.get("alice", b"s3cret!").is_none());
    assert!(c.get("alice", b"S3cret").is_none());
    assert!(c.get("alice", b"").is_none());
    assert!(c.get("bob", b"s3cret").is_none());
    // Splitting the same bytes differently is another pair, NUL bytes included.
    c.insert_success("ab", b"c", "e", &alice(), None);
    assert!(c.get("a", b"bc").is_none());
    c.insert_success("alice", b"x\0y", "e", &alice(), None);
    assert!(c.get("alice\0x", b"y").is_none());
    assert!(c.get("alice", b"x\0y").is_some());
}

#[test]
fn entries_expire() {
    let c = cache(Duration::from_millis(200), Duration::ZERO);
    c.insert_success("alice", b"pw", "e", &alice(), None);
    assert!(c.get("alice", b"pw").is_some());
    std::thread::sleep(Duration::from_millis(250));
    assert!(c.get("alice", b"pw").is_none());
}

#[test]
fn failures_are_never_cached_with_negative_ttl_zero() {
    let c = cache(Duration::from_secs(60), Duration::ZERO);
    c.insert_failure("alice", b"wrong");
    assert!(c.get("alice", b"wrong").is_none());
    assert!(c.is_empty());
}

#[test]
fn failures_are_cached_for_negative_ttl() {
    let c = cache(Duration::from_secs(60), Duration::from_millis(200));
    c.insert_failure("alice", b"wrong");
    assert!(matches!(c.get("alice", b"wrong"), Some(CacheHit::Failure)));
    std::thread::sleep(Duration::from_millis(250));
    assert!(c.get("alice", b"wrong").is_none());
}

#[test]
fn ttl_zero_disables_the_cache() {
    let c = cache(Duration::ZERO, Duration::from_secs(60));
    assert!(!c.is_enabled());
    c.insert_success("alice", b"pw", "e", &alice(), None);
    c.insert_failure("bob", b"pw");
    assert!(c.get("alice", b"pw").is_none());
    assert!(c.get("bob", b"pw").is_none());
    assert!(c.is_empty());
}

#[test]
fn clear_empties_the_cache() {
    let c = cache(Duration::from_secs(60), Duration::from_secs(60));
    c.insert_success("alice", b"pw", "e", &alice(), None);
    c.insert_failure("bob", b"pw");
    c.clear();
    assert!(c.get("alice", b"pw").is_none());
    assert!(c.get("bob", b"pw").is_none());
}

#[test]
fn invalidate_user_drops_only_that_user() {
    let c = cache(Duration::from_secs(60), Duration::ZERO);
    let mut bob = alice();
    bob.id = "uid-7".into();
    c.insert_success("alice", b"pw1", "ldap-main", &alice(), None);
    c.insert_success("alice@example.org", b"pw1", "ldap-main", &alice(), None);
    c.insert_success("bob", b"pw", "ldap-main", &bob, None);
    c.insert_success("alice", b"pw1", "local", &alice(), None);
    c.invalidate_user("ldap-main", "uid-42");
    assert!(c.get("alice@example.org", b"pw1").is_none());
    assert!(c.get("bob", b"pw").is_some());
    // Same user id in another entry is another user.
    assert_eq!(success(c.get("alice", b"pw1")).entry, "local");
}

#[test]
fn size_is_bounded() {
    let cfg = CacheConfig {
        credentials_ttl: auth_core::Duration::from_secs(60),
        negative_ttl: auth_core::Duration::from_secs(60),
    };
    let c = CredentialCache::with_capacity(&cfg, 1000);
    for i in 0..20_000 {
        c.insert_failure(&format!("user{i}"), b"pw");
    }
    assert!(c.len() <= 1000, "{} entries", c.len());
    assert!(c.len() >= 500, "{} entries", c.len());
    c.insert_success("alice", b"pw", "e", &alice(), None);
    assert!(c.get("alice", b"pw").is_some(), "the newest entry is kept");
}

#[test]
fn cache_is_keyed_without_the_password() {
    let c = cache(Duration::from_secs(60), Duration::ZERO);
    c.insert_success(
        "alice",
        b"correct horse battery staple",
        "e",
        &alice(),
        None,
    );
    let debug = format!("{c:?}");
    assert!(!debug.contains("correct horse"));
    // Two caches (two processes) derive different keys, yet each answers its own.
    let d = cache(Duration::from_secs(60), Duration::ZERO);
    assert!(d.get("alice", b"correct horse battery staple").is_none());
}

#[test]
fn get_is_cheap() {
    let c = cache(Duration::from_secs(60), Duration::ZERO);
    for i in 0..1000 {
        c.insert_success(&format!("user{i}"), b"pw", "e", &alice(), None);
    }
    let names: Vec<String> = (0..1000).map(|i| format!("user{i}")).collect();
    let n = 200_000;
    let start = Instant::now();
    for i in 0..n {
        assert!(c.get(&names[i % names.len()], b"pw").is_some());
    }
    let per = start.elapsed() / n as u32;
    eprintln!("credential cache get: {per:?} per hit");
    assert!(per < Duration::from_micros(200), "get took {per:?}");
}

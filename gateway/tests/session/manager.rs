//! The session manager apart from its stores: secret handling, cookie attributes, CSRF.

use crate::session_common;

use std::time::{Duration, Instant};

use auth_core::Secret;
use gateway::config::model::{SameSiteSetting, spanned};
use gateway::session::{SessionError, SessionManager, resolve_secret};
use session_common::*;

async fn memory_manager(ttl: Duration) -> SessionManager {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = session_config("memory", ttl, Duration::from_secs(600));
    SessionManager::from_config(&cfg, SECRET, dir.path())
        .await
        .expect("manager")
}

#[test]
fn configured_secret_must_be_at_least_32_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = session_config("memory", Duration::from_secs(60), Duration::from_secs(60));
    cfg.secret = Some(spanned(Secret::new("too short")));
    match resolve_secret(&cfg, dir.path()) {
        Err(SessionError::SecretTooShort(9)) => {}
        other => panic!("expected SecretTooShort(9), got {other:?}"),
    }
    let long = "x".repeat(40);
    cfg.secret = Some(spanned(Secret::new(long.clone())));
    assert_eq!(
        resolve_secret(&cfg, dir.path()).expect("secret"),
        long.as_bytes()
    );
    assert!(
        !dir.path().join("session.secret").exists(),
        "nothing generated"
    );
}

#[test]
fn quickstart_secret_is_generated_once_with_mode_0600_and_reused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("state");
    let cfg = session_config("memory", Duration::from_secs(60), Duration::from_secs(60));
    let first = resolve_secret(&cfg, &data_dir).expect("generated");
    assert_eq!(first.len(), 32);
    let path = data_dir.join("session.secret");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let again = resolve_secret(&cfg, &data_dir).expect("reused");
    assert_eq!(first, again);
    let other_dir = tempfile::tempdir().expect("tempdir");
    assert_ne!(
        first,
        resolve_secret(&cfg, other_dir.path()).expect("generated")
    );

    std::fs::write(&path, "c2hvcnQ=\n").expect("write");
    assert!(
        resolve_secret(&cfg, &data_dir).is_err(),
        "a short file is refused"
    );
}

#[tokio::test]
async fn sessions_survive_a_restart_with_the_generated_secret() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = format!("sqlite://{}", dir.path().join("s.db").display());
    let cfg = session_config(&spec, Duration::from_secs(60), Duration::from_secs(60));
    let secret = resolve_secret(&cfg, dir.path()).expect("secret");
    let m = SessionManager::from_config(&cfg, &secret, dir.path())
        .await
        .expect("manager");
    let cookie = m.create(&alice(), None).await.expect("create");
    drop(m);
    let secret = resolve_secret(&cfg, dir.path()).expect("secret");
    let m = SessionManager::from_config(&cfg, &secret, dir.path())
        .await
        .expect("manager");
    assert!(m.load(&cookie).await.expect("load").is_some());
}

#[tokio::test]
async fn bad_configs_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = session_config("memory", Duration::from_secs(60), Duration::from_secs(60));
    assert!(matches!(
        SessionManager::from_config(&cfg, b"short", dir.path()).await,
        Err(SessionError::SecretTooShort(5))
    ));
    let cfg = session_config(
        "memcached://x",
        Duration::from_secs(60),
        Duration::from_secs(60),
    );
    assert!(matches!(
        SessionManager::from_config(&cfg, SECRET, dir.path()).await,
        Err(SessionError::UnknownStore(_))
    ));
    let cfg = session_config("memory", Duration::ZERO, Duration::from_secs(60));
    assert!(
        SessionManager::from_config(&cfg, SECRET, dir.path())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn unknown_store_error_hides_the_password() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = session_config(
        "mongodb://admin:hunter2@db/x",
        Duration::from_secs(60),
        Duration::from_secs(60),
    );
    let err = SessionManager::from_config(&cfg, SECRET, dir.path())
        .await
        .expect_err("unknown store");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[tokio::test]
async fn session_cookie_attributes() {
    let m = memory_manager(Duration::from_secs(8 * 3600)).await;
    assert_eq!(m.cookie_name(), "gw_session");
    let value = m.create(&alice(), None).await.expect("create");
    let header = m.set_cookie(&value, true);
    let header = header.to_str().expect("ascii");
    let parsed = cookie::Cookie::parse(header.to_string()).expect("parse");
    assert_eq!(parsed.name(), "gw_session");
    assert_eq!(parsed.value(), value);
    assert_eq!(parsed.http_only(), Some(true));
    assert_eq!(parsed.secure(), Some(true));
    assert_eq!(parsed.same_site(), Some(cookie::SameSite::Lax));
    assert_eq!(parsed.path(), Some("/"));
    assert_eq!(parsed.domain(), None, "host-only");
    assert_eq!(
        parsed.max_age(),
        Some(cookie::time::Duration::seconds(8 * 3600))
    );

    let insecure = m.set_cookie(&value, false);
    let parsed =
        cookie::Cookie::parse(insecure.to_str().expect("ascii").to_string()).expect("parse");
    assert_eq!(parsed.secure(), None);

    let cleared = m.clear_cookie(true);
    let parsed =
        cookie::Cookie::parse(cleared.to_str().expect("ascii").to_string()).expect("parse");
    assert_eq!(parsed.name(), "gw_session");
    assert_eq!(parsed.value(), "");
    assert_eq!(parsed.max_age(), Some(cookie::time::Duration::ZERO));
    assert_eq!(parsed.path(), Some("/"));
}

#[tokio::test]
async fn same_site_strict_from_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = session_config("memory", Duration::from_secs(60), Duration::from_secs(60));
    cfg.same_site = SameSiteSetting::Strict;
    cfg.cookie_name = Some("app_sid".into());
    let m = SessionManager::from_config(&cfg, SECRET, dir.path())
        .await
        .expect("manager");
    let header = m.set_cookie("v", true);
    let parsed = cookie::Cookie::parse(header.to_str().expect("ascii").to_string()).expect("parse");
    assert_eq!(parsed.name(), "app_sid");
    assert_eq!(parsed.same_site(), Some(cookie::SameSite::Strict));
    assert_eq!(m.csrf_cookie_name(), "app_sid_csrf");
}

#[tokio::test]
async fn pre_session_csrf_is_a_signed_pair() {
    let m = memory_manager(Duration::from_secs(3600)).await;
    let (cookie, token) = m.pre_session_csrf();
    let (cookie2, token2) = m.pre_session_csrf();
    assert_ne!(cookie, cookie2);
    assert!(m.verify_pre_session_csrf(&cookie, &token));
    assert!(m.verify_pre_session_csrf(&cookie2, &token2));
    assert!(!m.verify_pre_session_csrf(&cookie, &token2), "mixed pairs");
    assert!(!m.verify_pre_session_csrf(&cookie, ""));
    assert!(!m.verify_pre_session_csrf("", &token));
    assert!(!m.verify_pre_session_csrf(&token, &token));
    // Another secret's pair does not verify.
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = session_config(
        "memory",
        Duration::from_secs(3600),
        Duration::from_secs(600),
    );
    let other = SessionManager::from_config(&cfg, &[9u8; 32], dir.path())
        .await
        .expect("manager");
    let (oc, ot) = other.pre_session_csrf();
    assert!(!m.verify_pre_session_csrf(&oc, &ot));
    // Forged timestamp: the cookie signature breaks.
    let (payload, mac) = cookie.split_once('.').expect("dot");
    let mut forged = payload.as_bytes().to_vec();
    forged[25] = if forged[25] == b'A' { b'B' } else { b'A' };
    let forged = format!("{}.{mac}", String::from_utf8(forged).expect("ascii"));
    assert!(!m.verify_pre_session_csrf(&forged, &token));

    let header = m.set_csrf_cookie(&cookie, true);
    let parsed = cookie::Cookie::parse(header.to_str().expect("ascii").to_string()).expect("parse");
    assert_eq!(parsed.name(), "gw_session_csrf");
    assert_eq!(parsed.http_only(), Some(true));
}

#[tokio::test]
async fn pre_session_csrf_expires() {
    let m = memory_manager(Duration::from_secs(1)).await;
    let (cookie, token) = m.pre_session_csrf();
    assert!(m.verify_pre_session_csrf(&cookie, &token));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(!m.verify_pre_session_csrf(&cookie, &token));
}

#[tokio::test]
async fn memory_load_is_cheap() {
    let m = memory_manager(Duration::from_secs(3600)).await;
    let mut cookies = Vec::new();
    for _ in 0..1000 {
        cookies.push(m.create(&alice(), Some("v")).await.expect("create"));
    }
    let n = 100_000;
    let start = Instant::now();
    for i in 0..n {
        let s = m.load(&cookies[i % cookies.len()]).await.expect("load");
        assert!(s.is_some());
    }
    let per = start.elapsed() / n as u32;
    eprintln!("memory store load: {per:?} per call ({n} calls, 1000 sessions)");
    // Generous for an unoptimized test build on a shared machine; a store round trip or a
    // contended global lock per load would still blow it.
    assert!(per < Duration::from_micros(500), "load took {per:?}");
}

#[test]
fn secure_flag_resolution() {
    use gateway::config::model::SecureSetting::{Always, Auto, Never};
    use gateway::session::cookie_secure;
    assert!(cookie_secure(
        Auto,
        url::Url::parse("https://app.example.org").ok().as_ref()
    ));
    assert!(cookie_secure(
        Auto,
        url::Url::parse("http://app.example.org").ok().as_ref()
    ));
    assert!(!cookie_secure(
        Auto,
        url::Url::parse("http://127.0.0.1:8080").ok().as_ref()
    ));
    assert!(!cookie_secure(
        Auto,
        url::Url::parse("http://localhost:8080/").ok().as_ref()
    ));
    assert!(!cookie_secure(
        Auto,
        url::Url::parse("http://[::1]:8080").ok().as_ref()
    ));
    assert!(cookie_secure(
        Auto,
        url::Url::parse("https://localhost").ok().as_ref()
    ));
    assert!(cookie_secure(
        Auto,
        url::Url::parse("not a url").ok().as_ref()
    ));
    assert!(cookie_secure(
        Always,
        url::Url::parse("http://127.0.0.1").ok().as_ref()
    ));
    assert!(!cookie_secure(
        Never,
        url::Url::parse("https://app.example.org").ok().as_ref()
    ));
}

#[tokio::test]
async fn active_sessions_drops_expired_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = session_config(
        "memory",
        Duration::from_millis(300),
        Duration::from_secs(60),
    );
    let m = SessionManager::from_config(&cfg, SECRET, dir.path())
        .await
        .expect("manager");
    m.create(&alice(), None).await.expect("create");
    m.create(&alice(), None).await.expect("create");
    assert_eq!(m.active_sessions(), Some(2));
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(m.active_sessions(), Some(0));
}

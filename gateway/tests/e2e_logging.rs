//! End-to-end: the access log is one JSON line per request with the decision, and never holds a
//! password, cookie or token. Alone in its binary because it installs a subscriber.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use support::{Harness, basic, client, login};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn access_log_is_structured_and_secret_free() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .finish();
    // The test runtime is single-threaded: every gateway task logs through this subscriber.
    let _guard = tracing::subscriber::set_default(subscriber);

    let h = Harness::start().await;
    let c = client();
    let token = basic("alice", "alice-pw");
    let r = c
        .get(h.url("/app/page?q=1"))
        .header("authorization", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .get(h.url("/app/page"))
        .header("authorization", basic("alice", "wrong-secret-pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let jar = login(&h, "bob", "bob-pw").await;
    let session = jar.cookies["gw_session"].clone();
    let r = c
        .get(h.url("/admin/x"))
        .header("cookie", jar.header())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    for secret in [
        "alice-pw",
        "wrong-secret-pw",
        "bob-pw",
        session.as_str(),
        token.trim_start_matches("Basic "),
    ] {
        assert!(!text.contains(secret), "log holds a secret: {secret}");
    }
    let access: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("every line is JSON"))
        .filter(|v| v["target"] == "gateway::access")
        .collect();
    let allowed = access
        .iter()
        .find(|v| v["path"] == "/app/page" && v["status"] == 200)
        .expect("access line for the allowed request");
    assert_eq!(allowed["method"], "GET");
    assert_eq!(allowed["decision"], "allowed");
    assert_eq!(allowed["user"], "alice");
    assert_eq!(allowed["identity"], "basic");
    assert_eq!(allowed["backend"], "test");
    assert_eq!(allowed["route"], "5", "routes are counted from 1");
    assert_eq!(allowed["config_version"], 1);
    assert!(allowed["elapsed_us"].as_u64().is_some());
    let refused = access
        .iter()
        .find(|v| v["path"] == "/app/page" && v["status"] == 401)
        .expect("access line for the refused request");
    assert_eq!(refused["decision"], "challenge");
    assert_eq!(refused["user"], "-");
    assert!(refused["trace"].as_str().unwrap().contains("test=rejected"));
    let admin = access
        .iter()
        .find(|v| v["path"] == "/admin/x")
        .expect("access line for the session request");
    assert_eq!(admin["identity"], "session");
    assert_eq!(admin["user"], "bob");
    assert_eq!(admin["route"], "2");
}

/// Without `session.secret`, start-up says once (at WARN, naming the file) that the secret was
/// generated; a reload does not repeat it; a configured secret says nothing.
#[tokio::test]
async fn a_generated_session_secret_is_announced_once_with_its_file() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let dir = tempfile::tempdir().unwrap();
    let upstream: std::net::SocketAddr = "127.0.0.1:9".parse().unwrap();
    let generated = support::parse_config(
        &support::BASE_CONFIG.replace("  secret: \"0123456789abcdef0123456789abcdef-test\"\n", ""),
        upstream,
    );
    assert!(generated.session.secret.is_none());
    let services = gateway::runtime::Services::from_config(&generated, dir.path(), dir.path())
        .await
        .expect("services");
    let reloaded =
        gateway::runtime::Services::carry_over(&services, &generated, dir.path(), dir.path())
            .await
            .expect("reload");
    drop(reloaded);
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let file = dir.path().join("session.secret");
    assert!(file.is_file(), "the secret was written");
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("session.secret is not set"))
        .collect();
    assert_eq!(warnings.len(), 1, "once, not per reload: {log}");
    assert!(warnings[0].contains(" WARN "), "{log}");
    assert!(
        warnings[0].contains(&file.display().to_string()),
        "names the file: {log}"
    );
    assert!(!warnings[0].contains(&std::fs::read_to_string(&file).unwrap().trim().to_string()));

    let configured = support::parse_config(support::BASE_CONFIG, upstream);
    captured.0.lock().unwrap().clear();
    gateway::runtime::Services::from_config(&configured, dir.path(), dir.path())
        .await
        .expect("services");
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(!log.contains("session.secret"), "{log}");
}

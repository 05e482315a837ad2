//! Brute-force lockout per (canonical username, client IP) and per client, in memory and in
//! Redis.

use crate::session_common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use gateway::__test::Lockout;
use gateway::__test::{ProtectionConfig, spanned};
use session_common::*;

const IP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));
const OTHER_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 11));

/// A config whose per-client budget is out of the way (the pair tests); see [`per_ip`].
fn config(store: &str, max: u32, window: Duration, lockout: Duration) -> ProtectionConfig {
    ProtectionConfig {
        max_failures: max,
        max_failures_per_ip: Some(u32::MAX),
        window: auth_core::Duration(window),
        lockout: auth_core::Duration(lockout),
        store: spanned(store.into()),
        redis_ca_file: None,
    }
}

/// Pairs lock after 5 failures, a client after `per_client`.
fn per_ip(store: &str, per_client: u32) -> ProtectionConfig {
    ProtectionConfig {
        max_failures_per_ip: Some(per_client),
        ..config(store, 5, Duration::from_secs(60), Duration::from_secs(60))
    }
}

fn memory(max: u32, window: Duration, lockout: Duration) -> Lockout {
    Lockout::from_config(&config("memory", max, window, lockout)).expect("lockout")
}

fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    format!("{name}-{nanos}")
}

async fn fail(l: &Lockout, user: &str, ip: IpAddr, times: u32) -> bool {
    let mut locked = false;
    for _ in 0..times {
        locked = l.record_failure(user, ip).await.expect("record");
    }
    locked
}

/// The scenario every store must pass: lock at the max-th failure, release after `lockout`.
async fn locks_then_releases(l: &Lockout, user: &str) {
    assert!(!l.is_locked(user, IP).await.expect("check"));
    assert!(!fail(l, user, IP, 2).await, "2 of 3 failures do not lock");
    assert!(!l.is_locked(user, IP).await.expect("check"));
    assert!(fail(l, user, IP, 1).await, "the 3rd failure locks");
    assert!(l.is_locked(user, IP).await.expect("check"));
    assert!(
        !l.is_locked(user, OTHER_IP).await.expect("check"),
        "other IP"
    );
    assert!(
        !l.is_locked("someone-else", IP).await.expect("check"),
        "other user"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(!l.is_locked(user, IP).await.expect("check"), "released");
    assert!(
        !fail(l, user, IP, 1).await,
        "counting starts over after a lockout"
    );
}

#[tokio::test]
async fn memory_locks_after_max_failures_and_releases() {
    let l = memory(3, Duration::from_secs(60), Duration::from_secs(1));
    locks_then_releases(&l, "alice").await;
}

/// The scenario every store must pass for the per-client budget: a spray of distinct usernames
/// from one client locks that client (its right passwords included) and no other.
async fn spray_locks_the_client(l: &Lockout, users: &[String], client: IpAddr, other: IpAddr) {
    for (i, user) in users.iter().enumerate().take(19) {
        assert!(!fail(l, user, client, 1).await, "failure {} of 20", i + 1);
    }
    assert!(!l.is_locked(&users[0], client).await.expect("check"));
    // A success on the way clears only its own pair, not the client's count.
    l.record_success(&users[0], client).await.expect("success");
    assert!(
        fail(l, &users[19], client, 1).await,
        "the 20th failure locks"
    );
    for user in [&users[0], &users[25], &"never-tried".to_string()] {
        assert!(
            l.is_locked(user, client).await.expect("check"),
            "{user} from the spraying client"
        );
        assert!(
            !l.is_locked(user, other).await.expect("check"),
            "{user} from another client"
        );
    }
}

#[tokio::test]
async fn memory_client_budget_locks_a_username_spray() {
    let l = Lockout::from_config(&per_ip("memory", 20)).expect("lockout");
    let users: Vec<String> = (0..30).map(|i| format!("user{i}")).collect();
    spray_locks_the_client(&l, &users, IP, OTHER_IP).await;
}

#[tokio::test]
async fn redis_client_budget_is_shared_between_replicas() {
    if !service_up("Redis", "127.0.0.1:6379") {
        return;
    }
    let cfg = per_ip(REDIS_URL, 20);
    let a = Lockout::from_config(&cfg).expect("lockout");
    let b = Lockout::from_config(&cfg).expect("lockout");
    // A client address of its own, so earlier runs' counters in this Redis do not count.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    let client = IpAddr::V6(Ipv6Addr::new(
        0x2001,
        0xdb8,
        (nanos >> 32) as u16,
        (nanos >> 16) as u16,
        nanos as u16,
        0,
        0,
        1,
    ));
    let other = IpAddr::V6(Ipv6Addr::new(
        0x2001, 0xdb8, 0xffff, 0xffff, 0xffff, 0, 0, 1,
    ));
    let users: Vec<String> = (0..30).map(|i| unique(&format!("spray{i}"))).collect();
    for user in &users[..10] {
        assert!(!fail(&a, user, client, 1).await);
    }
    for user in &users[10..19] {
        assert!(!fail(&b, user, client, 1).await);
    }
    assert!(
        fail(&a, &users[19], client, 1).await,
        "20th failure across replicas"
    );
    assert!(b.is_locked(&users[25], client).await.expect("check"));
    assert!(!b.is_locked(&users[25], other).await.expect("check"));
}

#[tokio::test]
async fn redis_locks_and_releases() {
    if !service_up("Redis", "127.0.0.1:6379") {
        return;
    }
    let cfg = config(
        REDIS_URL,
        3,
        Duration::from_secs(60),
        Duration::from_secs(1),
    );
    let l = Lockout::from_config(&cfg).expect("lockout");
    locks_then_releases(&l, &unique("alice")).await;
}

#[tokio::test]
async fn redis_counters_are_shared_between_replicas() {
    if !service_up("Redis", "127.0.0.1:6379") {
        return;
    }
    let cfg = config(
        REDIS_URL,
        4,
        Duration::from_secs(60),
        Duration::from_secs(60),
    );
    let a = Lockout::from_config(&cfg).expect("lockout");
    let b = Lockout::from_config(&cfg).expect("lockout");
    let user = unique("bob");
    fail(&a, &user, IP, 2).await;
    assert!(!fail(&b, &user.to_uppercase(), IP, 1).await);
    assert!(
        fail(&a, &user, IP, 1).await,
        "4th failure across replicas locks"
    );
    assert!(b.is_locked(&user, IP).await.expect("check"));
    assert!(!b.is_locked(&user, OTHER_IP).await.expect("check"));
    b.record_success(&user, IP).await.expect("success");
    assert!(!a.is_locked(&user, IP).await.expect("check"));

    let other = unique("carol");
    fail(&a, &other, IP, 3).await;
    b.record_success(&other, IP).await.expect("success");
    assert!(
        !fail(&a, &other, IP, 3).await,
        "success on one replica reset the shared counter"
    );
}

#[tokio::test]
async fn redis_window_expires() {
    if !service_up("Redis", "127.0.0.1:6379") {
        return;
    }
    let cfg = config(
        REDIS_URL,
        3,
        Duration::from_millis(400),
        Duration::from_secs(60),
    );
    let l = Lockout::from_config(&cfg).expect("lockout");
    let user = unique("dave");
    fail(&l, &user, IP, 2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!fail(&l, &user, IP, 2).await, "the window restarted");
    assert!(fail(&l, &user, IP, 1).await);
}

#[tokio::test]
async fn redis_down_fails_closed() {
    let url = format!("redis://127.0.0.1:{}/", closed_port());
    let cfg = config(&url, 3, Duration::from_secs(60), Duration::from_secs(60));
    let l = Lockout::from_config(&cfg).expect("lazy");
    assert!(l.is_locked("alice", IP).await.is_err());
    assert!(l.record_failure("alice", IP).await.is_err());
}

/// What every store must do for `authgate lockouts`: list the lockouts in force (pairs by
/// canonical username and client, a spraying client as a whole), clear one user's from every
/// client (whatever spelling the operator types), and leave the rest.
async fn lists_and_clears(l: &Lockout, user: &str, [ip, other, spray]: [IpAddr; 3]) {
    let spray_client = spray.to_string();
    let mine = |records: Vec<gateway::__test::LockRecord>| {
        records
            .into_iter()
            .filter(|r| r.user.as_deref() == Some(user) || r.client == spray_client)
            .collect::<Vec<_>>()
    };
    assert!(mine(l.list().await.expect("list")).is_empty());
    let record = l
        .record_failure_detail(&user.to_uppercase(), ip)
        .await
        .expect("record");
    assert!(!record.locked && record.started.is_empty());
    let record = l.record_failure_detail(user, ip).await.expect("record");
    assert!(record.locked);
    assert_eq!(record.started.len(), 1);
    assert_eq!(record.started[0].user.as_deref(), Some(user));
    assert_eq!(record.started[0].client, ip.to_string());
    fail(l, user, other, 2).await;
    for i in 0..4 {
        l.record_failure(&format!("{user}-spray-{i}"), spray)
            .await
            .expect("record");
    }
    let listed = mine(l.list().await.expect("list"));
    let shown: Vec<(Option<&str>, &str)> = listed
        .iter()
        .map(|r| (r.user.as_deref(), r.client.as_str()))
        .collect();
    let mut expected = [ip.to_string(), other.to_string()];
    expected.sort();
    assert_eq!(
        shown,
        [
            (None, spray_client.as_str()),
            (Some(user), expected[0].as_str()),
            (Some(user), expected[1].as_str()),
        ]
    );
    assert!(
        listed
            .iter()
            .all(|r| r.remaining_secs > 0 && r.remaining_secs <= 60)
    );

    let cleared = l.clear_user(&user.to_uppercase()).await.expect("clear");
    let mut clients: Vec<&str> = cleared.iter().map(|r| r.client.as_str()).collect();
    clients.sort();
    assert_eq!(clients, expected);
    assert!(!l.is_locked(user, ip).await.expect("check"));
    assert!(!l.is_locked(user, other).await.expect("check"));
    let left = mine(l.list().await.expect("list"));
    assert_eq!(left.len(), 1, "the client lockout stays: {left:?}");
    assert!(l.is_locked("anyone", spray).await.expect("check"));
    // Its failures were cleared too: one more is not a lockout.
    assert!(!l.record_failure(user, ip).await.expect("record"));
}

/// Pairs lock at 2 failures, a client at 4, for a minute.
fn listing_config(store: &str) -> ProtectionConfig {
    ProtectionConfig {
        max_failures_per_ip: Some(4),
        ..config(store, 2, Duration::from_secs(60), Duration::from_secs(60))
    }
}

#[tokio::test]
async fn memory_lockouts_are_listed_and_cleared() {
    let l = Lockout::from_config(&listing_config("memory")).expect("lockout");
    let [a, b, c] = [10, 11, 7].map(|n| IpAddr::V4(Ipv4Addr::new(198, 51, 100, n)));
    lists_and_clears(&l, "carol", [a, b, c]).await;
}

#[tokio::test]
async fn redis_lockouts_are_listed_and_cleared() {
    if !service_up("Redis", "127.0.0.1:6379") {
        return;
    }
    let l = Lockout::from_config(&listing_config(REDIS_URL)).expect("lockout");
    // Clients of their own: a client's counters outlive a run (and other tests share Redis).
    lists_and_clears(&l, &unique("dana"), [fresh_ip(), fresh_ip(), fresh_ip()]).await;
}

/// `authgate lockouts` on a Redis store reads and clears it directly, no gateway running.
#[tokio::test]
async fn lockouts_cli_reads_and_clears_a_redis_store() {
    if !service_up("Redis", "127.0.0.1:6379") {
        return;
    }
    let user = unique("erin");
    let l = Lockout::from_config(&listing_config(REDIS_URL)).expect("lockout");
    let client = fresh_ip();
    fail(&l, &user, client, 2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("gateway.yaml");
    std::fs::write(
        &path,
        format!(
            "upstream: {{url: \"http://127.0.0.1:9000\"}}\n\
             session: {{secret: env:GATEWAY_TEST_SECRET}}\n\
             protection: {{store: \"{REDIS_URL}\"}}\n\
             chain: [{{name: demo, type: static, options: {{users: {{}}}}}}]\n"
        ),
    )
    .expect("write");
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_authgate"))
            .arg("lockouts")
            .args(args)
            .arg("--config")
            .arg(&path)
            .env(
                "GATEWAY_TEST_SECRET",
                "0123456789abcdef0123456789abcdef-test",
            )
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    };
    let listed = cli(&["list"]);
    let line = listed
        .lines()
        .find(|l| l.starts_with(&user))
        .unwrap_or_else(|| panic!("{user} not listed:\n{listed}"));
    assert!(line.contains(&client.to_string()), "{line}");
    assert_eq!(
        cli(&["clear", &user]),
        format!("cleared the lockout of `{user}` from {client}\n")
    );
    assert!(!l.is_locked(&user, client).await.expect("check"));
    assert_eq!(
        cli(&["clear", &user]),
        format!("no lockout of `{user}` in force\n")
    );
}

/// An address in 10.0.0.0/8 no earlier run used (likely): from the clock and a counter.
fn fresh_ip() -> IpAddr {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .subsec_nanos();
    let n = nanos ^ N.fetch_add(0x9e37, std::sync::atomic::Ordering::Relaxed);
    IpAddr::V4(Ipv4Addr::new(10, (n >> 16) as u8, (n >> 8) as u8, n as u8))
}

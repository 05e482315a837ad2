//! Helpers shared by the session, protection and cache tests.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use auth_core::User;
use gateway::__test::{SessionConfig, spanned};

pub const POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
pub const MYSQL_URL: &str = "mysql://root@127.0.0.1:3306/test";
pub const REDIS_URL: &str = "redis://127.0.0.1:6379/";
pub const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-test-secret";

/// Whether a service answers on `addr`. When it does not: panics under `CI=true`, otherwise
/// says loudly that the test is skipped.
pub fn service_up(name: &str, addr: &str) -> bool {
    let ok = addr
        .parse()
        .ok()
        .and_then(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)).ok())
        .is_some();
    if !ok {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{name} is not reachable on {addr} and CI=true");
        }
        eprintln!("!!! SKIPPED: {name} is not reachable on {addr} (set CI=true to fail instead)");
    }
    ok
}

/// A port on 127.0.0.1 where nothing listens.
pub fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    drop(l);
    port
}

pub fn session_config(store: &str, ttl: Duration, idle: Duration) -> SessionConfig {
    SessionConfig {
        store: spanned(store.into()),
        ttl: auth_core::Duration(ttl),
        idle_timeout: auth_core::Duration(idle),
        ..SessionConfig::default()
    }
}

pub fn alice() -> User {
    let mut u = User::new("alice")
        .with_email("alice@example.org")
        .with_display_name("Alice Liddell")
        .with_groups(["staff", "admins"]);
    u.id = "uid-42".into();
    u.backend = "ldap-main".into();
    u.attributes
        .insert("department".into(), vec!["Wonderland".into()]);
    u
}

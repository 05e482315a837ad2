//! Helpers shared by the integration tests: real services started or reached by the tests.
#![allow(dead_code)]

pub mod db;
pub mod pyjwt;
pub mod slapd;

/// A required service is unreachable: panics when `CI=true`, else prints a loud warning and
/// returns so the caller can skip.
pub fn service_missing(service: &str, why: impl std::fmt::Display) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{service} is required (CI=true) but unavailable: {why}");
    }
    eprintln!(
        "\n!!!!!!!! SKIPPING TEST: {service} unavailable: {why}\n!!!!!!!! (set CI=true to make this a failure)\n"
    );
}

/// A free TCP port on 127.0.0.1 (bound then released).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

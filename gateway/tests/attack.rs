//! Attack tests: one binary, one module per attack class (`tests/attack/*.rs`), each driving a
//! gateway started in-process like an attacker would. `attack_timing.rs` is its own binary: it
//! compares timing medians, which parallel tests would disturb.

mod support;

mod attack {
    mod bruteforce;
    mod cookie_tossing;
    mod credentials;
    mod forward_auth;
    mod h2;
    mod methods;
    mod path_case;
    mod paths;
    mod redirects;
    mod response_framing;
    mod sessions;
    mod smuggling;
    mod spoofing;
}

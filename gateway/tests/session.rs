//! Session tests: one binary, one module per area (`tests/session/*.rs`): the manager, every
//! store against real services, Redis over TLS, the credential cache and login protection.

mod support;

mod session_common;

mod session {
    mod credential_cache;
    mod manager;
    mod protection;
    mod redis_tls;
    mod stores;
}

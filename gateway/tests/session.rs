//! Session tests: one binary, one module per area (`tests/session/*.rs`): the manager, every
//! store against real services, Redis over TLS and login protection. The credential cache is
//! unit-tested beside its code (`src/credential_cache.rs`).

mod support;

mod session_common;

mod session {
    mod protection;
    mod redis_tls;
    mod stores;
}

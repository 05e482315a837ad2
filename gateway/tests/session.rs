//! Session tests: one binary, one module per area (`tests/session/*.rs`): every store against
//! real services, Redis over TLS and the lockout's store contracts (memory and Redis). The
//! manager, the memory lockout and the credential cache are unit-tested beside their code
//! (`src/session/`, `src/protection.rs`, `src/credential_cache.rs`).

mod support;

mod session_common;

mod session {
    mod protection;
    mod redis_tls;
    mod stores;
}

//! Sessions with Django's semantics (DESIGN.md §4): a login creates a session under a fresh random
//! id that records the chain entry, the user, a keyed digest of the credential version and a
//! snapshot of the [`User`](auth_core::User), so the hot path needs no backend call until
//! `revalidate` has passed. Idle and absolute timeouts apply in every store; logout ends the
//! session in every store (the stateless `cookie` store keeps a revocation list).
//!
//! Stores: `memory`, `sqlite://PATH` / `postgres://...` / `mysql://...` (sqlx), `redis://...`
//! and `cookie` (the session itself, XChaCha20-Poly1305-encrypted in the cookie).
//!
//! One module per job: `manager` (the store dispatch), `record` (what a store keeps and the
//! live [`Session`]), `secret` (the secret file and the keys derived from it), `csrf` (the two
//! CSRF schemes), `cookie` (the `Cookie` parser and the `Set-Cookie` values), `token_seal` (the
//! provider tokens sealed in the server-side stores), `error`; one module per store (`memory`, `sql`, `redis_store`, `cookie_store`).

mod cookie;
mod cookie_store;
mod csrf;
mod error;
mod manager;
mod memory;
mod record;
mod redis_store;
mod secret;
mod sql;
mod token_seal;

pub(crate) use cookie::{cookie_pairs, cookie_values};
pub use error::SessionError;
pub(crate) use manager::CookieLookup;
pub use manager::SessionManager;
pub(crate) use manager::{MAX_SESSION_COOKIES, RefreshTurn};
pub(crate) use record::Session;
pub(crate) use secret::{generated_secret_path, resolve_secret};

// What the store modules share, under the names they import it by.
use record::{Record, SessionId, now_ms, storage_key};
use secret::{B64, KEY_LEN, decode_exact, random_bytes};

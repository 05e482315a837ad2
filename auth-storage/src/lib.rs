//! The one storage layer of authgate: what the local user store, the `sql` backend, the session
//! stores and the lockout share.
//!
//! - [`StoreUrl`] parses a store URL once (the one list of schemes), knows its SQL [`Dialect`]
//!   or that it is Redis, normalises it (`mariadb://` for the MySQL driver, relative SQLite
//!   paths, `mode=rwc` for stores that create their file) and shows itself redacted.
//! - [`Pool`] and [`any_pool`] build the sqlx pools.
//! - [`redis::lazy_manager`] is the one Redis (and `rediss://` with a CA file) factory.

pub mod redis;
pub mod sql;
pub mod url;

pub use sql::{Connect, Pool, PoolError, PoolSize, any_pool};
pub use url::{Dialect, RedisUrl, SqlUrl, StoreUrl, StoreUrlError, expected_forms, redact};

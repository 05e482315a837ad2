//! The built-in backends, each written with `#[auth_backend]`.

pub mod api_key;
pub mod htpasswd;
pub mod http;
pub mod jwt;
pub mod ldap;
pub mod local;
pub mod oidc;
pub mod provision;
pub mod sql;
pub mod static_users;
pub mod store;

pub use provision::provision;
pub use store::{KeyCheck, StoreError, StoredApiKey, StoredUser, UserStore};

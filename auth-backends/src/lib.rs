//! The built-in backends, each written with `#[auth_backend]`.

pub mod http;
pub mod ldap;
pub mod sql;

//! The built-in backends, each written with `#[auth_backend]`.

use auth_core::auth_backend;

/// Options only: forgot `impl Backend` and `build = ...`.
#[auth_backend(type = "ldap")]
struct Ldap {
    url: String,
}

fn main() {}

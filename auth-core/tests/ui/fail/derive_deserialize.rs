use auth_core::auth_backend;

#[auth_backend(type = "ldap")]
#[derive(Debug, serde::Deserialize)]
struct Ldap {
    url: String,
}

fn main() {}

use auth_core::auth_backend;

#[auth_backend(type = "ldap", type = "ad")]
struct Ldap {
    url: String,
}

fn main() {}

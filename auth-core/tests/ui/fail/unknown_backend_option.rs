use auth_core::auth_backend;

#[auth_backend(typ = "ldap")]
struct Ldap {
    url: String,
}

fn main() {}

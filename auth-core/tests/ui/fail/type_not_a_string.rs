use auth_core::auth_backend;

#[auth_backend(type = ldap)]
struct Ldap {
    url: String,
}

fn main() {}

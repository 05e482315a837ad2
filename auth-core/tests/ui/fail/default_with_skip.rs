use auth_core::auth_backend;

#[auth_backend(type = "ldap")]
struct Ldap {
    url: String,
    #[option(skip, default)]
    connections: Vec<String>,
}

fn main() {}

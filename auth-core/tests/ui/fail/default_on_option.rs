use auth_core::auth_backend;

#[auth_backend(type = "ldap")]
struct Ldap {
    url: String,
    #[option(default)]
    bind_dn: Option<String>,
}

fn main() {}

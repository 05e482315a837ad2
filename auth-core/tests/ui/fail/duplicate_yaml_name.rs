use auth_core::auth_backend;

#[auth_backend(type = "ldap")]
struct Ldap {
    url: String,
    #[option(rename = "url")]
    server: String,
}

fn main() {}

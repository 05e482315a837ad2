use auth_core::auth_backend;

#[auth_backend(type = "ldap")]
struct Ldap {
    #[option(rename = "uri", rename = "url")]
    url: String,
}

fn main() {}

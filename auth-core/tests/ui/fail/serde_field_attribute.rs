use auth_core::auth_backend;

#[auth_backend(type = "ldap")]
struct Ldap {
    #[serde(default)]
    url: String,
}

fn main() {}

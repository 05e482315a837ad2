use auth_core::auth_backend;

#[auth_backend(type = "ldap")]
struct Ldap {
    #[option(defualt = "ldap://localhost")]
    url: String,
}

fn main() {}

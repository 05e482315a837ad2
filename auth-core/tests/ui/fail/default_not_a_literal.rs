use auth_core::auth_backend;

#[auth_backend(type = "ldap")]
struct Ldap {
    #[option(default = std::time::Duration::from_secs(5))]
    timeout: auth_core::Duration,
}

fn main() {}

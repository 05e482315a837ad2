use auth_core::auth_backend;

// Every mistake is reported in one pass, and the struct still exists (no cascade below).
#[auth_backend(typ = "ldap")]
struct Ldap {
    #[option(rename = 5)]
    url: String,
    #[option(skip, default)]
    pool: Vec<String>,
}

fn main() {
    let ldap = Ldap { url: String::new(), pool: Vec::new() };
    let _ = (ldap.url, ldap.pool);
    // The stub `Deserialize` keeps this line from adding an error of its own.
    let _ = serde_saphyr::from_str::<Ldap>("url: x\n");
}

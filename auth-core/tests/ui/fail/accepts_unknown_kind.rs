use auth_core::auth_backend;

// A credential kind that does not exist: named, with the closest kind.
#[auth_backend(type = "tokens", accepts = [password, baerer])]
struct Tokens {
    url: String,
}

fn main() {}

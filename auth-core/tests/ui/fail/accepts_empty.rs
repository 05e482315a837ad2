use auth_core::auth_backend;

// A backend that accepts no credential kind would never run.
#[auth_backend(type = "tokens", accepts = [])]
struct Tokens {
    url: String,
}

fn main() {}

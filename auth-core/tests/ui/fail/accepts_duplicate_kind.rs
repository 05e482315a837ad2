use auth_core::auth_backend;

// Each kind once.
#[auth_backend(type = "tokens", accepts = [bearer, api_key, bearer])]
struct Tokens {
    url: String,
}

fn main() {}

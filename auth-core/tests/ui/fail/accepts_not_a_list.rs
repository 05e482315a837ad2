use auth_core::auth_backend;

// `accepts` takes a list, even of one kind.
#[auth_backend(type = "tokens", accepts = bearer)]
struct Tokens {
    url: String,
}

fn main() {}

use auth_core::auth_backend;

#[auth_backend(type = "")]
struct EmptyType {
    url: String,
}

fn main() {}

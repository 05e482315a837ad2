use auth_core::auth_backend;

#[auth_backend(type = "generic")]
struct Generic<T> {
    value: T,
}

fn main() {}

use auth_core::auth_backend;

#[auth_backend]
struct NoType {
    url: String,
}

fn main() {}

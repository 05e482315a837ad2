use auth_core::auth_backend;

#[auth_backend(type = "nothing")]
struct Nothing;

fn main() {
    let _ = Nothing;
}

use auth_core::auth_backend;

#[auth_backend(type = "colors")]
enum Colors {
    Red,
    Green,
}

fn main() {
    let _ = Colors::Red;
}

use auth_core::auth_backend;

#[auth_backend(type = "pair")]
struct Pair(String, u32);

fn main() {
    let _ = Pair(String::new(), 1);
}

use auth_core::auth_backend;

// A service the gateway does not provide: named, with the closest one.
#[auth_backend(type = "reader", needs = [user_stor])]
struct Reader {
    url: String,
}

fn main() {}

use auth_core::UserRecord;

struct Opaque;

#[derive(UserRecord)]
struct Row {
    #[user(id)]
    id: Opaque,
    #[user(username)]
    login: String,
}

fn main() {}

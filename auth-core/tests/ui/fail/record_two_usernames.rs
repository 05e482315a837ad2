use auth_core::UserRecord;

#[derive(UserRecord)]
struct Row {
    #[user(username)]
    login: String,
    #[user(username)]
    email: String,
}

fn main() {}

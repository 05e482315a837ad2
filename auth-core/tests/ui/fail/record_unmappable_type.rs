use auth_core::UserRecord;

#[derive(UserRecord)]
struct Row {
    #[user(username)]
    login: String,
    #[user(email)]
    email: u64,
}

fn main() {}

use auth_core::UserRecord;

#[derive(UserRecord)]
struct Row {
    #[user(username, email)]
    login: String,
}

fn main() {}

use auth_core::UserRecord;

#[derive(UserRecord)]
struct Row {
    #[user(usename)]
    login: String,
}

fn main() {}

use auth_core::UserRecord;

#[derive(UserRecord)]
struct Row {
    #[user(email)]
    email: String,
}

fn main() {}

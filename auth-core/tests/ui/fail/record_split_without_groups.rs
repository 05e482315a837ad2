use auth_core::UserRecord;

#[derive(UserRecord)]
struct Row {
    #[user(username)]
    login: String,
    #[user(attr = "roles", split = ",")]
    roles: String,
}

fn main() {}

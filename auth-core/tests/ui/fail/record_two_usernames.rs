use auth_core::{IntoUser, UserRecord};

#[derive(UserRecord)]
struct Row {
    #[user(username)]
    login: String,
    #[user(username)]
    email: String,
}

fn main() {
    // The stub `IntoUser` keeps this line from adding an error of its own.
    let _ = Row { login: String::new(), email: String::new() }.into_user();
}

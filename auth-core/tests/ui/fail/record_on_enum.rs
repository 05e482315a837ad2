use auth_core::UserRecord;

#[derive(UserRecord)]
enum Row {
    Alice,
}

fn main() {}

use auth_core::{IntoUser, UserRecord};

#[derive(UserRecord)]
pub struct Row {
    #[user(id)]
    pub id: i64,
    #[user(username)]
    pub username: String,
    #[user(email)]
    pub email: Option<String>,
    #[user(name)]
    pub name: Option<String>,
    #[user(groups, split = ",", group_name = "cn")]
    pub groups: Option<String>,
    #[user(attr = "department")]
    pub department: Vec<String>,
    pub unmapped: std::collections::HashMap<u8, u8>,
}

fn main() {
    let user = Row {
        id: 1,
        username: "alice".into(),
        email: None,
        name: None,
        groups: Some("cn=a,dc=x,b".into()),
        department: vec![],
        unmapped: Default::default(),
    }
    .into_user()
    .unwrap();
    assert_eq!(user.id, "1");
    assert_eq!(user.groups.len(), 3);
}

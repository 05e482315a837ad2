use auth_core::{Secret, auth_backend};

// String-like defaults: a `String` takes a string literal; a `Secret` names its variable or file.
#[auth_backend(type = "texts", build = build)]
struct Texts {
    #[option(default = 5)]
    realm: String,
    #[option(default = "env:")]
    password: Secret,
}

fn build(_: Texts, _: &auth_core::BuildContext) -> Result<std::sync::Arc<dyn auth_core::Backend>, auth_core::BuildError> {
    Err(auth_core::BuildError::new("not built"))
}

fn main() {}

use auth_core::auth_backend;

// A `bool` option's default is `true` or `false`, checked when the backend compiles.
#[auth_backend(type = "flags", build = build)]
struct Flags {
    #[option(default = "x")]
    verbose: bool,
    #[option(default = "true")]
    strict: bool,
}

fn build(_: Flags, _: &auth_core::BuildContext) -> Result<std::sync::Arc<dyn auth_core::Backend>, auth_core::BuildError> {
    Err(auth_core::BuildError::new("not built"))
}

fn main() {}

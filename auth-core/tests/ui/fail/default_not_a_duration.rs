use auth_core::{Duration, auth_backend};

// A `Duration` default is parsed with the config's duration grammar when the backend compiles.
#[auth_backend(type = "timed", build = build)]
struct Timed {
    #[option(default = "5 parsecs")]
    timeout: Duration,
    #[option(default = 30)]
    interval: Duration,
}

fn build(_: Timed, _: &auth_core::BuildContext) -> Result<std::sync::Arc<dyn auth_core::Backend>, auth_core::BuildError> {
    Err(auth_core::BuildError::new("not built"))
}

fn main() {}

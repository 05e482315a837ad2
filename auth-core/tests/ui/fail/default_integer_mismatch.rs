use auth_core::auth_backend;

// An integer default must be an integer literal that fits the field's type.
#[auth_backend(type = "counted", build = build)]
struct Counted {
    #[option(default = 300)]
    retries: u8,
    #[option(default = -1)]
    attempts: u32,
    #[option(default = "10")]
    pool_size: usize,
}

fn build(_: Counted, _: &auth_core::BuildContext) -> Result<std::sync::Arc<dyn auth_core::Backend>, auth_core::BuildError> {
    Err(auth_core::BuildError::new("not built"))
}

fn main() {}

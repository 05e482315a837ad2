use auth_core::{Backend, BackendError, BuildContext, BuildError, auth_backend};
use std::sync::Arc;

// A field whose type is not `Deserialize` is not an option: say so, and name `#[option(skip)]`.
struct Pool;

#[auth_backend(type = "pooled", build = Self::build)]
struct Pooled {
    url: String,
    pool: Pool,
}

impl Pooled {
    fn build(self, _: &BuildContext) -> Result<Arc<dyn Backend>, BuildError> {
        let _ = (self.url, self.pool);
        Err(BuildError::new("not built"))
    }
}

fn main() {
    let _: Option<BackendError> = None;
}

//! The YAML configuration: its model, loading with `file:line:col` errors, validation, and
//! building the chain.
//!
//! [`load`] parses the file twice: first to learn each chain entry's `type`, then to hand each
//! entry's `options` to that type's registration, so that errors inside options keep their own
//! location. Parse errors (syntax, unknown key, wrong type, duplicate key) are reported one at a
//! time, since the YAML parser stops at the first; once the file parses, every semantic error is
//! reported together.

mod build;
pub(crate) mod chain;
mod diagnostic;
mod exposure;
mod key_locations;
mod load;
pub(crate) mod model;
mod parse_error;
pub(crate) mod reload_scope;
pub(crate) mod schema;
pub(crate) mod typed;
mod validate;

pub use build::build_chain;
pub(crate) use diagnostic::{ConfigErrors, Diagnostic};
pub(crate) use exposure::{LiteralSecret, readable_secrets};
pub(crate) use load::LoadedConfig;
pub(crate) use load::base_dir_of;
pub use load::{load, load_str};
pub use model::*;
pub(crate) use typed::Parsed;

//! The YAML configuration: its model, loading with `file:line:col` errors, and validation.

pub mod model;

pub use model::*;

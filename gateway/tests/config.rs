//! Config tests: one binary, one module per area (`tests/config/*.rs`, beside the snapshot cases
//! `tests/config/*.yaml`): building, diagnostics and the JSON Schema. It registers the test-only
//! `table` backend type and no other, so suggestions in the snapshots stay stable.

#[path = "support/table_backend.rs"]
mod table_backend;

mod config {
    mod build;
    mod errors;
    mod schema;
}

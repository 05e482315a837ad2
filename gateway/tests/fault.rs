//! Fault tests: one binary, one module per area (`tests/fault/*.rs`): backends and session
//! stores cut and restored, and the fuzz targets' bodies under proptest. `fault_upstream.rs` is
//! its own binary: it counts the process's open descriptors.

mod support;

mod fault_support;

mod fault {
    mod backends;
    mod fuzz_properties;
    mod session_store;
}

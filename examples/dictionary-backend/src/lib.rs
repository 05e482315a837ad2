//! The dictionary backend.

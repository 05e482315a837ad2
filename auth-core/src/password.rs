//! Password hash verification: every format the built-in backends read, detected from the
//! hash's own prefix, verified off the async reactor threads on a bounded pool.

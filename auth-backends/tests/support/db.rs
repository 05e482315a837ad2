//! Databases for the `sql` tests.

//! Shared helpers for the end-to-end tests live in each test file; this crate has no library code.

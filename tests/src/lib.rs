//! Harness for the end-to-end tests that run whole chains across packages.

//! qmail.

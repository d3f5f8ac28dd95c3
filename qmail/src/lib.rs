//! qmail.

pub mod control;
pub mod home;

//! qmail.

pub mod control;
pub mod date822;
pub mod home;
pub mod ids;
pub mod install;
pub mod qmail_queue;
pub mod queue;

//! Test plumbing shared by the integration tests of every package, so that
//! each test suite keeps only what is its own (zones, homes, services).
//!
//! The rules it encodes are the project's: temporary directories that go
//! away, processes ended by pid (never by name) when their guard drops, every
//! wait bounded by a deadline, ports chosen at run time on loopback.

pub mod env;
pub mod net;
pub mod process;
pub mod run;
pub mod tempdir;
pub mod wait;

pub use env::{dir_of, have_peer, have_program, is_root, path_with};
pub use net::{free_port, free_tcp_port};
pub use process::{alive, descendants, kill_pid, proc_stat, Guard};
pub use run::{run_bounded, run_with_input};
pub use tempdir::TempDir;
pub use wait::{wait_for, wait_until, DEADLINE};

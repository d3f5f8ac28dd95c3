//! Harness for the end-to-end tests that run whole chains across packages:
//! the workspace's binaries (built once per test run), temporary
//! directories, a guard that kills a whole process tree by pid, bounded
//! waits and free loopback ports. `stack` builds on it a private mail stack
//! under svscan.

pub mod harness;
pub mod stack;

pub use harness::*;

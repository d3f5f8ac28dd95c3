//! Process plumbing shared by every package of the suite: the error type that
//! carries its exit code, the `NAME: fatal: ...` convention, djb-style error
//! texts, a getopt with the originals' parsing rules, privilege dropping and
//! the TAI64N labels of daemontools.

pub mod error;
pub mod errstr;
pub mod getopt;
pub mod keep;
pub mod pathexec;
pub mod pool;
pub mod privs;
pub mod sig;
pub mod spawn;
pub mod tai;

pub use error::{Error, Result};

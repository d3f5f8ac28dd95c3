//! pgrphack: run a program in a new session and process group, so that
//! signals sent to the caller's group do not reach it (daemontools 0.76).

use crate::setuidgid::run_failed;
use common::pathexec;
use common::{Error, Result};
use std::ffi::OsString;

/// `pgrphack child...`; `args` excludes argv[0].
pub fn run(args: Vec<OsString>) -> Result<()> {
    if args.is_empty() {
        return Err(Error::usage("pgrphack child"));
    }
    // Like the original, a process that already leads a session (setsid
    // fails) simply runs the program where it is.
    let _ = nix::unistd::setsid();
    Err(run_failed(&args, pathexec::run(&args)))
}

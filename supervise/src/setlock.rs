//! setlock: run a program while holding an exclusive lock on a file
//! (daemontools 0.76). The lock is taken on a descriptor the program
//! inherits, so it lasts exactly as long as the program and its children.

use crate::setuidgid::run_failed;
use common::getopt;
use common::pathexec;
use common::{Error, Result};
use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use std::ffi::OsString;

const USAGE: &str = "setlock [ -nNxX ] file program [ arg ... ]";

/// `setlock [-nNxX] file program...`; `args` excludes argv[0].
pub fn run(args: Vec<OsString>) -> Result<()> {
    let parsed = getopt::getopt("setlock", &args, "nNxX").ok_or_else(|| Error::usage(USAGE))?;
    let (mut nodelay, mut quiet) = (false, false);
    for o in &parsed.opts {
        match o.flag {
            b'n' => nodelay = true,
            b'N' => nodelay = false,
            b'x' => quiet = true,
            _ => quiet = false,
        }
    }
    let ops = &parsed.operands;
    if ops.len() < 2 {
        return Err(Error::usage(USAGE));
    }
    let file = ops[0].to_string_lossy();
    // -x turns a failure to get the lock into a silent success.
    let fail = |e: Error| if quiet { Error::silent(0) } else { e };
    let flags = OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_APPEND | OFlag::O_CREAT;
    let fd = open(ops[0].as_os_str(), flags, Mode::from_bits_truncate(0o600))
        .map_err(|e| fail(Error::sys(format!("unable to open {file}"), e)))?;
    let how = if nodelay {
        libc::LOCK_EX | libc::LOCK_NB
    } else {
        libc::LOCK_EX
    };
    // The descriptor is left open on purpose: the program inherits the lock.
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(fd, how) } == -1 {
        let e = common::error::Errno::last();
        return Err(fail(Error::sys(format!("unable to lock {file}"), e)));
    }
    Err(run_failed(&ops[1..], pathexec::run(&ops[1..])))
}

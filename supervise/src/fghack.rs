//! fghack: an anti-backgrounding tool (daemontools 0.76). The child starts
//! with thirty extra copies of a pipe's write end; a daemon that forks into
//! the background keeps them open, so fghack stays in the foreground until
//! every process holding them has exited, then exits with the child's code.

use crate::setuidgid::run_failed;
use common::pathexec;
use common::{Error, Result};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};
use std::ffi::OsString;
use std::os::fd::{AsRawFd, OwnedFd};

/// `fghack child...`; `args` excludes argv[0].
pub fn run(args: Vec<OsString>) -> Result<()> {
    if args.is_empty() {
        return Err(Error::usage("fghack child"));
    }
    let (rd, wr) = nix::unistd::pipe().map_err(|e| Error::sys("unable to create pipe", e))?;
    // SAFETY: single-threaded program; the child only dups and execs.
    match unsafe { fork() }.map_err(|e| Error::sys("unable to fork", e))? {
        ForkResult::Child => child(&args, rd, wr),
        ForkResult::Parent { child } => {
            drop(wr);
            drain(rd);
            match waitpid(child, None).map_err(|e| Error::sys("wait failed", e))? {
                WaitStatus::Exited(_, 0) => Ok(()),
                WaitStatus::Exited(_, code) => Err(Error::silent(code)),
                _ => Err(Error::temp("child crashed")),
            }
        }
    }
}

fn child(args: &[OsString], rd: OwnedFd, wr: OwnedFd) -> ! {
    drop(rd);
    for _ in 0..30 {
        // The copies are deliberately leaked into the program being run.
        let _ = nix::unistd::dup(wr.as_raw_fd());
    }
    run_failed(args, pathexec::run(args)).exit("fghack")
}

/// Read until every copy of the write end is closed.
fn drain(rd: OwnedFd) {
    let mut buf = [0u8; 64];
    loop {
        match nix::unistd::read(rd.as_raw_fd(), &mut buf) {
            Err(nix::errno::Errno::EINTR) => continue,
            Ok(n) if n > 0 => continue,
            _ => return,
        }
    }
}

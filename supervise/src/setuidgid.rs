//! setuidgid: run a program under an account's uid and gid, with the
//! supplementary groups reduced to that gid (daemontools 0.76).

use common::pathexec;
use common::{Error, Result};
use nix::unistd::{Gid, Uid};
use std::ffi::OsString;

const USAGE: &str = "setuidgid account child";

/// `setuidgid account child...`; `args` excludes argv[0].
pub fn run(args: Vec<OsString>) -> Result<()> {
    if args.len() < 2 {
        return Err(Error::usage(USAGE));
    }
    let name = args[0].to_string_lossy();
    let acct = common::privs::account(&name)
        .ok_or_else(|| Error::temp(format!("unknown account {name}")))?;
    drop_privileges(acct.uid, acct.gid)?;
    Err(run_failed(&args[1..], pathexec::run(&args[1..])))
}

/// The original's prot_gid then prot_uid; both gid steps share one message.
pub fn drop_privileges(uid: u32, gid: u32) -> Result<()> {
    let g = Gid::from_raw(gid);
    nix::unistd::setgroups(&[g])
        .and_then(|_| nix::unistd::setgid(g))
        .map_err(|e| Error::sys("unable to setgid", e))?;
    nix::unistd::setuid(Uid::from_raw(uid)).map_err(|e| Error::sys("unable to setuid", e))
}

/// `unable to run PROG: why`, the failure every chain tool reports after exec.
pub fn run_failed(argv: &[OsString], e: common::error::Errno) -> Error {
    Error::sys(format!("unable to run {}", argv[0].to_string_lossy()), e)
}

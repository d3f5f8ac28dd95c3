//! envuidgid: run a program with $UID and $GID set to an account's uid and
//! gid, for programs that drop privileges themselves (daemontools 0.76).

use crate::setuidgid::run_failed;
use common::pathexec::{self, EnvEdits};
use common::{Error, Result};
use std::ffi::OsString;

const USAGE: &str = "envuidgid account child";

/// `envuidgid account child...`; `args` excludes argv[0].
pub fn run(args: Vec<OsString>) -> Result<()> {
    if args.len() < 2 {
        return Err(Error::usage(USAGE));
    }
    let name = args[0].to_string_lossy();
    let acct = common::privs::account(&name)
        .ok_or_else(|| Error::temp(format!("unknown account {name}")))?;
    let mut env = EnvEdits::new();
    env.set(b"GID", Some(acct.gid.to_string().as_bytes()));
    env.set(b"UID", Some(acct.uid.to_string().as_bytes()));
    Err(run_failed(&args[1..], pathexec::run_env(&args[1..], &env)))
}

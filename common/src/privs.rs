//! Dropping privileges as daemontools' setuidgid and qmail's daemons do:
//! supplementary groups reduced to the one gid, then gid, then uid, in that
//! order so that no step can be undone by the process afterwards.

use crate::error::{Error, Result};
use nix::unistd::{Gid, Uid, User};

/// An account's uid and primary gid, as found in the password database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Account {
    pub uid: u32,
    pub gid: u32,
}

/// Look up `name` in the password database; None when it does not exist.
pub fn account(name: &str) -> Option<Account> {
    match User::from_name(name) {
        Ok(Some(u)) => Some(Account {
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
        }),
        _ => None,
    }
}

/// Set groups to exactly `gid`, then the gid.
pub fn set_gid(gid: u32) -> Result<()> {
    let g = Gid::from_raw(gid);
    nix::unistd::setgroups(&[g]).map_err(|e| Error::sys("unable to setgroups", e))?;
    nix::unistd::setgid(g).map_err(|e| Error::sys("unable to setgid", e))
}

/// Set the uid (after [`set_gid`]).
pub fn set_uid(uid: u32) -> Result<()> {
    nix::unistd::setuid(Uid::from_raw(uid)).map_err(|e| Error::sys("unable to setuid", e))
}

/// Become `acct`: groups, gid, uid.
pub fn drop_to(acct: Account) -> Result<()> {
    set_gid(acct.gid)?;
    set_uid(acct.uid)
}

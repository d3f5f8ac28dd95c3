//! qmail-lspawn: the local spawner. For each recipient it looks the local
//! part up (users/cdb, then the qmail-getpw rules), becomes that user and
//! runs qmail-local (`qmail-local -- user homedir local dash ext domain
//! sender defaultdelivery`); qmail-local's exit code (or the lookup's
//! trouble, as qmail's QLX codes) becomes the report.
//!
//! Unlike the original, qmail-local is not exec'd: its code (this crate's
//! `local`) runs in a process that has become the user before touching
//! anything of theirs, named qmail-local and with the signal state a fresh
//! qmail-local starts with. A user who is found and may be delivered to
//! gets a resident such process (see `resident`), kept for that user's
//! next deliveries; anything else gets a child forked for the one delivery,
//! which reports the trouble as qmail-lspawn always has. The exec, the fork
//! and the exit were most of a local delivery's CPU. To choose the process,
//! qmail-lspawn now looks the user up itself (the original's child did):
//! with a password database that answers slowly (a remote directory), every
//! local delivery waits while it does.

mod resident;

use crate::spawn::{self, Spawner};
use common::Error;
use nix::sys::wait::WaitStatus;
use nix::unistd::{ForkResult, Pid};
use std::ffi::{OsStr, OsString};
use std::os::fd::{OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

const QLX_USAGE: i32 = 112;
const QLX_ROOT: i32 = 113;
const QLX_NFS: i32 = 115;
const QLX_NOALIAS: i32 = 116;
const QLX_CDB: i32 = 117;
const QLX_SYS: i32 = 118;
const QLX_NOMEM: i32 = 119;
const QLX_EXECSOFT: i32 = 120;
const QLX_EXECPW: i32 = 121;
const QLX_EXECHARD: i32 = 126;

pub struct Local {
    aliasempty: String,
    ids: crate::ids::Ids,
    pool: resident::Pool,
}

/// The report for qmail-local's exit status and output.
pub fn report(status: WaitStatus, output: &[u8]) -> Vec<u8> {
    let code = match status {
        WaitStatus::Exited(_, c) => c,
        _ => return b"Zqmail-local crashed.\n".to_vec(),
    };
    let fixed: &[u8] = match code {
        QLX_CDB => b"ZTrouble reading users/cdb in qmail-lspawn.\n",
        QLX_NOMEM => b"ZOut of memory in qmail-lspawn.\n",
        QLX_SYS => b"ZTemporary failure in qmail-lspawn.\n",
        QLX_NOALIAS => b"ZUnable to find alias user!\n",
        QLX_ROOT => b"ZNot allowed to perform deliveries as root.\n",
        QLX_USAGE => b"ZInternal qmail-lspawn bug.\n",
        QLX_NFS => b"ZNFS failure in qmail-local.\n",
        QLX_EXECHARD => b"DUnable to run qmail-local.\n",
        QLX_EXECSOFT => b"ZUnable to run qmail-local.\n",
        QLX_EXECPW => b"ZUnable to run qmail-getpw.\n",
        _ => b"",
    };
    if !fixed.is_empty() {
        return fixed.to_vec();
    }
    let mut r = vec![match code {
        111 | 71 | 74 | 75 => b'Z',
        0 => b'K',
        _ => b'D',
    }];
    let end = output.iter().position(|&b| b == 0).unwrap_or(output.len());
    r.extend_from_slice(&output[..end]);
    r
}

/// The QLX code for a lookup failure (users::lookup's texts).
fn lookup_code(e: &Error) -> i32 {
    if e.msg.contains("NFS") {
        QLX_NFS
    } else if e.msg.contains("users/cdb") {
        QLX_CDB
    } else if e.msg.contains("memory") {
        QLX_NOMEM
    } else {
        QLX_SYS
    }
}

impl Local {
    /// The child: look up, switch user, run qmail-local. Never returns.
    fn child(&self, mess: OwnedFd, out: OwnedFd, sender: &str, recip: &str, at: usize) -> ! {
        let exit = |c: i32| -> ! { unsafe { libc::_exit(c) } };
        let local = &recip[..at];
        if local.is_empty() {
            exit(0); // the <> address: nothing to deliver
        }
        if std::env::set_current_dir(crate::home::home()).is_err() {
            exit(QLX_USAGE);
        }
        let d = match crate::users::lookup(local) {
            Ok(Some(d)) => d,
            Ok(None) => exit(QLX_NOALIAS),
            Err(e) => exit(lookup_code(&e)),
        };
        if !spawn::child_fds(&mess, &out) {
            exit(QLX_SYS);
        }
        if self.ids.privileged || d.uid != nix::unistd::getuid().as_raw() {
            let acct = common::privs::Account {
                uid: d.uid,
                gid: d.gid,
            };
            if common::privs::drop_to(acct).is_err() {
                exit(QLX_USAGE);
            }
            if nix::unistd::getuid().is_root() {
                exit(QLX_ROOT);
            }
        }
        let mut args = vec![OsString::from("--")];
        args.extend(
            self.local_args(&d, sender, recip, at)
                .iter()
                .map(|a| OsStr::from_bytes(a).to_owned()),
        );
        become_qmail_local();
        common::error::main_exit("qmail-local", crate::local::run(&args))
    }

    /// qmail-local's arguments after `--`: user homedir local dash ext
    /// domain sender defaultdelivery.
    fn local_args<'a>(
        &'a self,
        d: &'a crate::users::Delivery,
        sender: &'a str,
        recip: &'a str,
        at: usize,
    ) -> [&'a [u8]; 8] {
        [
            d.user.as_bytes(),
            d.homedir.as_os_str().as_bytes(),
            &recip.as_bytes()[..at],
            d.dash.as_bytes(),
            d.ext.as_bytes(),
            &recip.as_bytes()[at + 1..],
            sender.as_bytes(),
            self.aliasempty.as_bytes(),
        ]
    }

    /// Hand the delivery to a resident process of the user, when the user
    /// is found and is one a delivery may run as. Anything else (no such
    /// user, trouble looking up, root) takes the forked child's path, which
    /// reports it as qmail-lspawn always has.
    fn resident(
        &self,
        mess: &OwnedFd,
        out: &OwnedFd,
        sender: &str,
        recip: &str,
        at: usize,
    ) -> Option<Pid> {
        if at == 0 {
            return None;
        }
        let d = crate::users::lookup(&recip[..at]).ok()??;
        let eligible = if self.ids.privileged {
            d.uid != 0
        } else {
            d.uid == nix::unistd::getuid().as_raw()
        };
        if !eligible {
            return None;
        }
        let acct = common::privs::Account {
            uid: d.uid,
            gid: d.gid,
        };
        let args = self.local_args(&d, sender, recip, at);
        self.pool
            .deliver(acct, self.ids.privileged, mess, out, &args)
    }
}

/// Give this child what an exec'd qmail-local would start with: its name
/// (for ps and top), every signal at its default but SIGPIPE ignored (as
/// the Rust runtime leaves it), none blocked.
fn become_qmail_local() {
    common::sig::reset_for_exec();
    // SAFETY: plain system calls with valid arguments, in a single-threaded
    // child.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        libc::prctl(libc::PR_SET_NAME, c"qmail-local".as_ptr());
    }
}

impl Spawner for Local {
    fn spawn(
        &self,
        mess: OwnedFd,
        out: OwnedFd,
        sender: &str,
        recips: &[String],
        at: usize,
    ) -> Option<Pid> {
        if let Some(pid) = self.resident(&mess, &out, sender, &recips[0], at) {
            return Some(pid);
        }
        // Safe: the spawner is single-threaded.
        match unsafe { nix::unistd::fork() } {
            Ok(ForkResult::Child) => self.child(mess, out, sender, &recips[0], at),
            Ok(ForkResult::Parent { child }) => Some(child),
            Err(_) => None,
        }
    }

    fn groups(&self) -> bool {
        false
    }

    fn report(&self, status: WaitStatus, output: &[u8], _: usize) -> Vec<Vec<u8>> {
        vec![report(status, output)]
    }

    fn truncreport(&self) -> usize {
        3000
    }

    fn watched(&self) -> Vec<(RawFd, Pid)> {
        self.pool.watched()
    }

    fn answer(&self, pid: Pid) -> Option<i32> {
        self.pool.answer(pid)
    }

    fn gone(&self, pid: Pid) -> bool {
        self.pool.gone(pid)
    }

    fn timeout(&self) -> i32 {
        self.pool.timeout()
    }

    fn tick(&self) {
        self.pool.tick()
    }
}

/// qmail-lspawn defaultdelivery
pub fn run(args: &[OsString]) -> Result<(), Error> {
    let Some(aliasempty) = args.first() else {
        return Err(Error::silent(100));
    };
    let l = Local {
        aliasempty: aliasempty.to_string_lossy().into_owned(),
        ids: crate::ids::ids(),
        pool: resident::Pool::default(),
    };
    spawn::run(&l)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_become_reports() {
        let p = Pid::from_raw(1);
        assert_eq!(
            report(WaitStatus::Exited(p, 0), b"did 1+0+0\n"),
            b"Kdid 1+0+0\n"
        );
        assert_eq!(report(WaitStatus::Exited(p, 111), b"x"), b"Zx");
        assert_eq!(report(WaitStatus::Exited(p, 100), b"no"), b"Dno");
        assert_eq!(
            report(WaitStatus::Exited(p, QLX_NOALIAS), b""),
            b"ZUnable to find alias user!\n"
        );
    }
}

//! qmail-getpw: the default rules for who controls a local part when
//! users/cdb does not say. The longest prefix of the local part, cut at the
//! end or before a `-`, that names an account with a non-zero uid whose home
//! directory exists and is owned by it, gets the mail; the rest after the
//! `-` is the extension. Otherwise the alias user gets it, with the whole
//! local part as extension.

use crate::users::Delivery;
use common::Error;
use nix::errno::Errno;
use nix::unistd::User;
use std::ffi::OsString;
use std::io::Write;

/// The account that handles every local part no user claims.
pub const ALIAS_USER: &str = match option_env!("QMAIL_ALIAS_USER") {
    Some(u) => u,
    None => "alias",
};

/// The user-extension delimiter (conf-break).
pub const BREAK: u8 = b'-';

/// Longest account name qmail-getpw tries (its buffer holds 31 bytes and a NUL).
const USERLEN: usize = 32;

/// Exit codes qmail-getpw shares with qmail-lspawn (qlx.h).
pub const QLX_NFS: i32 = 115;
pub const QLX_NOALIAS: i32 = 116;
pub const QLX_SYS: i32 = 118;

/// Why no answer could be given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetpwError {
    /// A home directory could not be checked for a temporary reason.
    Nfs,
    /// The password database is busy (ETXTBSY).
    Sys,
}

fn is_temp(e: Errno) -> bool {
    crate::local::temp_errno(e as i32)
}

/// The account for `name`, treating ETXTBSY as a temporary failure.
fn account(name: &str) -> Result<Option<User>, GetpwError> {
    match User::from_name(name) {
        Ok(u) => Ok(u),
        Err(Errno::ETXTBSY) => Err(GetpwError::Sys),
        Err(_) => Ok(None),
    }
}

/// Whether `pw` may receive mail: not root, home present and owned by it.
fn owns_home(pw: &User) -> Result<bool, GetpwError> {
    if pw.uid.is_root() {
        return Ok(false);
    }
    match nix::sys::stat::stat(&pw.dir) {
        Ok(st) => Ok(st.st_uid == pw.uid.as_raw()),
        Err(e) if is_temp(e) => Err(GetpwError::Nfs),
        Err(_) => Ok(false),
    }
}

fn delivery(pw: &User, dash: &str, ext: &str) -> Delivery {
    Delivery {
        user: pw.name.clone(),
        uid: pw.uid.as_raw(),
        gid: pw.gid.as_raw(),
        homedir: pw.dir.clone(),
        dash: dash.to_string(),
        ext: ext.to_string(),
    }
}

/// Apply the rules to `local`; Ok(None) when not even the alias user exists.
pub fn getpw(local: &str) -> Result<Option<Delivery>, GetpwError> {
    let bytes = local.as_bytes();
    for cut in (0..=bytes.len()).rev() {
        if cut >= USERLEN || (cut < bytes.len() && bytes[cut] != BREAK) {
            continue;
        }
        let name = String::from_utf8_lossy(&bytes[..cut]).to_ascii_lowercase();
        if let Some(pw) = account(&name)? {
            if owns_home(&pw)? {
                return Ok(Some(if cut < bytes.len() {
                    delivery(&pw, "-", &local[cut + 1..])
                } else {
                    delivery(&pw, "", "")
                }));
            }
        }
    }
    Ok(account(ALIAS_USER)?.map(|pw| delivery(&pw, "-", local)))
}

/// qmail-getpw's output: user, uid, gid, home, dash, ext, each NUL-terminated.
pub fn format(d: &Delivery) -> Vec<u8> {
    let mut out = Vec::new();
    for f in [
        d.user.clone(),
        d.uid.to_string(),
        d.gid.to_string(),
        d.homedir.to_string_lossy().into_owned(),
        d.dash.clone(),
        d.ext.clone(),
    ] {
        out.extend(f.as_bytes());
        out.push(0);
    }
    out
}

/// qmail-getpw LOCAL: print the fields, or exit with qmail-lspawn's codes.
pub fn run(args: &[OsString]) -> Result<(), Error> {
    let Some(local) = args.first() else {
        return Err(Error::silent(100));
    };
    let local = local.to_string_lossy();
    match getpw(&local) {
        Ok(Some(d)) => {
            let mut out = std::io::stdout().lock();
            // qmail-getpw does not check its write: qmail-lspawn reads what came.
            let _ = out.write_all(&format(&d)).and_then(|_| out.flush());
            Ok(())
        }
        Ok(None) => Err(Error::silent(QLX_NOALIAS)),
        Err(GetpwError::Nfs) => Err(Error::silent(QLX_NFS)),
        Err(GetpwError::Sys) => Err(Error::silent(QLX_SYS)),
    }
}

//! checkpassword (0.90's interface): read `user\0password\0timestamp\0`
//! from fd 3, check the password against the system's password database
//! (shadow entry when there is one), then become the user (groups, gid,
//! uid), enter the home directory, set USER, HOME and SHELL and exec the
//! subprogram. Exit 1 for a refused login, 2 for misuse, 111 for a
//! temporary problem.
//!
//! Hashes are checked with the C library's crypt(3) from libcrypt
//! (libxcrypt on today's systems): it knows every format in use in
//! /etc/shadow (yescrypt, SHA-512, SHA-256, MD5, bcrypt, DES), which no
//! single maintained Rust crate covers. An unknown user costs a crypt call
//! of the system's own format (root's hash), as a wrong password does, so
//! timing does not tell which of the two it was.

use common::Error;
use std::ffi::{CStr, CString, OsString};
use std::os::unix::ffi::OsStrExt;

/// The most the interface may carry on fd 3 (the original's buffer).
const UP_MAX: usize = 512;

/// A yescrypt setting (Debian's default format and cost), hashed with when the user
/// does not exist so that both refusals cost the same.
const DUMMY_HASH: &str = "$y$j9T$F5Jx5fExrKuJRjEOWv7I4.$";

#[link(name = "crypt")]
extern "C" {
    fn crypt(key: *const libc::c_char, salt: *const libc::c_char) -> *mut libc::c_char;
}

/// The parts of a passwd entry checkpassword needs.
struct Account {
    name: Vec<u8>,
    passwd: Vec<u8>,
    uid: u32,
    gid: u32,
    dir: Vec<u8>,
    shell: Vec<u8>,
}

fn refuse() -> Error {
    Error::silent(1)
}

fn misuse() -> Error {
    Error::silent(2)
}

fn temporary() -> Error {
    Error::silent(111)
}

/// checkpassword subprogram [args...]
pub fn run(args: &[OsString]) -> Result<(), Error> {
    if args.len() < 2 {
        return Err(misuse());
    }
    let mut up = read_fd3()?;
    let (login, password) = split(&up)?;
    let login = login.to_vec();
    let password = CString::new(password).map_err(|_| misuse())?;
    up.fill(0);
    let acct = lookup(&login)?;
    let ok = match &acct {
        Some(a) => verify(&password, &a.passwd),
        None => {
            verify(&password, &decoy());
            false
        }
    };
    drop(password);
    let acct = match acct {
        Some(a) if ok => a,
        _ => return Err(refuse()),
    };
    become_user(&acct)?;
    exec(&args[1..], &acct)
}

/// Everything on fd 3; more than the interface allows is a refusal.
fn read_fd3() -> Result<Vec<u8>, Error> {
    let mut up = vec![0u8; UP_MAX + 1];
    let mut len = 0;
    loop {
        match nix::unistd::read(3, &mut up[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return Err(temporary()),
        }
        if len >= up.len() {
            return Err(refuse());
        }
    }
    let _ = nix::unistd::close(3);
    up.truncate(len);
    Ok(up)
}

/// The login and password: both must end in a NUL within the data.
fn split(up: &[u8]) -> Result<(&[u8], &[u8]), Error> {
    let z1 = up.iter().position(|&c| c == 0).ok_or_else(misuse)?;
    let rest = &up[z1 + 1..];
    let z2 = rest.iter().position(|&c| c == 0).ok_or_else(misuse)?;
    Ok((&up[..z1], &rest[..z2]))
}

/// The passwd entry with its shadow hash when there is one. A lookup that
/// fails for a reason other than absence is temporary.
fn lookup(login: &[u8]) -> Result<Option<Account>, Error> {
    let Ok(name) = CString::new(login) else {
        return Ok(None);
    };
    // SAFETY: getpwnam's result is copied before any other call.
    let pw = unsafe {
        *libc::__errno_location() = 0;
        libc::getpwnam(name.as_ptr())
    };
    if pw.is_null() {
        return match nix::errno::Errno::last() {
            nix::errno::Errno::EIO | nix::errno::Errno::EAGAIN | nix::errno::Errno::ETXTBSY => {
                Err(temporary())
            }
            _ => Ok(None),
        };
    }
    // SAFETY: pw points to a valid passwd entry until the next call.
    let mut acct = unsafe {
        let pw = &*pw;
        Account {
            name: CStr::from_ptr(pw.pw_name).to_bytes().to_vec(),
            passwd: CStr::from_ptr(pw.pw_passwd).to_bytes().to_vec(),
            uid: pw.pw_uid,
            gid: pw.pw_gid,
            dir: CStr::from_ptr(pw.pw_dir).to_bytes().to_vec(),
            shell: CStr::from_ptr(pw.pw_shell).to_bytes().to_vec(),
        }
    };
    // SAFETY: as above, for the shadow entry.
    unsafe {
        let sp = libc::getspnam(name.as_ptr());
        if !sp.is_null() && !(*sp).sp_pwdp.is_null() {
            acct.passwd = CStr::from_ptr((*sp).sp_pwdp).to_bytes().to_vec();
        }
    }
    Ok(Some(acct))
}

/// The hash an unknown user's password is checked against: root's when it
/// has a real one (so the cost is that of the format and rounds this
/// system actually uses), else [`DUMMY_HASH`].
fn decoy() -> Vec<u8> {
    // SAFETY: the entry is copied before any other call.
    let root = unsafe {
        let sp = libc::getspnam(c"root".as_ptr());
        if sp.is_null() || (*sp).sp_pwdp.is_null() {
            Vec::new()
        } else {
            CStr::from_ptr((*sp).sp_pwdp).to_bytes().to_vec()
        }
    };
    if root.first() == Some(&b'$') {
        root
    } else {
        DUMMY_HASH.as_bytes().to_vec()
    }
}

/// Whether `password` hashes to `stored`. An empty stored hash never
/// matches (no password means no POP access), nor does a locked one.
fn verify(password: &CStr, stored: &[u8]) -> bool {
    let Ok(salt) = CString::new(stored) else {
        return false;
    };
    // SAFETY: crypt returns NULL or a static buffer, read before any other call.
    let out = unsafe { crypt(password.as_ptr(), salt.as_ptr()) };
    if out.is_null() {
        return false;
    }
    // SAFETY: non-NULL result of crypt is a NUL-terminated string.
    let hashed = unsafe { CStr::from_ptr(out) }.to_bytes();
    !stored.is_empty() && constant_eq(hashed, stored)
}

/// Compare without stopping at the first difference.
fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// Groups, gid and uid of the user (failures refuse, as in the
/// original), then the home directory (a failure is temporary).
fn become_user(a: &Account) -> Result<(), Error> {
    common::privs::set_gid(a.gid).map_err(|_| refuse())?;
    common::privs::set_uid(a.uid).map_err(|_| refuse())?;
    std::env::set_current_dir(std::ffi::OsStr::from_bytes(&a.dir)).map_err(|_| temporary())
}

/// Exec the subprogram with USER, HOME and SHELL set; returns only on failure.
fn exec(argv: &[OsString], a: &Account) -> Result<(), Error> {
    let mut env = common::pathexec::EnvEdits::new();
    env.set(b"USER", Some(&a.name));
    env.set(b"HOME", Some(&a.dir));
    env.set(b"SHELL", Some(&a.shell));
    // The subprogram starts with the signals a C parent would give it.
    common::sig::reset_for_exec();
    common::pathexec::run_env(argv, &env);
    Err(temporary())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_needs_two_nuls() {
        assert_eq!(split(b"joe\0pw\0ts\0").unwrap(), (&b"joe"[..], &b"pw"[..]));
        assert_eq!(split(b"joe\0pw").unwrap_err().code, 2);
        assert_eq!(split(b"joe").unwrap_err().code, 2);
    }

    #[test]
    fn crypt_checks_todays_formats() {
        let pw = CString::new("secret").unwrap();
        for salt in [
            "$6$abcdefgh$",
            "$5$abcdefgh$",
            "$1$abcdefgh$",
            "$y$j9T$F5Jx5fExrKuJRjEOWv7I4.$",
        ] {
            let s = CString::new(salt).unwrap();
            // SAFETY: as in verify.
            let h = unsafe { CStr::from_ptr(crypt(pw.as_ptr(), s.as_ptr())) }
                .to_bytes()
                .to_vec();
            assert!(h.starts_with(&salt.as_bytes()[..3]), "{salt}");
            assert!(verify(&pw, &h));
            assert!(!verify(&CString::new("wrong").unwrap(), &h));
        }
        assert!(!verify(&pw, b""));
        assert!(!verify(&pw, b"!"));
        assert!(!verify(&pw, DUMMY_HASH.as_bytes()));
    }
}

//! Thin wrappers over the *at system calls a log directory needs (open,
//! link, rename, unlink, stat relative to the directory's descriptor), so
//! multilog never changes its working directory and every call reports the
//! errno that djb's wording turns into a message.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

fn cstr(name: &[u8]) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Open `name` relative to `dir` (None: the working directory), close-on-exec.
pub fn open_at(dir: Option<RawFd>, name: &[u8], flags: libc::c_int, mode: u32) -> io::Result<File> {
    let c = cstr(name)?;
    let fd = check(unsafe {
        libc::openat(
            dir.unwrap_or(libc::AT_FDCWD),
            c.as_ptr(),
            flags | libc::O_CLOEXEC,
            mode as libc::c_uint,
        )
    })?;
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// Open a directory for use as the base of the other calls.
pub fn open_dir(path: &[u8]) -> io::Result<OwnedFd> {
    let f = open_at(None, path, libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
    Ok(OwnedFd::from(f))
}

pub fn mkdir(path: &[u8], mode: u32) -> io::Result<()> {
    let c = cstr(path)?;
    check(unsafe { libc::mkdir(c.as_ptr(), mode as libc::mode_t) }).map(drop)
}

pub fn link_at(dir: &OwnedFd, from: &[u8], to: &[u8]) -> io::Result<()> {
    let (f, t) = (cstr(from)?, cstr(to)?);
    let d = dir.as_raw_fd();
    check(unsafe { libc::linkat(d, f.as_ptr(), d, t.as_ptr(), 0) }).map(drop)
}

pub fn rename_at(dir: &OwnedFd, from: &[u8], to: &[u8]) -> io::Result<()> {
    let (f, t) = (cstr(from)?, cstr(to)?);
    let d = dir.as_raw_fd();
    check(unsafe { libc::renameat(d, f.as_ptr(), d, t.as_ptr()) }).map(drop)
}

pub fn unlink_at(dir: &OwnedFd, name: &[u8]) -> io::Result<()> {
    let c = cstr(name)?;
    check(unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), 0) }).map(drop)
}

/// Mode and link count of `name` in `dir`.
pub fn stat_at(dir: &OwnedFd, name: &[u8]) -> io::Result<(u32, u64)> {
    let c = cstr(name)?;
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    check(unsafe { libc::fstatat(dir.as_raw_fd(), c.as_ptr(), &mut st, 0) })?;
    Ok((st.st_mode, st.st_nlink))
}

/// Take an exclusive flock without waiting (daemontools' lock_exnb on Linux),
/// so ours and the original exclude each other on the same directory.
pub fn lock_exnb(f: &File) -> io::Result<()> {
    check(unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) }).map(drop)
}

/// The names in the directory `path` (multilog never changes its working
/// directory, so the script's path stays valid) starting with `@` (the finished log files).
pub fn old_logs(path: &[u8]) -> io::Result<Vec<Vec<u8>>> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::OsStr::from_bytes(path);
    let mut names = Vec::new();
    for e in std::fs::read_dir(path)? {
        let name = e?.file_name();
        if name.as_bytes().first() == Some(&b'@') {
            names.push(name.as_bytes().to_vec());
        }
    }
    Ok(names)
}

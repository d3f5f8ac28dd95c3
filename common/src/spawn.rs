//! Starting a program the cheap way: posix_spawn, which glibc carries out
//! as a vfork-style clone (no copy of the caller's page tables), with the
//! signal state of `sig::reset_for_exec` (every signal the suite touches at
//! its default, none blocked), some descriptors moved into place and
//! optionally another working directory.
//!
//! std's Command takes a full fork instead as soon as a pre_exec hook is
//! needed to reset an ignored signal (a server started from a shell with
//! `&` ignores SIGINT and SIGQUIT); this path never does, which matters to
//! a program that starts another for every message (qmail-smtpd starting
//! qmail-queue).

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

extern "C" {
    static environ: *const *mut libc::c_char;
}

fn cstring(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

fn check(r: libc::c_int) -> io::Result<()> {
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(r))
    }
}

/// The spawn's attributes and file actions, destroyed on every path.
struct Setup {
    attr: libc::posix_spawnattr_t,
    actions: libc::posix_spawn_file_actions_t,
}

impl Drop for Setup {
    fn drop(&mut self) {
        // SAFETY: both were initialised by Setup::new before it returned.
        unsafe {
            libc::posix_spawnattr_destroy(&mut self.attr);
            libc::posix_spawn_file_actions_destroy(&mut self.actions);
        }
    }
}

impl Setup {
    fn new() -> io::Result<Box<Setup>> {
        // SAFETY: zeroed storage is only handed to the init functions; the
        // box keeps the objects where they were initialised.
        unsafe {
            let mut s: Box<Setup> = Box::new(std::mem::zeroed());
            check(libc::posix_spawnattr_init(&mut s.attr))?;
            if let Err(e) = check(libc::posix_spawn_file_actions_init(&mut s.actions)) {
                libc::posix_spawnattr_destroy(&mut s.attr);
                std::mem::forget(s);
                return Err(e);
            }
            Ok(s)
        }
    }

    /// Default dispositions for the suite's signals, an empty mask.
    fn signals(&mut self) -> io::Result<()> {
        // SAFETY: sigset operations on local sets, attributes initialised.
        unsafe {
            let mut def: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut def);
            for s in crate::sig::RESET {
                libc::sigaddset(&mut def, s);
            }
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            check(libc::posix_spawnattr_setsigdefault(&mut self.attr, &def))?;
            check(libc::posix_spawnattr_setsigmask(&mut self.attr, &none))?;
            let flags = libc::POSIX_SPAWN_SETSIGDEF | libc::POSIX_SPAWN_SETSIGMASK;
            check(libc::posix_spawnattr_setflags(
                &mut self.attr,
                flags as libc::c_short,
            ))
        }
    }
}

/// Start `prog` with arguments `argv` (argv[0] included), the caller's
/// environment, each `(from, to)` of `fds` duplicated onto `to`, and `dir`
/// as working directory when given. Returns the child's pid; a program
/// that cannot be executed is an error here, not a child that exits.
pub fn spawn(
    prog: &Path,
    argv: &[&OsStr],
    dir: Option<&Path>,
    fds: &[(RawFd, RawFd)],
) -> io::Result<libc::pid_t> {
    let prog = cstring(prog.as_os_str())?;
    let args: Vec<CString> = argv.iter().map(|a| cstring(a)).collect::<io::Result<_>>()?;
    let mut argp: Vec<*mut libc::c_char> = args.iter().map(|a| a.as_ptr().cast_mut()).collect();
    argp.push(std::ptr::null_mut());
    let dir = dir.map(|d| cstring(d.as_os_str())).transpose()?;
    // A source that is also a target could be overwritten before its turn
    // (or keep its close-on-exec flag): such sources go through a copy.
    let mut dups = Vec::new();
    let mut moves = Vec::new();
    for &(from, to) in fds {
        let mut src = from;
        if fds.iter().any(|&(_, t)| t == from) {
            // SAFETY: duplicating a descriptor the caller owns.
            src = unsafe { libc::fcntl(from, libc::F_DUPFD_CLOEXEC, 10) };
            if src == -1 {
                break;
            }
            dups.push(src);
        }
        moves.push((src, to));
    }
    let result = if moves.len() == fds.len() {
        spawn_with(&prog, &argp, dir.as_deref(), &moves)
    } else {
        Err(io::Error::last_os_error())
    };
    for d in dups {
        // SAFETY: closing the copies made above.
        unsafe { libc::close(d) };
    }
    result
}

fn spawn_with(
    prog: &CString,
    argp: &[*mut libc::c_char],
    dir: Option<&std::ffi::CStr>,
    moves: &[(RawFd, RawFd)],
) -> io::Result<libc::pid_t> {
    let mut s = Setup::new()?;
    s.signals()?;
    for &(from, to) in moves {
        // SAFETY: file actions initialised; descriptors are the caller's.
        check(unsafe { libc::posix_spawn_file_actions_adddup2(&mut s.actions, from, to) })?;
    }
    if let Some(d) = dir {
        // SAFETY: as above, with a NUL-terminated path.
        check(unsafe { libc::posix_spawn_file_actions_addchdir_np(&mut s.actions, d.as_ptr()) })?;
    }
    let mut pid: libc::pid_t = 0;
    // SAFETY: every pointer is valid for the call: the program path, the
    // NULL-terminated argv, the process's environ, initialised attributes.
    check(unsafe {
        libc::posix_spawn(
            &mut pid,
            prog.as_ptr(),
            &s.actions,
            &s.attr,
            argp.as_ptr(),
            environ.cast(),
        )
    })?;
    Ok(pid)
}

/// Wait for `pid`: its exit code, or None if a signal ended it.
pub fn wait(pid: libc::pid_t) -> io::Result<Option<i32>> {
    let mut st = 0;
    loop {
        // SAFETY: waiting for our own child.
        let r = unsafe { libc::waitpid(pid, &mut st, 0) };
        if r == pid {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(libc::WIFEXITED(st).then(|| libc::WEXITSTATUS(st)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::{AsRawFd, OwnedFd};

    fn pipe() -> (std::fs::File, std::fs::File) {
        let (r, w): (OwnedFd, OwnedFd) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        (r.into(), w.into())
    }

    #[test]
    fn child_gets_its_descriptors_directory_and_default_signals() {
        // An ignored signal survives exec; the child must not inherit it.
        unsafe { libc::signal(libc::SIGQUIT, libc::SIG_IGN) };
        let (in_r, mut in_w) = pipe();
        let (out_r, out_w) = pipe();
        let script = "pwd; cat; grep SigIgn /proc/self/status";
        let argv = [OsStr::new("sh"), OsStr::new("-c"), OsStr::new(script)];
        let pid = spawn(
            Path::new("/bin/sh"),
            &argv,
            Some(Path::new("/")),
            &[(in_r.as_raw_fd(), 0), (out_w.as_raw_fd(), 1)],
        )
        .unwrap();
        drop((in_r, out_w));
        in_w.write_all(b"through fd 0\n").unwrap();
        drop(in_w);
        let mut out = String::new();
        { out_r }.read_to_string(&mut out).unwrap();
        assert_eq!(wait(pid).unwrap(), Some(0));
        let mut lines = out.lines();
        assert_eq!(lines.next(), Some("/"));
        assert_eq!(lines.next(), Some("through fd 0"));
        let ign = lines.next().unwrap().split_whitespace().nth(1).unwrap();
        let mask = u64::from_str_radix(ign, 16).unwrap();
        assert_eq!(
            mask & (1 << (libc::SIGQUIT - 1)),
            0,
            "SIGQUIT still ignored: {ign}"
        );
    }

    #[test]
    fn a_program_that_cannot_run_is_an_error() {
        let e = spawn(
            Path::new("/nonexistent/prog"),
            &[OsStr::new("x")],
            None,
            &[],
        );
        assert_eq!(e.unwrap_err().kind(), io::ErrorKind::NotFound);
    }
}

//! qmail-start: start qmail-send, qmail-lspawn, qmail-rspawn and
//! qmail-clean connected by pipes, qmail-queued beside them, and
//! optionally a logger.
//! `qmail-start defaultdelivery [ logger arg ... ]`: the first argument goes
//! to qmail-lspawn; the rest is a program that reads qmail-send's log on
//! its fd 0 (splogger, multilog ...). Every program is found through PATH.
//! As root with the qmail users present each runs under its own id (logger
//! qmaill, rspawn qmailr, clean qmailq, send qmails, lspawn stays root);
//! otherwise all run as the invoking user.

use crate::ids::{self, Ids};
use common::Error;
use std::ffi::{CString, OsString};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

fn die() -> Error {
    Error::silent(111)
}

fn cstrings(args: &[OsString]) -> Vec<CString> {
    args.iter()
        .map(|a| CString::new(a.as_bytes()).unwrap_or_default())
        .collect()
}

/// In a child: become `uid`/`gid` (when privileged) and exec `argv`.
fn become_and_exec(ids: &Ids, ugid: Option<(u32, u32)>, argv: &[CString]) -> ! {
    become_user(ids, ugid);
    exec(argv)
}

/// In a child: become `uid`/`gid` when privileged.
fn become_user(ids: &Ids, ugid: Option<(u32, u32)>) {
    if ids.privileged {
        if let Some((uid, gid)) = ugid {
            if common::privs::drop_to(common::privs::Account { uid, gid }).is_err() {
                unsafe { libc::_exit(111) }
            }
        }
    }
}

/// In a child: exec `argv` through PATH.
fn exec(argv: &[CString]) -> ! {
    common::sig::reset_for_exec();
    let _ = nix::unistd::execvp(&argv[0], argv);
    unsafe { libc::_exit(111) }
}

/// Copy `from` onto descriptor `to`.
fn copy(from: RawFd, to: RawFd) -> Result<(), Error> {
    if from != to && unsafe { libc::dup2(from, to) } == -1 {
        return Err(die());
    }
    Ok(())
}

fn fork() -> Result<bool, Error> {
    // Safe: qmail-start is single-threaded.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => Ok(true),
        Ok(nix::unistd::ForkResult::Parent { .. }) => Ok(false),
        Err(_) => Err(die()),
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd), Error> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|_| die())
}

/// Start a daemon whose fd 0 reads `input` and fd 1 writes `output`.
fn daemon(
    ids: &Ids,
    ugid: Option<(u32, u32)>,
    input: &OwnedFd,
    output: &OwnedFd,
    argv: &[CString],
) -> Result<(), Error> {
    if fork()? {
        let ok = copy(input.as_raw_fd(), 0).is_ok() && copy(output.as_raw_fd(), 1).is_ok();
        if !ok {
            unsafe { libc::_exit(111) }
        }
        for fd in 2..=6 {
            unsafe { libc::close(fd) };
        }
        become_and_exec(ids, ugid, argv);
    }
    Ok(())
}

pub fn run(args: &[OsString]) -> Result<(), Error> {
    std::env::set_current_dir("/").map_err(|_| die())?;
    unsafe { libc::umask(0o077) };
    let ids = ids::ids();
    if ids.privileged {
        common::privs::set_gid(ids.gid_qmail).map_err(|_| die())?;
    }
    // Keep fds 2..6 busy so that new pipes never land on them.
    for fd in 2..=6 {
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
            copy(0, fd)?;
        }
    }
    let mut rest = args;
    let mut lspawn = vec![OsString::from("qmail-lspawn"), OsString::from("./Mailbox")];
    if let Some(first) = rest.first() {
        lspawn[1] = first.clone();
        rest = &rest[1..];
    }
    start_queued(&ids)?;
    if !rest.is_empty() {
        start_logger(&ids, rest)?;
    }
    let p: Vec<(OwnedFd, OwnedFd)> = (0..6).map(|_| pipe()).collect::<Result<_, _>>()?;
    daemon(&ids, None, &p[0].0, &p[1].1, &cstrings(&lspawn))?;
    let r = Some((ids.qmailr, ids.gid_qmail));
    daemon(
        &ids,
        r,
        &p[2].0,
        &p[3].1,
        &cstrings(&["qmail-rspawn".into()]),
    )?;
    let q = Some((ids.qmailq, ids.gid_qmail));
    daemon(
        &ids,
        q,
        &p[4].0,
        &p[5].1,
        &cstrings(&["qmail-clean".into()]),
    )?;
    if ids.privileged {
        common::privs::set_uid(ids.qmails).map_err(|_| die())?;
    }
    copy(1, 0)?;
    for (to, fd) in [
        (1, &p[0].1),
        (2, &p[1].0),
        (3, &p[2].1),
        (4, &p[3].0),
        (5, &p[4].1),
        (6, &p[5].0),
    ] {
        copy(fd.as_raw_fd(), to)?;
    }
    drop(p);
    let argv = cstrings(&["qmail-send".into()]);
    common::sig::reset_for_exec();
    let _ = nix::unistd::execvp(&argv[0], &argv);
    Err(die())
}

/// qmail-queued as qmailq, ending with qmail-send: its parent once this
/// process has become qmail-send. It holds none of qmail-send's pipes.
/// Not there or not starting, it leaves callers to start qmail-queue.
fn start_queued(ids: &Ids) -> Result<(), Error> {
    let parent = nix::unistd::getpid();
    if fork()? {
        for fd in 3..=6 {
            unsafe { libc::close(fd) };
        }
        become_user(ids, Some((ids.qmailq, ids.gid_qmail)));
        // After the change of ids, which would clear it; and the parent
        // may have gone before it was set.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) };
        if nix::unistd::getppid() != parent {
            unsafe { libc::_exit(0) }
        }
        exec(&cstrings(&["qmail-queued".into()]));
    }
    Ok(())
}

/// The logger reads what qmail-send writes on its fd 0 (our fd 1 after this).
fn start_logger(ids: &Ids, argv: &[OsString]) -> Result<(), Error> {
    let (r, w) = pipe()?;
    if fork()? {
        if copy(r.as_raw_fd(), 0).is_err() {
            unsafe { libc::_exit(111) }
        }
        for fd in 2..=6 {
            unsafe { libc::close(fd) };
        }
        become_and_exec(ids, Some((ids.qmaill, ids.gid_nofiles)), &cstrings(argv));
    }
    copy(w.as_raw_fd(), 1)
}

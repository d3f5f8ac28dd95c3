//! Starting a connection's child without waiting for it. When no lookup can
//! keep a connection waiting (-H, -R and -l given), tcpserver examines the
//! connection itself and starts the child with clone(CLONE_VM) and no
//! CLONE_VFORK: no address space is copied, as with vfork, and the accept
//! loop goes on at once instead of sleeping until the child has exec'd
//! (under load that sleep, and the wakeup after it, left a CPU idle).
//!
//! The child runs in our memory until it execs, beside us. So everything
//! it needs is built beforehand into a Detached that we keep, untouched,
//! until we reap the child, and the child itself only makes system calls:
//! no allocation, no Rust runtime, no panics. It shares our errno until it
//! execs; the only errno it can set is from a failing dup2 or exec, read at
//! once to word its message.

use crate::env::EnvBlock;
use std::os::fd::RawFd;
use std::os::raw::{c_char, c_int, c_void};

/// The child's stack: it makes a few calls, execvpe the deepest.
const STACK: usize = 64 * 1024;

/// A -v line the child writes, with its pid between the two parts when
/// `pid` is set.
pub struct Line {
    pub head: Vec<u8>,
    pub pid: bool,
    pub tail: Vec<u8>,
}

/// What one child does.
pub enum Then {
    /// Run the program on the connection: descriptors 0 and 1, `keep`
    /// (unless -1) as descriptor 3, this environment; `fail` starts the
    /// warning when it cannot be run.
    Exec {
        fd: RawFd,
        keep: RawFd,
        prog: *const c_char,
        argv: *const *const c_char,
        env: EnvBlock,
        fail: Option<Vec<u8>>,
    },
    /// Exit at once with this code (a denied or dropped connection).
    Exit(c_int),
}

/// Everything a detached child uses. Kept by the parent until the child
/// has been reaped.
pub struct Detached {
    stack: Vec<u8>,
    lines: Vec<Line>,
    then: Then,
    mask: libc::sigset_t,
}

/// Start a child that writes `lines` to descriptor 2, then does `then`.
pub fn spawn(lines: Vec<Line>, then: Then) -> Result<(libc::pid_t, Box<Detached>), c_int> {
    let mut d = Box::new(Detached {
        stack: Vec::with_capacity(STACK),
        lines,
        then,
        // SAFETY: an all-zero sigset_t is a valid (empty) set.
        mask: unsafe { std::mem::zeroed() },
    });
    let top = (d.stack.as_mut_ptr() as usize + STACK) & !15;
    // SAFETY: signals stay blocked from before the clone until the child
    // has put back the default actions, so none of our handlers (which
    // would touch our memory) runs in it; we then restore our mask.
    let pid = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::sigprocmask(libc::SIG_SETMASK, &all, &mut d.mask);
        let arg = &*d as *const Detached as *mut c_void;
        let pid = libc::clone(
            child,
            top as *mut c_void,
            libc::CLONE_VM | libc::SIGCHLD,
            arg,
        );
        let err = *libc::__errno_location();
        libc::sigprocmask(libc::SIG_SETMASK, &d.mask, std::ptr::null_mut());
        if pid == -1 {
            return Err(err);
        }
        pid
    };
    Ok((pid, d))
}

/// The child: system calls only, on data nobody changes while it runs.
extern "C" fn child(arg: *mut c_void) -> c_int {
    // SAFETY: arg is the Detached the parent keeps until it reaps us.
    let d = unsafe { &*(arg as *const Detached) };
    // SAFETY: plain system calls on our own signal table and descriptors;
    // every pointer given points into d, alive and unchanged.
    unsafe {
        for sig in [libc::SIGPIPE, libc::SIGCHLD, libc::SIGTERM] {
            libc::signal(sig, libc::SIG_DFL);
        }
        libc::sigprocmask(libc::SIG_SETMASK, &d.mask, std::ptr::null_mut());
        let mut digits = [0u8; 12];
        let pid = decimal(libc::getpid() as u32, &mut digits);
        for l in &d.lines {
            let none: &[u8] = &[];
            write3(&l.head, if l.pid { pid } else { none }, &l.tail);
        }
        let (fd, keep, prog, argv, env, fail) = match &d.then {
            Then::Exit(code) => libc::_exit(*code),
            Then::Exec {
                fd,
                keep,
                prog,
                argv,
                env,
                fail,
            } => (*fd, *keep, *prog, *argv, env, fail),
        };
        if libc::dup2(fd, 0) == -1 || libc::dup2(fd, 1) == -1 || !on_fd3(keep) {
            let why = common::errstr::text(*libc::__errno_location());
            let head = b"tcpserver: warning: dropping connection, unable to set up descriptors: ";
            write3(head, why.as_bytes(), b"\n");
            libc::_exit(111);
        }
        libc::execvpe(prog, argv, env.as_ptr() as *const *mut c_char as _);
        if let Some(head) = fail {
            let why = common::errstr::text(*libc::__errno_location());
            write3(head, why.as_bytes(), b"\n");
        }
        libc::_exit(111)
    }
}

/// Put `keep` on descriptor 3 for the program, open across exec; true
/// with nothing to do (-1).
///
/// # Safety
/// Only system calls, for the detached child.
unsafe fn on_fd3(keep: RawFd) -> bool {
    match keep {
        -1 => true,
        3 => libc::fcntl(3, libc::F_SETFD, 0) != -1,
        _ => libc::dup2(keep, 3) != -1,
    }
}

/// `n` in decimal, in `buf`.
fn decimal(mut n: u32, buf: &mut [u8; 12]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 || i == 0 {
            return &buf[i..];
        }
    }
}

/// One line to descriptor 2 in one writev, so lines stay whole.
fn write3(a: &[u8], b: &[u8], c: &[u8]) {
    let iov = [a, b, c].map(|s| libc::iovec {
        iov_base: s.as_ptr() as *mut c_void,
        iov_len: s.len(),
    });
    // SAFETY: three valid buffers; a short write loses part of a log line.
    unsafe { libc::writev(2, iov.as_ptr(), 3) };
}

#[cfg(test)]
mod tests {
    use super::decimal;

    #[test]
    fn pids_in_decimal() {
        let mut b = [0u8; 12];
        assert_eq!(decimal(0, &mut b), b"0");
        assert_eq!(decimal(4194304, &mut b), b"4194304");
        assert_eq!(decimal(u32::MAX, &mut b), b"4294967295");
    }
}

//! Running a log directory's processor: `sh -c PROCESSOR` in that directory
//! with the original's descriptors: 0 `previous`, 1 `processed` (truncated),
//! 4 `state`, 5 `newstate` (truncated). The caller retries until it exits 0.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};

/// Run the processor once; true when it exited 0.
pub fn run(dir: &OwnedFd, processor: &[u8]) -> bool {
    let Ok(cmd) = CString::new(processor) else {
        return false;
    };
    let msg = format!(
        "multilog: fatal: unable to run {}: ",
        String::from_utf8_lossy(processor)
    );
    match unsafe { libc::fork() } {
        -1 => false,
        0 => child(dir.as_raw_fd(), &cmd, &msg),
        pid => wait_ok(pid),
    }
}

fn wait_ok(pid: libc::pid_t) -> bool {
    let mut status = 0;
    loop {
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            return libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
        }
        if r == -1 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return false;
        }
    }
}

/// In the forked child: set up the descriptors and exec; never returns.
fn child(dir: i32, cmd: &CString, msg: &str) -> ! {
    // Rust ignores SIGPIPE in multilog; the processor gets the default back.
    let setup = unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL) != libc::SIG_ERR
            && libc::fchdir(dir) == 0
            && place(c"previous", libc::O_RDONLY, 0)
            && place(
                c"processed",
                libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC,
                1,
            )
            && (place(c"state", libc::O_RDONLY, 4) || missing_state())
            && place(
                c"newstate",
                libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC,
                5,
            )
    };
    if setup {
        let argv = [
            c"sh".as_ptr(),
            c"-c".as_ptr(),
            cmd.as_ptr(),
            std::ptr::null(),
        ];
        unsafe { libc::execvp(c"sh".as_ptr(), argv.as_ptr()) };
    }
    let why = common::error::Errno::last().text();
    let line = format!("{msg}{why}\n");
    unsafe {
        libc::write(2, line.as_ptr().cast(), line.len());
        libc::_exit(111)
    }
}

/// A `state` removed by hand reads as empty, as on a fresh start, instead
/// of making every run fail (where the original retries forever).
unsafe fn missing_state() -> bool {
    *libc::__errno_location() == libc::ENOENT && place(c"/dev/null", libc::O_RDONLY, 4)
}

/// Open `name` and move it to descriptor `to`.
unsafe fn place(name: &std::ffi::CStr, flags: i32, to: i32) -> bool {
    let fd = libc::open(name.as_ptr(), flags, 0o644);
    if fd == -1 {
        return false;
    }
    if fd == to {
        return true;
    }
    let ok = libc::dup2(fd, to) == to;
    libc::close(fd);
    ok
}

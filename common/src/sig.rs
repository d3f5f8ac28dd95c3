//! Signal state a program we exec must start with. Rust's runtime ignores
//! SIGPIPE before main, and an ignored signal (like a blocked one) survives
//! exec; the C originals start with every signal at its default, so whatever
//! they exec does too. Every fork+exec or pre_exec point of the suite calls
//! `reset_for_exec` in the child, leaving the parent's own dispositions alone
//! (its code may rely on EPIPE errors).

use std::os::unix::process::CommandExt;
use std::process::Command;

/// Signals the suite's programs ignore or catch; each goes back to SIG_DFL.
/// Caught signals revert at exec by themselves, but a handler could run in
/// the child between fork and exec, so they are reset too.
pub(crate) const RESET: [libc::c_int; 10] = [
    libc::SIGPIPE,
    libc::SIGCHLD,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGALRM,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGCONT,
];

/// Put the signals back to their defaults and unblock them all. Only calls
/// async-signal-safe functions, so it may run in a forked child of a
/// multi-threaded process (e.g. from `Command::pre_exec`).
pub fn reset_for_exec() {
    // SAFETY: signal and sigprocmask with valid arguments; no allocation.
    unsafe {
        for s in RESET {
            libc::signal(s, libc::SIG_DFL);
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
    }
}

/// Make `cmd`'s child start with default signals (see `reset_for_exec`).
///
/// std's spawn already gives the child SIGPIPE at SIG_DFL and an empty
/// signal mask, and caught signals revert at exec. Only another signal
/// this process ignores needs the explicit reset, and that reset (a
/// pre_exec hook) costs std's vfork-style posix_spawn path: a full fork per
/// child. So the hook is added only when it has something to do.
pub fn default_signals(cmd: &mut Command) -> &mut Command {
    if !ignores_any() {
        return cmd;
    }
    // SAFETY: the closure only calls async-signal-safe functions.
    unsafe {
        cmd.pre_exec(|| {
            reset_for_exec();
            Ok(())
        })
    }
}

/// Whether any signal of RESET but SIGPIPE is ignored right now.
fn ignores_any() -> bool {
    RESET[1..].iter().any(|&s| {
        // SAFETY: a null new action only reads the current one.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            libc::sigaction(s, std::ptr::null(), &mut old) == 0 && old.sa_sigaction == libc::SIG_IGN
        }
    })
}

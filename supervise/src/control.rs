//! The control side of a service: the command letters svc writes into
//! supervise/control and what each asks of supervise, and the two fifos
//! supervise keeps open: `control` (read end polled, a write end held so the
//! fifo never reports end of file) and `ok` (a reader whose mere existence
//! tells svok and svstat that supervise runs).

use common::error::{Error, Result};
use std::fs::File;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};

/// One byte written to supervise/control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// `u`: want it up, start it if down.
    Up,
    /// `d`: want it down; TERM then CONT to the running service.
    Down,
    /// `o`: run it once if down, do not restart it.
    Once,
    /// `p`: STOP it and remember it is paused.
    Pause,
    /// `c`: CONT it.
    Cont,
    /// `h`, `a`, `i`, `t`, `k`: send that signal.
    Signal(nix::sys::signal::Signal),
    /// `x`: exit once the service is down.
    Exit,
}

impl Command {
    /// The command for a byte; None for bytes supervise ignores.
    pub fn from_byte(b: u8) -> Option<Command> {
        use nix::sys::signal::Signal::*;
        Some(match b {
            b'u' => Command::Up,
            b'd' => Command::Down,
            b'o' => Command::Once,
            b'p' => Command::Pause,
            b'c' => Command::Cont,
            b'h' => Command::Signal(SIGHUP),
            b'a' => Command::Signal(SIGALRM),
            b'i' => Command::Signal(SIGINT),
            b't' => Command::Signal(SIGTERM),
            b'k' => Command::Signal(SIGKILL),
            b'x' => Command::Exit,
            _ => return None,
        })
    }
}

/// The open ends of supervise/control.
pub struct Control {
    pub read: File,
    /// False when someone replaced the fifo by another kind of file: it is
    /// then always "readable", so supervise reads it on a timer instead of
    /// polling it (the original spins at full CPU there).
    pub is_fifo: bool,
    _write: File,
}

/// Create a fifo, ignoring failure as the original does: opening it next
/// reports the real problem.
fn make_fifo(path: &str) {
    let _ = nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600));
}

fn open(path: &str, write: bool) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .read(!write)
        .write(write)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

/// Make and open supervise/control; `dir` is the service as named on the
/// command line, for messages.
pub fn open_control(dir: &str) -> Result<Control> {
    let path = "supervise/control";
    make_fifo(path);
    let read =
        open(path, false).map_err(|e| Error::sys(format!("unable to read {dir}/{path}"), e))?;
    let write =
        open(path, true).map_err(|e| Error::sys(format!("unable to write {dir}/{path}"), e))?;
    let is_fifo = read
        .metadata()
        .map(|m| m.file_type().is_fifo())
        .unwrap_or(true);
    Ok(Control {
        read,
        is_fifo,
        _write: write,
    })
}

/// Make and open supervise/ok for reading: held for supervise's lifetime.
pub fn open_ok(dir: &str) -> Result<File> {
    let path = "supervise/ok";
    make_fifo(path);
    open(path, false).map_err(|e| Error::sys(format!("unable to read {dir}/{path}"), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters() {
        for b in b"udopchaitkx" {
            assert!(Command::from_byte(*b).is_some(), "{}", *b as char);
        }
        assert_eq!(Command::from_byte(b'q'), None);
        assert_eq!(
            Command::from_byte(b't'),
            Some(Command::Signal(nix::sys::signal::Signal::SIGTERM))
        );
    }
}

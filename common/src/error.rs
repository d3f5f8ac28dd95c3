//! The error every program returns: a message in the originals' words and the
//! exit code it means (111 temporary, 100 permanent or usage, or a program's
//! own documented code), so binaries never pick exit codes by hand.

use std::fmt;
use std::io;

/// Exit code for a temporary failure: try again later.
pub const EXIT_TEMP: i32 = 111;
/// Exit code for a permanent failure or a usage error.
pub const EXIT_PERM: i32 = 100;

/// How the program reports the failure before exiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `NAME: fatal: MSG`
    Fatal,
    /// `NAME: usage: MSG`
    Usage,
    /// `MSG` alone (programs such as svok that print nothing, or print their own text).
    Bare,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub code: i32,
    pub msg: String,
    pub style: Style,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// A temporary failure (exit 111): `what` is the action, e.g. "unable to open x".
    pub fn temp(msg: impl Into<String>) -> Error {
        Error {
            code: EXIT_TEMP,
            msg: msg.into(),
            style: Style::Fatal,
        }
    }

    /// A permanent failure (exit 100).
    pub fn perm(msg: impl Into<String>) -> Error {
        Error {
            code: EXIT_PERM,
            msg: msg.into(),
            style: Style::Fatal,
        }
    }

    /// A usage error (exit 100), printed as `NAME: usage: MSG`.
    pub fn usage(msg: impl Into<String>) -> Error {
        Error {
            code: EXIT_PERM,
            msg: msg.into(),
            style: Style::Usage,
        }
    }

    /// A failure with a program's own documented exit code.
    pub fn code(code: i32, msg: impl Into<String>) -> Error {
        Error {
            code,
            msg: msg.into(),
            style: Style::Fatal,
        }
    }

    /// Exit silently (or with a bare message) with `code`.
    pub fn silent(code: i32) -> Error {
        Error {
            code,
            msg: String::new(),
            style: Style::Bare,
        }
    }

    /// A temporary failure caused by a system call: `what: why` with djb's text for errno.
    pub fn sys(what: impl fmt::Display, e: impl Into<Errno>) -> Error {
        Error::temp(format!("{what}: {}", e.into().text()))
    }

    /// The same failure with a different exit code.
    pub fn with_code(mut self, code: i32) -> Error {
        self.code = code;
        self
    }

    /// The line printed on stderr for this error by program `prog`, without newline.
    pub fn line(&self, prog: &str) -> String {
        match self.style {
            Style::Fatal => format!("{prog}: fatal: {}", self.msg),
            Style::Usage => format!("{prog}: usage: {}", self.msg),
            Style::Bare => self.msg.clone(),
        }
    }

    /// Print this error the way `prog` reports it and exit with its code.
    pub fn exit(&self, prog: &str) -> ! {
        self.print(prog);
        std::process::exit(self.code)
    }

    /// Print this error the way `prog` reports it (nothing when silent).
    pub fn print(&self, prog: &str) {
        let line = self.line(prog);
        if !line.is_empty() {
            eprintln!("{line}");
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for Error {}

/// An errno value, from nix or std::io, rendered with djb's wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
    pub fn text(self) -> &'static str {
        crate::errstr::text(self.0)
    }

    pub fn last() -> Errno {
        Errno(io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }
}

impl From<nix::errno::Errno> for Errno {
    fn from(e: nix::errno::Errno) -> Errno {
        Errno(e as i32)
    }
}

impl From<io::Error> for Errno {
    fn from(e: io::Error) -> Errno {
        Errno::from(&e)
    }
}

impl From<&io::Error> for Errno {
    fn from(e: &io::Error) -> Errno {
        match e.raw_os_error() {
            Some(n) => Errno(n),
            None => match e.kind() {
                io::ErrorKind::UnexpectedEof => Errno(libc::EPROTO),
                io::ErrorKind::WriteZero => Errno(libc::EIO),
                io::ErrorKind::InvalidData => Errno(libc::EINVAL),
                _ => Errno(libc::EIO),
            },
        }
    }
}

/// Run a program's main: on error print it as `prog` would and exit with its code.
pub fn main_exit(prog: &str, r: Result<()>) -> ! {
    std::process::exit(report(prog, r))
}

/// The end of a program's main without the exit: the error printed as
/// `prog` would, and the exit code.
pub fn report(prog: &str, r: Result<()>) -> i32 {
    let Err(e) = r else {
        return 0;
    };
    e.print(prog);
    e.code
}

/// Print `prog: warning: msg` on stderr.
pub fn warn(prog: &str, msg: impl fmt::Display) {
    eprintln!("{prog}: warning: {msg}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_follow_the_originals() {
        let e = Error::sys("unable to chdir to x", nix::errno::Errno::ENOENT);
        assert_eq!(
            e.line("svc"),
            "svc: fatal: unable to chdir to x: file does not exist"
        );
        assert_eq!(e.code, 111);
        let u = Error::usage("svok dir");
        assert_eq!(u.line("svok"), "svok: usage: svok dir");
        assert_eq!(u.code, 100);
    }
}

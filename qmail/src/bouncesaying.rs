//! bouncesaying: bounce the message with a given text, optionally only when
//! a program exits 0 (bouncesaying(1)). Also the "run a program and look at
//! its exit code" step that except and condredirect share.

use common::Error;
use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::process::Command;

/// Run `argv` (program and arguments) and return its exit code: an exec
/// failure counts as 111 when temporary and 100 otherwise; a crash or a
/// 111 exit is the caller's fatal error.
pub fn run_child(argv: &[OsString]) -> Result<i32, Error> {
    let code = match common::sig::default_signals(&mut Command::new(&argv[0]))
        .args(&argv[1..])
        .status()
    {
        Ok(s) if s.signal().is_some() => return Err(Error::temp("child crashed")),
        Ok(s) => s.code().unwrap_or(111),
        Err(e) => {
            let n = e.raw_os_error().unwrap_or(0);
            if n == libc::EAGAIN {
                return Err(Error::sys("unable to fork", e));
            }
            // The original's child exits 111 or 100 when exec fails.
            if crate::local::temp_errno(n) {
                111
            } else {
                100
            }
        }
    };
    match code {
        111 => Err(Error::temp("temporary child error")),
        c => Ok(c),
    }
}

/// Run bouncesaying with `args` (without argv[0]).
pub fn run(args: &[OsString]) -> Result<(), Error> {
    let Some(text) = args.first() else {
        return Err(crate::local::bare(
            100,
            "bouncesaying: usage: bouncesaying error [ program [ arg ... ] ]",
        ));
    };
    if args.len() > 1 && run_child(&args[1..])? != 0 {
        return Ok(());
    }
    Err(crate::local::bare(100, text.to_string_lossy()))
}

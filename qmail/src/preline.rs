//! preline: feed a program the message with the mbox-style lines qmail-local
//! would write ($UFLINE, $RPLINE, $DTLINE) in front, for programs that expect
//! them (preline(1)); exits with the program's exit code.

use common::Error;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

const USAGE: &str = "preline: usage: preline cmd [ arg ... ]";

fn usage() -> Error {
    crate::local::bare(100, USAGE)
}

/// Run preline with `args` (without argv[0]).
pub fn run(args: &[OsString]) -> Result<(), Error> {
    let ufline = std::env::var_os("UFLINE").ok_or_else(usage)?;
    let rpline = std::env::var_os("RPLINE").ok_or_else(usage)?;
    let dtline = std::env::var_os("DTLINE").ok_or_else(usage)?;
    let p = common::getopt::getopt("preline", args, "frdFRD").ok_or_else(usage)?;
    let (mut uf, mut rp, mut dt) = (true, true, true);
    for o in &p.opts {
        match o.flag {
            b'f' => uf = false,
            b'r' => rp = false,
            b'd' => dt = false,
            b'F' => uf = true,
            b'R' => rp = true,
            _ => dt = true,
        }
    }
    let Some((prog, rest)) = p.operands.split_first() else {
        return Err(usage());
    };
    let mut child = common::sig::default_signals(&mut Command::new(prog))
        .args(rest)
        .stdin(Stdio::piped())
        .spawn()
        .map_err(|e| {
            let code = if crate::local::temp_errno(e.raw_os_error().unwrap_or(0)) {
                111
            } else {
                100
            };
            Error::sys(format!("unable to run {}", prog.to_string_lossy()), e).with_code(code)
        })?;
    let mut pipe = child.stdin.take().expect("piped stdin");
    let mut head = Vec::new();
    for (on, v) in [(uf, &ufline), (rp, &rpline), (dt, &dtline)] {
        if on {
            head.extend(v.as_bytes());
        }
    }
    // A program that stops reading early is its own business: its exit
    // code is what counts, as in the original (SIGPIPE ignored).
    let _ = pipe.write_all(&head);
    copy(&mut std::io::stdin().lock(), &mut pipe)?;
    drop(pipe);
    let status = child.wait().map_err(|e| Error::sys("wait failed", e))?;
    if status.signal().is_some() {
        return Err(Error::temp("child crashed"));
    }
    match status.code().unwrap_or(111) {
        0 => Ok(()),
        c => Err(Error::silent(c)),
    }
}

/// Copy stdin to the program; a read error is fatal, a write error ends the copy.
fn copy(input: &mut impl Read, out: &mut impl Write) -> Result<(), Error> {
    let mut buf = vec![0u8; 65536];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::sys("unable to copy input", e)),
        };
        if out.write_all(&buf[..n]).is_err() {
            return Ok(());
        }
    }
}

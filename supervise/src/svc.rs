//! svc: sends control letters to the supervise of each named service by
//! writing them into DIR/supervise/control. Problems with one service are
//! warnings and the others are still served; the exit code is 0 unless the
//! options are wrong (100) or the working directory is lost (111).

use common::error::{warn, Error, Result, Style, EXIT_PERM};
use common::getopt;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;

const PROG: &str = "svc";
/// The letters svc accepts, each a command for supervise.
const LETTERS: &str = "udopchaitkx";
/// What Debian's svc prints after an unknown option.
const USAGE: &str = "svc options: u up, d down, o once, x exit, p pause, c continue, h hup, a alarm, i interrupt, t term, k kill";

/// `svc -opts dir...`: `args` is the whole argv.
pub fn run(args: &[OsString]) -> Result<()> {
    let prog = progname(args);
    let Some(parsed) = getopt::getopt(&prog, args.get(1..).unwrap_or(&[]), LETTERS) else {
        return Err(Error {
            code: EXIT_PERM,
            msg: USAGE.to_string(),
            style: Style::Bare,
        });
    };
    let mut data = Vec::new();
    for o in &parsed.opts {
        if !data.contains(&o.flag) {
            data.push(o.flag);
        }
    }
    let home = File::open(".").map_err(|e| Error::sys("unable to open current directory", e))?;
    for dir in &parsed.operands {
        control_one(dir, &data);
        nix::unistd::fchdir(home.as_raw_fd())
            .map_err(|e| Error::sys("unable to set directory", e))?;
    }
    Ok(())
}

/// Send `data` to one service, warning on failure.
fn control_one(dir: &OsStr, data: &[u8]) {
    let name = dir.to_string_lossy();
    if let Err(e) = nix::unistd::chdir(dir.as_bytes()) {
        warn(
            PROG,
            format_args!("unable to chdir to {name}: {}", errtext(e)),
        );
        return;
    }
    let mut f = match std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("supervise/control")
    {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
            warn(
                PROG,
                format_args!("unable to control {name}: supervise not running"),
            );
            return;
        }
        Err(e) => {
            warn(
                PROG,
                format_args!("unable to control {name}: {}", errtext(e)),
            );
            return;
        }
    };
    // Block from now on: a busy supervise must get every letter.
    let _ = nix::fcntl::fcntl(
        f.as_raw_fd(),
        nix::fcntl::F_SETFL(nix::fcntl::OFlag::empty()),
    );
    if let Err(e) = f.write_all(data) {
        warn(
            PROG,
            format_args!("error writing commands to {name}: {}", errtext(e)),
        );
    }
}

/// sgetopt names the program by argv[0]'s last component.
fn progname(args: &[OsString]) -> String {
    match args.first() {
        Some(a) => {
            let b = a.as_bytes();
            let base = b.rsplit(|&c| c == b'/').next().unwrap_or(b);
            String::from_utf8_lossy(base).into_owned()
        }
        None => PROG.to_string(),
    }
}

fn errtext(e: impl Into<common::error::Errno>) -> &'static str {
    e.into().text()
}

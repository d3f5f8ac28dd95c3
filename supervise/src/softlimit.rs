//! softlimit: run a program with lower soft resource limits (daemontools
//! 0.76). A value above the hard limit is lowered to the hard limit, and `=`
//! means "as high as the hard limit".

use crate::setuidgid::run_failed;
use common::getopt;
use common::pathexec;
use common::{Error, Result};
use nix::sys::resource::{getrlimit, setrlimit, Resource};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

const USAGE: &str = "softlimit [-a allbytes] [-c corebytes] [-d databytes] [-f filebytes] [-l lockbytes] [-m membytes] [-o openfiles] [-p processes] [-r residentbytes] [-s stackbytes] [-t cpusecs] child";

/// `softlimit [options] child...`; `args` excludes argv[0].
pub fn run(args: Vec<OsString>) -> Result<()> {
    let parsed = getopt::getopt("softlimit", &args, "a:c:d:f:l:m:o:p:r:s:t:")
        .ok_or_else(|| Error::usage(USAGE))?;
    for opt in &parsed.opts {
        let value = parse_value(opt.arg.as_deref().unwrap_or_default())?;
        for &r in resources(opt.flag) {
            apply(r, value)?;
        }
    }
    if parsed.operands.is_empty() {
        return Err(Error::usage(USAGE));
    }
    Err(run_failed(
        &parsed.operands,
        pathexec::run(&parsed.operands),
    ))
}

/// The limits an option sets; `-m` sets every memory limit at once.
fn resources(flag: u8) -> &'static [Resource] {
    match flag {
        b'a' => &[Resource::RLIMIT_AS],
        b'c' => &[Resource::RLIMIT_CORE],
        b'd' => &[Resource::RLIMIT_DATA],
        b'f' => &[Resource::RLIMIT_FSIZE],
        b'l' => &[Resource::RLIMIT_MEMLOCK],
        b'm' => &[
            Resource::RLIMIT_DATA,
            Resource::RLIMIT_STACK,
            Resource::RLIMIT_MEMLOCK,
            Resource::RLIMIT_AS,
        ],
        b'o' => &[Resource::RLIMIT_NOFILE],
        b'p' => &[Resource::RLIMIT_NPROC],
        b'r' => &[Resource::RLIMIT_RSS],
        b's' => &[Resource::RLIMIT_STACK],
        _ => &[Resource::RLIMIT_CPU],
    }
}

/// None for `=`; otherwise the number, which must fill the whole argument.
/// Digits past 2^64 wrap around as the original's scan_ulong does.
pub fn parse_value(arg: &OsStr) -> Result<Option<u64>> {
    let b = arg.as_bytes();
    if b == b"=" {
        return Ok(None);
    }
    if !b.iter().all(u8::is_ascii_digit) {
        return Err(Error::usage(USAGE));
    }
    Ok(Some(b.iter().fold(0u64, |v, &c| {
        v.wrapping_mul(10).wrapping_add(u64::from(c - b'0'))
    })))
}

fn apply(r: Resource, value: Option<u64>) -> Result<()> {
    let (_, hard) = getrlimit(r).map_err(|e| Error::sys("getrlimit failed", e))?;
    let soft = value.map_or(hard, |v| v.min(hard));
    setrlimit(r, soft, hard).map_err(|e| Error::sys("setrlimit failed", e))
}

#[cfg(test)]
mod tests {
    use super::parse_value;
    use std::ffi::OsStr;

    #[test]
    fn values_wrap_like_scan_ulong() {
        assert_eq!(parse_value(OsStr::new("=")).unwrap(), None);
        assert_eq!(parse_value(OsStr::new("")).unwrap(), Some(0));
        assert_eq!(parse_value(OsStr::new("300")).unwrap(), Some(300));
        let big = parse_value(OsStr::new("99999999999999999999999")).unwrap();
        assert_eq!(big, Some(200376420520689663));
        assert!(parse_value(OsStr::new("12x")).is_err());
    }
}

//! svstat: one line per service saying whether it is up, since when, and how
//! that differs from what supervise wants, in daemontools' exact words, e.g.
//! `/service/x: up (pid 123) 45 seconds, normally down, want down`.
//! Beyond daemontools: `, ready N seconds` (s6-svstat's words) is appended
//! for a service that signalled readiness (see readiness.rs).

use crate::readiness;
use crate::status::Status;
use common::error::{Errno, Error, Result};
use common::tai::Tai64n;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;

/// `svstat dir...`: `args` is the whole argv (svstat takes no options).
pub fn run(args: &[OsString]) -> Result<()> {
    let home = File::open(".").map_err(|e| Error::sys("unable to open current directory", e))?;
    let mut out = Vec::new();
    for dir in args.iter().skip(1) {
        out.extend_from_slice(dir.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(line(dir).as_bytes());
        out.push(b'\n');
        nix::unistd::fchdir(home.as_raw_fd())
            .map_err(|e| Error::sys("unable to set directory", e))?;
    }
    // As the original, a failing stdout is not reported.
    let _ = std::io::stdout().write_all(&out);
    let _ = std::io::stdout().flush();
    Ok(())
}

/// What svstat says about `dir` after "DIR: " (changes the working directory).
fn line(dir: &OsStr) -> String {
    if let Err(e) = nix::unistd::chdir(dir.as_bytes()) {
        return format!("unable to chdir: {}", Errno::from(e).text());
    }
    let normally_up = match std::fs::metadata("down") {
        Ok(_) => false,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) => return format!("unable to stat down: {}", Errno::from(e).text()),
    };
    let status = match read_status() {
        Ok(s) => s,
        Err(msg) => return msg,
    };
    describe(&status, normally_up, Tai64n::now(), ready_since(&status))
}

/// Check that supervise runs, then read its status record.
fn read_status() -> std::result::Result<Status, String> {
    let ok = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("supervise/ok");
    match ok {
        Ok(_) => {}
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
            return Err("supervise not running".to_string())
        }
        Err(e) => {
            return Err(format!(
                "unable to open supervise/ok: {}",
                Errno::from(e).text()
            ))
        }
    }
    let mut f = File::open("supervise/status")
        .map_err(|e| format!("unable to open supervise/status: {}", Errno::from(e).text()))?;
    // One read, as the original: a record split over reads is a bad one.
    let mut buf = [0u8; crate::status::LEN];
    let n = f
        .read(&mut buf)
        .map_err(|e| format!("unable to read supervise/status: {}", Errno::from(e).text()))?;
    Status::decode(&buf[..n])
        .ok_or_else(|| "unable to read supervise/status: bad format".to_string())
}

/// When the running service became ready, if it said so.
fn ready_since(status: &Status) -> Option<Tai64n> {
    if status.pid == 0 {
        return None;
    }
    readiness::read_ready(readiness::READY, status.when)
}

/// Whole seconds from `then` to `now`, 0 if `then` is in the future; through
/// a double like the original, so huge values round exactly as its output.
fn seconds(then: Tai64n, now: Tai64n) -> u64 {
    let d = now.secs.saturating_sub(then.secs);
    d as f64 as u64
}

/// The status line after "DIR: ".
pub fn describe(st: &Status, normally_up: bool, now: Tai64n, ready: Option<Tai64n>) -> String {
    let up = st.pid != 0;
    let mut s = if up {
        format!("up (pid {}) ", st.pid)
    } else {
        "down ".to_string()
    };
    s.push_str(&seconds(st.when, now).to_string());
    s.push_str(" seconds");
    if up && !normally_up {
        s.push_str(", normally down");
    }
    if !up && normally_up {
        s.push_str(", normally up");
    }
    if up && st.paused != 0 {
        s.push_str(", paused");
    }
    if !up && st.want == b'u' {
        s.push_str(", want up");
    }
    if up && st.want == b'd' {
        s.push_str(", want down");
    }
    if let Some(r) = ready {
        s.push_str(&format!(", ready {} seconds", seconds(r, now)));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::Want;

    fn t(secs: u64) -> Tai64n {
        Tai64n { secs, nanos: 0 }
    }

    #[test]
    fn words() {
        let base = common::tai::UNIX_EPOCH_LABEL + 1_000_000;
        let now = t(base + 45);
        let up = Status::new(t(base), 123, false, Want::Up);
        assert_eq!(describe(&up, true, now, None), "up (pid 123) 45 seconds");
        let st = Status::new(t(base), 123, true, Want::Down);
        assert_eq!(
            describe(&st, false, now, Some(t(base + 5))),
            "up (pid 123) 45 seconds, normally down, paused, want down, ready 40 seconds"
        );
        let down = Status::new(t(base + 42), 0, true, Want::Up);
        assert_eq!(
            describe(&down, true, now, None),
            "down 3 seconds, normally up, want up"
        );
        let once = Status::new(t(base + 50), 7, false, Want::Nothing);
        assert_eq!(describe(&once, true, now, None), "up (pid 7) 0 seconds");
    }

    #[test]
    fn huge_ages_round_like_a_double() {
        let zero = Status::decode(&[0u8; 18]).unwrap();
        let now = t((1 << 62) + 10 + 1_795_331_381);
        assert_eq!(
            describe(&zero, true, now, None),
            "down 4611686020222718976 seconds, normally up"
        );
    }
}

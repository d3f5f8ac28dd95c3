//! predate: run a program with a Date: line in local time (with its UTC
//! offset) put before its standard input: `predate qmail-inject ...`.
//! datemail is `predate sendmail ...`.

use common::Error;
use std::ffi::OsString;
use std::io::Write;
use std::process::{Command, Stdio};

/// `Date: D Mon YYYY HH:MM:SS +hhmm\n` for now in the local time zone.
pub fn date_line() -> String {
    let now = unsafe { libc::time(std::ptr::null_mut()) };
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    unsafe { libc::localtime_r(&now, &mut tm) };
    let off = tm.tm_gmtoff;
    let minutes = (off.abs() + 30) / 60;
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "Date: {} {} {} {:02}:{:02}:{:02} {}{:02}{:02}\n",
        tm.tm_mday,
        MONTHS[tm.tm_mon as usize % 12],
        tm.tm_year + 1900,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        if off < 0 { '-' } else { '+' },
        minutes / 60,
        minutes % 60
    )
}

/// Run `child` with the Date line and our input on its stdin; its exit code is ours.
pub fn run_child(prog: &str, child: &[OsString]) -> Result<(), Error> {
    let Some(program) = child.first() else {
        return Err(Error::usage(format!("{prog} child")).with_code(100));
    };
    let mut c = common::sig::default_signals(&mut Command::new(program))
        .args(&child[1..])
        .stdin(Stdio::piped())
        .spawn()
        .map_err(|e| Error::sys(format!("unable to run {}", program.to_string_lossy()), e))?;
    {
        let mut w = c.stdin.take().expect("piped");
        let _ = w.write_all(date_line().as_bytes());
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut w);
    }
    let st = c.wait().map_err(|e| Error::sys("wait failed", e))?;
    match st.code() {
        Some(0) => Ok(()),
        Some(n) => Err(Error::silent(n)),
        None => Err(Error::temp("child crashed")),
    }
}

pub fn run(args: &[OsString]) -> Result<(), Error> {
    run_child("predate", args)
}

/// datemail: predate sendmail args...
pub fn datemail(args: &[OsString]) -> Result<(), Error> {
    let mut child: Vec<OsString> = vec![crate::home::home().join("bin/sendmail").into()];
    child.extend_from_slice(args);
    run_child("datemail", &child)
}

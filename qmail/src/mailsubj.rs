//! mailsubj: send standard input as a message with the given subject to
//! the given recipients (`mailsubj subject recip ...`), through qmail-inject.

use common::Error;
use std::ffi::OsString;
use std::io::Write;
use std::process::{Command, Stdio};

/// mailsubj subject recipient...: a message with that subject from stdin.
pub fn run(args: &[OsString]) -> Result<(), Error> {
    let subject = args
        .first()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let to: Vec<String> = args
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut c = common::sig::default_signals(&mut Command::new(
        crate::home::home().join("bin/qmail-inject"),
    ))
    .stdin(Stdio::piped())
    .spawn()
    .map_err(|e| Error::sys("unable to run qmail-inject", e))?;
    {
        let mut w = c.stdin.take().expect("piped");
        let _ = write!(w, "Subject: {subject}\nTo: {}\n\n", to.join(" "));
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut w);
    }
    let st = c.wait().map_err(|e| Error::sys("wait failed", e))?;
    match st.code() {
        Some(0) => Ok(()),
        Some(n) => Err(Error::silent(n)),
        None => Err(Error::silent(111)),
    }
}

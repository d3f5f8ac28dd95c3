//! maildir2mbox: move the messages of $MAILDIR (new and cur, oldest first)
//! to the end of the mbox $MAIL, through $MAILTMP: copy the old mbox and the
//! messages there, fsync, rename over $MAIL, then remove the messages
//! (maildir2mbox(1)). The mbox is flock'ed meanwhile.

use crate::maildir;
use crate::mbox::{ctime, gfrom};
use common::Error;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;

/// The From_ line for a message: its Return-Path if it starts with one.
fn from_line(first: &[u8], mtime: i64) -> Vec<u8> {
    let mut uf = b"From XXX ".to_vec();
    if first.ends_with(b"\n") {
        if let Some(rest) = first.strip_prefix(b"Return-Path: <") {
            uf = if rest.first() == Some(&b'>') {
                b"From MAILER-DAEMON ".to_vec()
            } else {
                let addr = &rest[..rest.len().saturating_sub(2)];
                let mut v = b"From ".to_vec();
                v.extend(
                    addr.iter()
                        .map(|&c| if c == b' ' || c == b'\t' { b'-' } else { c }),
                );
                v.push(b' ');
                v
            };
        }
    }
    uf.extend(ctime(mtime).bytes());
    uf
}

/// Append one message file to `out` as an mbox entry.
fn append_message(out: &mut impl Write, name: &str, mtime: i64, tmp: &str) -> Result<(), Error> {
    let read_err = |e: std::io::Error| Error::sys(format!("unable to read $MAILDIR/{name}"), e);
    let write_err = |e: std::io::Error| Error::sys(format!("unable to write to {tmp}"), e);
    let mut r = BufReader::new(File::open(name).map_err(read_err)?);
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line).map_err(read_err)?;
    out.write_all(&from_line(&line, mtime)).map_err(write_err)?;
    while !line.is_empty() {
        if gfrom(&line) {
            out.write_all(b">").map_err(write_err)?;
        }
        out.write_all(&line).map_err(write_err)?;
        if line.last() != Some(&b'\n') {
            out.write_all(b"\n").map_err(write_err)?;
            break;
        }
        line.clear();
        r.read_until(b'\n', &mut line).map_err(read_err)?;
    }
    out.write_all(b"\n").map_err(write_err)
}

/// Run maildir2mbox (no arguments).
pub fn run() -> Result<(), Error> {
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let mbox = std::env::var("MAIL").map_err(|_| Error::temp("MAIL not set"))?;
    let tmp = std::env::var("MAILTMP").map_err(|_| Error::temp("MAILTMP not set"))?;
    maildir::chdir_env()?;
    maildir::clean(Path::new("."));
    let entries = maildir::scan(Path::new("."), true, true)?;
    if entries.is_empty() {
        return Ok(());
    }
    let lock_err = |e: std::io::Error| Error::sys(format!("unable to lock {mbox}"), e);
    let lockf = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(&mbox)
        .map_err(lock_err)?;
    if unsafe { libc::flock(lockf.as_raw_fd(), libc::LOCK_EX) } == -1 {
        return Err(lock_err(std::io::Error::last_os_error()));
    }
    let mut old = File::open(&mbox).map_err(|e| Error::sys(format!("unable to read {mbox}"), e))?;
    let newf = File::create(&tmp).map_err(|e| Error::sys(format!("unable to create {tmp}"), e))?;
    let write_err = |e: std::io::Error| Error::sys(format!("unable to write to {tmp}"), e);
    let mut out = BufWriter::with_capacity(65536, &newf);
    std::io::copy(&mut old, &mut out)
        .map_err(|e| Error::sys(format!("unable to read {mbox}"), e))?;
    for e in &entries {
        append_message(&mut out, &e.name, e.mtime, &tmp)?;
    }
    out.flush().map_err(write_err)?;
    drop(out);
    newf.sync_all().map_err(write_err)?;
    drop(newf);
    std::fs::rename(&tmp, &mbox)
        .map_err(|e| Error::sys(format!("unable to move {tmp} to {mbox}"), e))?;
    for e in &entries {
        if let Err(err) = std::fs::remove_file(&e.name) {
            common::error::warn(
                "maildir2mbox",
                format!(
                    "$MAILDIR/{} will be delivered twice; unable to unlink: {}",
                    e.name,
                    common::error::Errno::from(err).text()
                ),
            );
        }
    }
    Ok(())
}

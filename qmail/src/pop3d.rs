//! qmail-pop3d: the POP3 transaction state over one Maildir, as netqmail's.
//! The message list is taken once at start (new/ and cur/, oldest first,
//! tmp/ cleaned); DELE only marks, and QUIT is the one place that changes
//! the Maildir: marked messages are unlinked and the others still in new/
//! move to cur/ with `:2,`. A client that goes away before QUIT leaves the
//! Maildir as it was. Sizes are the files' sizes, as the original reports.

use crate::maildir;
use crate::popup::{Io, Line};
use common::Error;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// One message of the list taken at start.
struct Msg {
    /// `new/NAME` or `cur/NAME`, relative to the Maildir.
    name: String,
    size: u64,
    deleted: bool,
}

struct Pop3d {
    io: Io,
    msgs: Vec<Msg>,
    /// The highest message number deleted (the LAST command).
    last: usize,
}

/// qmail-pop3d maildir
pub fn run(args: &[OsString]) -> Result<(), Error> {
    // A client that goes away must not kill us with SIGPIPE mid-reply.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let mut io = Io::new(0);
    let entered = args
        .get(1)
        .is_some_and(|d| std::env::set_current_dir(d).is_ok());
    if !entered {
        io.err("this user has no $HOME/Maildir")?;
        return Err(Error::silent(0));
    }
    let msgs = match list() {
        Some(m) => m,
        None => {
            io.err("unable to scan $HOME/Maildir")?;
            return Err(Error::silent(0));
        }
    };
    let mut p = Pop3d { io, msgs, last: 0 };
    p.io.okay()?;
    loop {
        p.command()?;
    }
}

/// The messages, oldest first, with their sizes (0 when stat fails).
fn list() -> Option<Vec<Msg>> {
    maildir::clean(Path::new("."));
    let entries = maildir::scan(Path::new("."), true, true).ok()?;
    Some(
        entries
            .into_iter()
            .map(|e| Msg {
                size: std::fs::metadata(&e.name).map_or(0, |m| m.len()),
                name: e.name,
                deleted: false,
            })
            .collect(),
    )
}

/// The leading decimal number of `s` and how many digits it had.
fn scan_ulong(s: &[u8]) -> (u64, usize) {
    let (n, len) = common::getopt::scan_ulong(std::ffi::OsStr::from_bytes(s));
    (n, len)
}

impl Pop3d {
    fn command(&mut self) -> Result<(), Error> {
        let (cmd, arg) = match self.io.read_line()? {
            Line::Command(c, a) => (c.to_ascii_lowercase(), a),
            Line::TooLong => return self.io.err("syntax error"),
        };
        match &cmd[..] {
            b"quit" => self.quit(),
            b"stat" => self.stat(),
            b"list" => self.listing(&arg, false),
            b"uidl" => self.listing(&arg, true),
            b"dele" => self.dele(&arg),
            b"retr" | b"top" => self.top(&arg),
            b"rset" => self.rset(),
            b"last" => {
                let s = format!("+OK {}\r\n", self.last);
                self.io.put(s.as_bytes())?;
                self.io.flush()
            }
            b"noop" => self.io.okay(),
            // CAPA (RFC 2449) is not in the original; clients ask for it.
            b"capa" => {
                self.io
                    .put(b"+OK capability list follows\r\nTOP\r\nUIDL\r\nUSER\r\n.\r\n")?;
                self.io.flush()
            }
            _ => self.io.err("unimplemented"),
        }
    }

    /// The message index named by `arg`, or the original's complaint.
    fn msgno(&mut self, arg: &[u8]) -> Result<Option<usize>, Error> {
        let (u, len) = scan_ulong(arg);
        let complaint = if len == 0 {
            "syntax error"
        } else if u == 0 {
            "messages are counted from 1"
        } else if u > self.msgs.len() as u64 {
            "not that many messages"
        } else if self.msgs[u as usize - 1].deleted {
            "already deleted"
        } else {
            return Ok(Some(u as usize - 1));
        };
        self.io.err(complaint)?;
        Ok(None)
    }

    /// STAT counts every message of the list but sums only the undeleted
    /// sizes, exactly as netqmail does.
    fn stat(&mut self) -> Result<(), Error> {
        let total: u64 = self
            .msgs
            .iter()
            .filter(|m| !m.deleted)
            .map(|m| m.size)
            .sum();
        let s = format!("+OK {} {}\r\n", self.msgs.len(), total);
        self.io.put(s.as_bytes())?;
        self.io.flush()
    }

    fn rset(&mut self) -> Result<(), Error> {
        for m in &mut self.msgs {
            m.deleted = false;
        }
        self.last = 0;
        self.io.okay()
    }

    fn dele(&mut self, arg: &[u8]) -> Result<(), Error> {
        let Some(i) = self.msgno(arg)? else {
            return Ok(());
        };
        self.msgs[i].deleted = true;
        self.last = self.last.max(i + 1);
        self.io.okay()
    }

    fn line_of(&self, i: usize, uidl: bool) -> Vec<u8> {
        let m = &self.msgs[i];
        let what = if uidl {
            let base = &m.name[4..];
            base[..base.find(':').unwrap_or(base.len())].to_string()
        } else {
            m.size.to_string()
        };
        format!("{} {}\r\n", i + 1, what).into_bytes()
    }

    fn listing(&mut self, arg: &[u8], uidl: bool) -> Result<(), Error> {
        if !arg.is_empty() {
            let Some(i) = self.msgno(arg)? else {
                return Ok(());
            };
            let l = self.line_of(i, uidl);
            self.io.put(b"+OK ")?;
            self.io.put(&l)?;
            return self.io.flush();
        }
        self.io.okay()?;
        for i in 0..self.msgs.len() {
            if !self.msgs[i].deleted {
                let l = self.line_of(i, uidl);
                self.io.put(&l)?;
            }
        }
        self.io.put(b".\r\n")?;
        self.io.flush()
    }

    /// RETR n, and TOP n lines (the same command in the original: without a
    /// line count the whole message is sent).
    fn top(&mut self, arg: &[u8]) -> Result<(), Error> {
        let Some(i) = self.msgno(arg)? else {
            return Ok(());
        };
        let mut rest = &arg[scan_ulong(arg).1..];
        while rest.first() == Some(&b' ') {
            rest = &rest[1..];
        }
        let (n, len) = scan_ulong(rest);
        let limit = if len > 0 { n.saturating_add(1) } else { 0 };
        let Ok(f) = std::fs::File::open(&self.msgs[i].name) else {
            return self.io.err("unable to open that message");
        };
        self.io.okay()?;
        blast(&mut self.io, f, limit)
    }

    /// Apply the session: unlink what was deleted, move the rest of new/
    /// to cur/, say +OK and end.
    fn quit(&mut self) -> Result<(), Error> {
        for m in &self.msgs {
            if m.deleted {
                if std::fs::remove_file(&m.name).is_err() {
                    self.io.err("unable to unlink all deleted messages")?;
                }
            } else if let Some(base) = m.name.strip_prefix("new/") {
                // As in the original, a failed rename leaves it in new/.
                let _ = std::fs::rename(&m.name, format!("cur/{base}:2,"));
            }
        }
        self.io.okay()?;
        Err(Error::silent(0))
    }
}

/// Send a message: lines end in CRLF, a leading `.` is doubled, and the
/// original's terminator `\r\n.\r\n` follows the last line (so clients
/// see one extra empty line, as with netqmail). `limit`, when not 0, is
/// one more than the body lines wanted.
fn blast(io: &mut Io, f: std::fs::File, mut limit: u64) -> Result<(), Error> {
    let mut r = std::io::BufReader::new(f);
    let mut inheaders = true;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = read_line(&mut r, &mut line)?;
        if n == 0 {
            break;
        }
        let complete = line.last() == Some(&b'\n');
        if complete {
            line.pop();
        }
        if limit > 0 && !inheaders {
            limit -= 1;
            if limit == 0 {
                break;
            }
        }
        if line.is_empty() {
            inheaders = false;
        } else if line[0] == b'.' {
            io.put(b".")?;
        }
        io.put(&line)?;
        io.put(b"\r\n")?;
        if !complete {
            break;
        }
    }
    io.put(b"\r\n.\r\n")?;
    io.flush()
}

/// One line including its LF; a read error ends the session as it does
/// in the original.
fn read_line(r: &mut impl std::io::BufRead, line: &mut Vec<u8>) -> Result<usize, Error> {
    r.read_until(b'\n', line).map_err(|_| Error::silent(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_takes_leading_digits() {
        assert_eq!(scan_ulong(b"12 3"), (12, 2));
        assert_eq!(scan_ulong(b"x"), (0, 0));
    }

    #[test]
    fn read_line_keeps_the_newline() {
        let mut r = std::io::BufReader::new(&b"a\nb"[..]);
        let mut l = Vec::new();
        assert_eq!(read_line(&mut r, &mut l).unwrap(), 2);
        assert_eq!(l, b"a\n");
    }
}

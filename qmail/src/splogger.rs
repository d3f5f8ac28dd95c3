//! splogger: read lines on stdin and hand each to syslog under a tag and a
//! facility (`splogger [tag [fac]]`, tag `splogger`, facility 2 = mail by
//! default). Each line is prefixed with its arrival time as
//! `SECONDS.MICROSECONDS ` and logged at LOG_INFO, or LOG_WARNING when it
//! starts with `warning:`, LOG_ALERT when it starts with `alert:`. Bytes
//! outside 32..=126 become `?` (syslog cuts at NUL); a line longer than the
//! original's 799-byte buffer is sent in pieces, each later piece carrying
//! the first piece's stamp and priority joined by `+`. A partial last line
//! (no newline before EOF) is dropped, as the original does.

use common::Error;
use std::ffi::{CString, OsString};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;

/// The original's buffer holds 800 bytes including the terminating NUL.
const PIECE: usize = 799;

/// Splits input into syslog messages; `stamp` is asked once per line.
pub struct Splitter {
    buf: Vec<u8>,
    /// Stamp and priority of the line being continued, if any.
    cont: Option<(String, i32)>,
}

impl Default for Splitter {
    fn default() -> Self {
        Splitter {
            buf: Vec::with_capacity(PIECE),
            cont: None,
        }
    }
}

/// The priority a line's first piece is logged at.
pub fn priority(line: &[u8]) -> i32 {
    if line.starts_with(b"alert:") {
        libc::LOG_ALERT
    } else if line.starts_with(b"warning:") {
        libc::LOG_WARNING
    } else {
        libc::LOG_INFO
    }
}

/// `SECONDS.MICROSECONDS` of now.
pub fn stamp() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}.{:06}", t.as_secs(), t.subsec_micros())
}

impl Splitter {
    /// Take one input byte; each finished message goes to `emit`.
    pub fn byte(
        &mut self,
        ch: u8,
        stamp: &mut impl FnMut() -> String,
        emit: &mut impl FnMut(i32, &str),
    ) {
        if ch == b'\n' {
            self.flush(stamp, emit);
            self.cont = None;
            return;
        }
        if self.buf.len() == PIECE {
            self.flush(stamp, emit);
        }
        self.buf
            .push(if (32..=126).contains(&ch) { ch } else { b'?' });
    }

    fn flush(&mut self, stamp: &mut impl FnMut() -> String, emit: &mut impl FnMut(i32, &str)) {
        if self.buf.is_empty() {
            return;
        }
        // Only printable ASCII is ever stored.
        let text = String::from_utf8_lossy(&self.buf).into_owned();
        match &self.cont {
            Some((s, p)) => emit(*p, &format!("{s}+{text}")),
            None => {
                let (s, p) = (stamp(), priority(&self.buf));
                emit(p, &format!("{s} {text}"));
                self.cont = Some((s, p));
            }
        }
        self.buf.clear();
    }
}

/// The tag (ident) and facility splogger opens syslog with.
pub fn options(args: &[OsString]) -> (CString, i32) {
    let tag = args.first().map_or(&b"splogger"[..], |a| a.as_bytes());
    // A NUL cannot come from argv; keep whatever precedes one anyway.
    let tag = tag.split(|&b| b == 0).next().unwrap_or_default();
    let tag = CString::new(tag).unwrap_or_default();
    let facility = match (args.first(), args.get(1)) {
        (Some(_), Some(f)) => {
            let (n, _) = common::getopt::scan_ulong(f);
            (n as i32).wrapping_shl(3)
        }
        _ => libc::LOG_MAIL,
    };
    (tag, facility)
}

fn syslog(priority: i32, msg: &str) {
    let Ok(m) = CString::new(msg) else { return };
    // SAFETY: a constant format with one C string argument.
    unsafe { libc::syslog(priority, c"%s".as_ptr(), m.as_ptr()) };
}

/// Run splogger with `args` (tag, facility): log stdin until EOF.
pub fn run(args: &[OsString]) -> Result<(), Error> {
    let (tag, facility) = options(args);
    // openlog keeps the pointer: the ident must live as long as the process.
    let tag: &'static std::ffi::CStr = Box::leak(tag.into_boxed_c_str());
    // SAFETY: tag is 'static.
    unsafe { libc::openlog(tag.as_ptr(), 0, facility) };
    let mut split = Splitter::default();
    let mut input = std::io::BufReader::new(std::io::stdin().lock());
    let mut chunk = [0u8; 4096];
    loop {
        let n = match input.read(&mut chunk) {
            Ok(0) | Err(_) => return Ok(()),
            Ok(n) => n,
        };
        for &ch in &chunk[..n] {
            split.byte(ch, &mut stamp, &mut syslog);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(input: &[u8]) -> Vec<(i32, String)> {
        let mut out = Vec::new();
        let mut n = 0;
        let mut s = Splitter::default();
        let mut stamp = || {
            n += 1;
            format!("100.00000{n}")
        };
        for &b in input {
            s.byte(b, &mut stamp, &mut |p, m: &str| {
                out.push((p, m.to_string()))
            });
        }
        out
    }

    #[test]
    fn lines_get_stamps_and_priorities() {
        let v = feed(b"hello\nwarning: x\nalert: y\n\nno newline");
        assert_eq!(
            v,
            vec![
                (libc::LOG_INFO, "100.000001 hello".to_string()),
                (libc::LOG_WARNING, "100.000002 warning: x".to_string()),
                (libc::LOG_ALERT, "100.000003 alert: y".to_string()),
            ]
        );
    }

    #[test]
    fn unprintable_bytes_become_question_marks() {
        let v = feed(b"a\x00b\tc\xff\r\n");
        assert_eq!(v[0].1, "100.000001 a?b?c??");
    }

    #[test]
    fn long_lines_are_continued_with_the_same_stamp() {
        let mut line = b"warning: ".to_vec();
        line.resize(PIECE + 10, b'x');
        line.push(b'\n');
        let v = feed(&line);
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].1.len(), "100.000001 ".len() + PIECE);
        assert_eq!(
            v[1],
            (libc::LOG_WARNING, format!("100.000001+{}", "x".repeat(10)))
        );
    }

    #[test]
    fn tag_and_facility() {
        let a = |v: &[&str]| options(&v.iter().map(OsString::from).collect::<Vec<_>>());
        assert_eq!(a(&[]), (CString::new("splogger").unwrap(), libc::LOG_MAIL));
        assert_eq!(
            a(&["qmail"]),
            (CString::new("qmail").unwrap(), libc::LOG_MAIL)
        );
        assert_eq!(
            a(&["qmail", "3"]),
            (CString::new("qmail").unwrap(), libc::LOG_DAEMON)
        );
        assert_eq!(a(&["x", "16"]).1, libc::LOG_LOCAL0);
    }
}

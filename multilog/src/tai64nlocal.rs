//! tai64nlocal: copy stdin to stdout, turning a TAI64N label (`@` and 24 hex
//! digits) at the start of a line into local time `YYYY-MM-DD
//! HH:MM:SS.nnnnnnnnn` (TZ honoured). Anything else passes through unchanged
//! (where daemontools' version crashes on a malformed label, we copy it).

use std::io::{self, Read, Write};

use common::tai::Tai64n;
use common::{Error, Result};

/// The local time of the label in `line` (starting with `@`), and the
/// length of the label, or None when the line does not start with one.
pub fn convert(line: &[u8]) -> Option<(String, usize)> {
    if line.first() != Some(&b'@') || line.len() < 25 {
        return None;
    }
    let t = Tai64n::parse_hex(&line[1..25])?;
    let secs = libc::time_t::try_from(t.unix_secs()).ok()?;
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    if unsafe { libc::localtime_r(&secs, &mut tm) }.is_null() {
        return None;
    }
    let text = format!(
        "{}-{:02}-{:02} {:02}:{:02}:{:02}.{:09}",
        i64::from(tm.tm_year) + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        t.nanos
    );
    Some((text, 25))
}

pub fn run() -> Result<()> {
    unsafe { tzset() };
    let mut input = io::stdin().lock();
    let mut output = io::stdout().lock();
    let mut buf = vec![0u8; 64 * 1024];
    // `line` holds a line whose end has not arrived yet.
    let mut line = Vec::new();
    let mut out = Vec::with_capacity(128 * 1024);
    loop {
        let n = match input.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::sys("unable to read input", e)),
        };
        for piece in buf[..n].split_inclusive(|&b| b == b'\n') {
            line.extend_from_slice(piece);
            if n > 0 && piece.last() == Some(&b'\n') {
                put_line(&mut out, &line);
                line.clear();
            }
        }
        if n == 0 {
            put_line(&mut out, &line);
        }
        // Write per read so `tail -f | tai64nlocal` shows lines as they come.
        output
            .write_all(&out)
            .and_then(|()| output.flush())
            .map_err(|e| Error::sys("unable to write output", e))?;
        out.clear();
        if n == 0 {
            return Ok(());
        }
    }
}

fn put_line(out: &mut Vec<u8>, line: &[u8]) {
    match convert(line) {
        Some((text, len)) => {
            out.extend_from_slice(text.as_bytes());
            out.extend_from_slice(&line[len..]);
        }
        None => out.extend_from_slice(line),
    }
}

extern "C" {
    fn tzset();
}

#[cfg(test)]
mod tests {
    use super::convert;

    #[test]
    fn labels_only_at_line_start() {
        assert!(convert(b"plain\n").is_none());
        assert!(convert(b"@4000 short\n").is_none());
        assert!(convert(b"@400000006b0294be1e91a92x rest\n").is_none());
        let (text, len) = convert(b"@400000003b9aca0a00000005 x\n").unwrap();
        assert_eq!(len, 25);
        assert!(text.ends_with(".000000005"), "{text}");
    }
}

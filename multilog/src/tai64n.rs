//! tai64n: copy stdin to stdout, putting `@`, the TAI64N label of the
//! moment each line's first byte was read, and a space in front of it.
//! Also the arrival label multilog's `t` uses: microseconds, with 500 ns
//! added, as daemontools writes them.

use std::io::{self, Read, Write};

use common::tai::Tai64n;
use common::{Error, Result};

/// The label for "now" in daemontools' form (microsecond clock, +500 ns).
pub fn arrival_label() -> [u8; 25] {
    let mut t = Tai64n::now();
    t.nanos = t.nanos / 1000 * 1000 + 500;
    let mut out = [0u8; 25];
    t.write_label(&mut out);
    out
}

pub fn run() -> Result<()> {
    let mut input = io::stdin().lock();
    let mut output = io::stdout().lock();
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = Vec::with_capacity(128 * 1024);
    let mut at_start = true;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::sys("unable to read input", e)),
        };
        let label = arrival_label();
        for piece in buf[..n].split_inclusive(|&b| b == b'\n') {
            if at_start {
                out.extend_from_slice(&label);
                out.push(b' ');
            }
            out.extend_from_slice(piece);
            at_start = piece.last() == Some(&b'\n');
        }
        // Flush per read so a pipe reader sees each line as it comes.
        output
            .write_all(&out)
            .and_then(|()| output.flush())
            .map_err(|e| Error::sys("unable to write output", e))?;
        out.clear();
    }
}

//! qmail-clean: removes queue files on qmail-send's request, so that
//! qmail-send itself never needs write access to mess/, todo/ or intd/.
//! Requests arrive on fd 0 as `foop/N\0` (message finished: remove intd/N
//! and mess/S/N) or `todo/N\0` (todo processed: remove intd/N and todo/N);
//! each is answered on fd 1 with one byte: `+` done, `!` trouble, `x` bad
//! request. Now and then it also removes pid/ files left by crashed
//! qmail-queue runs.

use crate::queue;
use common::Error;
use std::io::{BufRead, Write};
use std::os::unix::fs::MetadataExt;

/// A file untouched this long is left over from a crash (qmail's OSSIFIED).
const OSSIFIED: i64 = 129600;

/// Remove pid/ files older than OSSIFIED.
fn cleanuppid() {
    let Ok(rd) = std::fs::read_dir("pid") else {
        return;
    };
    let now = crate::date822::now();
    for e in rd.flatten() {
        let p = e.path();
        if let Ok(md) = std::fs::metadata(&p) {
            if now >= md.atime() + OSSIFIED {
                let _ = std::fs::remove_file(&p);
            }
        }
    }
}

fn unlink(f: &str) -> bool {
    match std::fs::remove_file(f) {
        Ok(()) => true,
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    }
}

/// The answer to one request (without its trailing \0).
pub fn answer(req: &[u8]) -> u8 {
    if req.len() < 6 || req.len() > 99 {
        return b'x';
    }
    let digits = &req[5..];
    if !digits.iter().all(u8::is_ascii_digit) {
        return b'x';
    }
    let Some(id) = std::str::from_utf8(digits)
        .ok()
        .and_then(|s| s.parse().ok())
    else {
        return b'x';
    };
    let files = match &req[..5] {
        b"foop/" => [queue::intd(id), queue::mess(id)],
        b"todo/" => [queue::intd(id), queue::todo(id)],
        _ => return b'x',
    };
    for f in files {
        if !unlink(&f) {
            return b'!';
        }
    }
    b'+'
}

pub fn run() -> Result<(), Error> {
    let home = crate::home::home();
    std::env::set_current_dir(&home)
        .and_then(|_| std::env::set_current_dir("queue"))
        .map_err(|_| Error::silent(111))?;
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut out = std::io::stdout().lock();
    let mut loops = 0;
    loop {
        if loops == 0 {
            cleanuppid();
            loops = 30;
        }
        loops -= 1;
        let mut req = Vec::new();
        match input.read_until(0, &mut req) {
            Ok(0) | Err(_) => return Ok(()),
            Ok(_) => {}
        }
        if req.pop() != Some(0) {
            return Ok(());
        }
        if out
            .write_all(&[answer(&req)])
            .and_then(|_| out.flush())
            .is_err()
        {
            return Err(Error::silent(100));
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn bad_requests_get_x() {
        assert_eq!(super::answer(b"foo"), b'x');
        assert_eq!(super::answer(b"xxxx/12"), b'x');
        assert_eq!(super::answer(b"todo/1a"), b'x');
    }
}

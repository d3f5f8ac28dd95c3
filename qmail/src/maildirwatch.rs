//! maildirwatch: every 30 seconds clear the (VT100) screen and list the
//! messages in $MAILDIR/new: envelope sender and recipient, the From: line
//! in bold, and the start of the subject and body (maildirwatch(1)).

use crate::maildir;
use common::Error;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

/// The most text shown per message.
const TEXT_MAX: usize = 158;

/// What the summary shows about one message.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub sender: Vec<u8>,
    pub recipient: Vec<u8>,
    pub fromline: Vec<u8>,
    pub text: Vec<u8>,
}

/// A header field's value: after the colon and any whitespace.
fn value(h: &[u8]) -> &[u8] {
    let mut i = h.iter().position(|&b| b == b':').map_or(h.len(), |p| p + 1);
    while i < h.len() && b" \t\r\n".contains(&h[i]) {
        i += 1;
    }
    &h[i..]
}

fn field_is(h: &[u8], name: &str) -> bool {
    let Some(colon) = h.iter().position(|&b| b == b':') else {
        return false;
    };
    let n = &h[..colon];
    let end = n
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(0, |p| p + 1);
    n[..end].eq_ignore_ascii_case(name.as_bytes())
}

impl Summary {
    fn add_text(&mut self, s: &[u8]) {
        self.text.extend(s);
        self.text.truncate(TEXT_MAX);
    }

    /// Take in one whole header field (continuation lines included, with its newline).
    fn header(&mut self, h: &[u8]) {
        let without_nl = |v: &[u8]| v[..v.len().saturating_sub(1)].to_vec();
        if field_is(h, "subject") {
            self.add_text(value(h));
        } else if field_is(h, "delivered-to") && !value(h).is_empty() {
            self.recipient = without_nl(value(h));
        } else if field_is(h, "return-path") && !value(h).is_empty() {
            self.sender = without_nl(value(h));
        } else if field_is(h, "from") {
            self.fromline = without_nl(h);
        }
    }

    /// Read a message's header and body.
    pub fn read(r: &mut impl BufRead) -> std::io::Result<Summary> {
        let mut s = Summary {
            sender: b"?".to_vec(),
            recipient: b"?".to_vec(),
            ..Summary::default()
        };
        let mut field: Vec<u8> = Vec::new();
        let mut line = Vec::new();
        let mut in_header = true;
        loop {
            line.clear();
            if r.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            if !in_header {
                s.add_text(&line);
                continue;
            }
            if matches!(line.first(), Some(b' ') | Some(b'\t')) && !field.is_empty() {
                field.extend(&line);
                continue;
            }
            if !field.is_empty() {
                s.header(&field);
                field.clear();
            }
            if line == b"\n" {
                in_header = false;
            } else {
                field.extend(&line);
            }
        }
        if !field.is_empty() {
            s.header(&field);
        }
        Ok(s)
    }

    /// The lines printed for this message.
    pub fn render(&self) -> Vec<u8> {
        let clean = |v: &[u8], bad: u8| -> Vec<u8> {
            v.iter()
                .map(|&c| if (32..=126).contains(&c) { c } else { bad })
                .collect()
        };
        let mut out = b"FROM ".to_vec();
        out.extend(clean(&self.sender, b'?'));
        out.extend(b" TO <");
        out.extend(clean(&self.recipient, b'?'));
        out.extend(b">\n");
        if !self.fromline.is_empty() {
            out.extend(b"\x1b[1m");
            out.extend(clean(&self.fromline, b'/'));
            out.extend(b"\x1b[0m\n");
        }
        out.extend(clean(&self.text, b'/'));
        out.extend(b"\n\n");
        out
    }
}

/// One screen: clear, then every message in new/.
pub fn screen() -> Result<Vec<u8>, Error> {
    maildir::clean(Path::new("."));
    let mut out = b"\x1b[;H\x1b[;J".to_vec();
    for e in maildir::scan(Path::new("."), true, false)? {
        let Ok(f) = std::fs::File::open(&e.name) else {
            continue;
        };
        let s = Summary::read(&mut BufReader::new(f))
            .map_err(|_| Error::temp("trouble reading new message"))?;
        out.extend(s.render());
    }
    Ok(out)
}

/// Run maildirwatch (no arguments); it runs until killed.
pub fn run() -> Result<(), Error> {
    maildir::chdir_env()?;
    loop {
        let out = screen()?;
        let mut so = std::io::stdout().lock();
        let _ = so.write_all(&out).and_then(|_| so.flush());
        drop(so);
        std::thread::sleep(std::time::Duration::from_secs(30));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_a_message() {
        let m = b"Return-Path: <a@b>\nDelivered-To: c@d\nFrom: A\n  B\nSubject: hi\n\nbody\n";
        let s = Summary::read(&mut &m[..]).unwrap();
        assert_eq!(s.sender, b"<a@b>");
        assert_eq!(s.recipient, b"c@d");
        assert_eq!(s.fromline, b"From: A\n  B");
        assert_eq!(
            s.render(),
            b"FROM <a@b> TO <c@d>\n\x1b[1mFrom: A/  B\x1b[0m\nhi/body/\n\n"
        );
    }
}

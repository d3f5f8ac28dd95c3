//! The DATA phase: read the dot-terminated message from the client, undo
//! dot-stuffing, turn CRLF into LF, count Received and Delivered-To header
//! lines (the hop count), and stop at databytes.
//!
//! Line ends must be CRLF. A bare LF anywhere, or a CR not followed by LF,
//! ends the session with qmail's 451 smtplf reply: a message whose end could
//! be read differently by another server (SMTP smuggling) is never queued.

use super::io::Conn;
use common::Error;

/// Where the message bytes go, with the databytes limit.
pub trait Sink {
    fn put(&mut self, b: &[u8]);
}

/// The body reader's states, named by what was just seen.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Inside a line.
    Mid,
    /// At the start of a line (after CRLF, or at the start of the body).
    Start,
    /// A dot at the start of a line.
    Dot,
    /// CR after a dot at the start of a line.
    DotCr,
    /// CR inside a line.
    Cr,
}

/// Header lines seen so far and whether the header is still going on.
struct Hops {
    count: usize,
    in_header: bool,
    line: Vec<u8>,
}

impl Hops {
    /// Look at the start of each header line: "received" or "delivered"
    /// (any case mix qmail recognises) counts a hop; an empty line ends the header.
    fn see(&mut self, b: u8) {
        if !self.in_header {
            return;
        }
        if self.line.len() < 9 {
            self.line.push(b);
            let l = &self.line;
            if l.len() == 2 && l == b"\r\n" {
                self.in_header = false;
            }
            if l.len() == 8 && matches_word(l, b"received") {
                self.count += 1;
            }
            if l.len() == 9 && matches_word(l, b"delivered") {
                self.count += 1;
            }
        }
        if b == b'\n' {
            self.line.clear();
        }
    }
}

/// qmail compares each byte with the lowercase or the uppercase letter.
fn matches_word(l: &[u8], word: &[u8]) -> bool {
    l.iter()
        .zip(word)
        .all(|(&c, &w)| c == w || c == w.to_ascii_uppercase())
}

/// What went wrong with the client's line ends: the reply has been queued.
pub const SMTPLF: &[u8] = b"451 See http://pobox.com/~djb/docs/smtplf.html.\r\n";

/// Read the message into `sink`; returns the hop count. A bare LF or CR
/// answers 451 and ends the session.
pub fn blast(conn: &mut Conn, sink: &mut impl Sink) -> Result<usize, Error> {
    let mut state = State::Start;
    let mut hops = Hops {
        count: 0,
        in_header: true,
        line: Vec::with_capacity(9),
    };
    let mut out: Vec<u8> = Vec::with_capacity(8192);
    loop {
        let avail = conn.peek()?;
        let mut used = 0;
        let mut done = false;
        for &ch in avail {
            used += 1;
            hops.see(ch);
            match step(state, ch, &mut out) {
                Some(State::Start) if state == State::DotCr => {
                    done = true;
                    break;
                }
                Some(s) => state = s,
                None => {
                    conn.consume(used);
                    conn.out(SMTPLF);
                    let _ = conn.flush();
                    return Err(super::io::gone());
                }
            }
        }
        conn.consume(used);
        if out.len() >= 4096 || done {
            sink.put(&out);
            out.clear();
        }
        if done {
            return Ok(hops.count);
        }
    }
}

/// One byte: the next state (None for a bare LF or CR), bytes kept in `out`.
/// Leaving DotCr for Start means the message ended.
fn step(state: State, ch: u8, out: &mut Vec<u8>) -> Option<State> {
    let next = match (state, ch) {
        (State::Cr, b'\n') => State::Start,
        (State::Cr, _) => return None,
        (_, b'\n') if state != State::DotCr => return None,
        (State::DotCr, b'\n') => return Some(State::Start),
        (State::DotCr, _) => return None,
        (State::Start, b'.') => return Some(State::Dot),
        (State::Dot, b'\r') => return Some(State::DotCr),
        (_, b'\r') => return Some(State::Cr),
        _ => State::Mid,
    };
    out.push(ch);
    Some(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &[u8]) -> (Option<Vec<u8>>, usize) {
        let mut state = State::Start;
        let mut out = Vec::new();
        for &ch in input {
            match step(state, ch, &mut out) {
                Some(State::Start) if state == State::DotCr => return (Some(out), 0),
                Some(s) => state = s,
                None => return (None, 0),
            }
        }
        (None, 1)
    }

    #[test]
    fn crlf_becomes_lf_and_dots_are_unstuffed() {
        let (m, _) = run(b"a\r\n..b\r\n.c\r\n\r\n.\r\n");
        assert_eq!(m.unwrap(), b"a\n.b\nc\n\n");
    }

    #[test]
    fn bare_lf_and_bare_cr_are_refused() {
        assert_eq!(run(b"a\nb\r\n.\r\n").0, None);
        assert_eq!(run(b"a\rb\r\n.\r\n").0, None);
        assert_eq!(run(b"a\r\n.\n").0, None);
        assert_eq!(run(b"a\r\n.x\r\n.\r\n").0.unwrap(), b"a\nx\n");
        // A dot line ending in a bare CR is no end.
        assert_eq!(run(b"a\r\n.\rx").0, None);
    }

    #[test]
    fn hop_counting_reads_header_only() {
        let mut h = Hops {
            count: 0,
            in_header: true,
            line: Vec::new(),
        };
        for &b in b"Received: x\r\nDELIVERED-To: y\r\nreceived\r\n\r\nReceived: z\r\n" {
            h.see(b);
        }
        assert_eq!(h.count, 3);
    }
}

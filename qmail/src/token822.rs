//! RFC 822 header tokens as qmail-inject handles them (qmail's token822):
//! splitting a header field into atoms, quoted strings, domain literals,
//! comments and specials; walking an address list from right to left so
//! that each address can be rewritten in place; and writing the field back
//! with qmail's spacing and its folding after commas at 80 columns.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Atom,
    Quote,
    Literal,
    Comment,
    Left,
    Right,
    At,
    Comma,
    Semi,
    Colon,
    Dot,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub kind: Kind,
    pub text: Vec<u8>,
}

impl Token {
    pub fn new(kind: Kind, text: &[u8]) -> Token {
        Token {
            kind,
            text: text.to_vec(),
        }
    }
}

fn special(c: u8) -> Option<Kind> {
    Some(match c {
        b'.' => Kind::Dot,
        b',' => Kind::Comma,
        b'@' => Kind::At,
        b'<' => Kind::Left,
        b'>' => Kind::Right,
        b':' => Kind::Colon,
        b';' => Kind::Semi,
        _ => return None,
    })
}

fn atom_ok(c: u8) -> bool {
    !b" \t\r\n([\"<>;:@,.".contains(&c)
}

/// A delimited token starting after `open` at `i`: its text and the index
/// after the closing delimiter. Comments nest (inner parens are dropped);
/// a backslash quotes the next byte. None when unterminated.
fn delimited(s: &[u8], mut i: usize, open: u8, close: u8) -> Option<(Vec<u8>, usize)> {
    let mut text = Vec::new();
    let mut level = 1;
    loop {
        i += 1;
        let c = *s.get(i)?;
        if open == b'(' && c == b'(' {
            level += 1;
        } else if c == close {
            level -= 1;
            if level == 0 {
                return Some((text, i + 1));
            }
        } else if c == b'\\' {
            i += 1;
            text.push(*s.get(i)?);
        } else {
            text.push(c);
        }
    }
}

/// Split `s` into tokens; None for unbalanced quotes, comments or literals.
pub fn parse(s: &[u8]) -> Option<Vec<Token>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if let Some(k) = special(c) {
            out.push(Token::new(k, b""));
            i += 1;
            continue;
        }
        let (kind, close) = match c {
            b' ' | b'\t' | b'\r' | b'\n' => {
                i += 1;
                continue;
            }
            b')' | b']' => return None,
            b'(' => (Kind::Comment, b')'),
            b'"' => (Kind::Quote, b'"'),
            b'[' => (Kind::Literal, b']'),
            _ => {
                let (t, next) = atom(s, i);
                out.push(t);
                i = next;
                continue;
            }
        };
        let (text, next) = delimited(s, i, c, close)?;
        out.push(Token { kind, text });
        i = next;
    }
    Some(out)
}

/// An atom from `i`; it becomes a quoted string if it holds bytes an atom
/// may not show unquoted.
fn atom(s: &[u8], mut i: usize) -> (Token, usize) {
    let mut text = Vec::new();
    loop {
        if s[i] == b'\\' {
            i += 1;
            if i >= s.len() {
                break;
            }
        }
        text.push(s[i]);
        i += 1;
        if i >= s.len() || !atom_ok(s[i]) {
            break;
        }
    }
    let bad = text
        .iter()
        .any(|&c| !(32..=126).contains(&c) || c == b')' || c == b']' || c == b'\\');
    let kind = if bad { Kind::Quote } else { Kind::Atom };
    (Token { kind, text }, i)
}

fn needspace(last: Option<Kind>, new: Kind) -> bool {
    let Some(last) = last else { return false };
    let word = |k| matches!(k, Kind::Atom | Kind::Literal | Kind::Quote | Kind::Comment);
    last == Kind::Colon || last == Kind::Comma || new == Kind::Left || (word(last) && word(new))
}

/// Where the tentative line break after each comma stands.
struct Folder {
    out: Vec<u8>,
    lineb: usize,
    linee: Option<usize>,
    linelen: usize,
}

impl Folder {
    /// Put a tentative "\n " here; drop the previous one if the line
    /// since the last kept break still fits.
    fn mark(&mut self) {
        let s = self.out.len();
        self.out.extend_from_slice(b"\n ");
        match self.linee {
            Some(le) if self.linelen == 0 || s - self.lineb <= self.linelen => {
                self.out.drain(le..le + 2);
                self.linee = Some(s - 2);
            }
            _ => {
                if let Some(le) = self.linee {
                    self.lineb = le + 1;
                }
                self.linee = Some(s);
            }
        }
    }
}

/// Write tokens back as a header field ending in "\n", folded after
/// commas so that lines stay within `linelen` where possible.
pub fn unparse(ta: &[Token], linelen: usize) -> Vec<u8> {
    let mut f = Folder {
        out: Vec::new(),
        lineb: 0,
        linee: None,
        linelen,
    };
    let mut last = None;
    for t in ta {
        if needspace(last, t.kind) {
            f.out.push(b' ');
        }
        last = Some(t.kind);
        let punct = match t.kind {
            Kind::Comma => {
                f.out.push(b',');
                f.mark();
                continue;
            }
            Kind::At => b'@',
            Kind::Dot => b'.',
            Kind::Left => b'<',
            Kind::Right => b'>',
            Kind::Semi => b';',
            Kind::Colon => b':',
            _ => 0,
        };
        if punct != 0 {
            f.out.push(punct);
            continue;
        }
        let (open, close) = match t.kind {
            Kind::Quote => (Some(b'"'), Some(b'"')),
            Kind::Literal => (Some(b'['), Some(b']')),
            Kind::Comment => (Some(b'('), Some(b')')),
            _ => (None, None),
        };
        f.out.extend(open);
        for &c in &t.text {
            if b"\"[]()\\\r\n".contains(&c) {
                f.out.push(b'\\');
            }
            f.out.push(c);
        }
        f.out.extend(close);
    }
    f.mark();
    f.out.pop();
    f.out
}

/// The tokens as a plain address: no quoting, comments dropped.
pub fn unquote(ta: &[Token]) -> Vec<u8> {
    let mut out = Vec::new();
    for t in ta {
        match t.kind {
            Kind::Comma => out.push(b','),
            Kind::At => out.push(b'@'),
            Kind::Dot => out.push(b'.'),
            Kind::Left => out.push(b'<'),
            Kind::Right => out.push(b'>'),
            Kind::Semi => out.push(b';'),
            Kind::Colon => out.push(b':'),
            Kind::Literal => {
                out.push(b'[');
                out.extend_from_slice(&t.text);
                out.push(b']');
            }
            Kind::Atom | Kind::Quote => out.extend_from_slice(&t.text),
            Kind::Comment => {}
        }
    }
    out
}

/// Rebuild a header field (name and colon first) with every address
/// passed through `rw` (in natural order). The list is read right to left,
/// which makes groups, route-addrs and bare addresses easy to tell apart.
/// None when the field is not a valid address list.
pub fn addrlist(ta: &[Token], rw: &mut dyn FnMut(&mut Vec<Token>)) -> Option<Vec<Token>> {
    let mut out: Vec<Token> = Vec::new();
    let mut addr: Vec<Token> = Vec::new();
    let mut got = |out: &mut Vec<Token>, addr: &mut Vec<Token>| {
        let mut natural: Vec<Token> = addr.drain(..).rev().collect();
        rw(&mut natural);
        out.extend(natural.into_iter().rev());
    };
    let flushcomma = |out: &mut Vec<Token>,
                      addr: &mut Vec<Token>,
                      got: &mut dyn FnMut(&mut Vec<Token>, &mut Vec<Token>)| {
        if !addr.is_empty() {
            got(out, addr);
            out.push(Token::new(Kind::Comma, b""));
        }
    };
    let (mut ingroup, mut wordok) = (false, true);
    let b: isize = 2;
    let mut t: isize = ta.len() as isize - 1;
    let at = |i: isize| &ta[i as usize];
    while t >= b {
        match at(t).kind {
            Kind::Semi => {
                flushcomma(&mut out, &mut addr, &mut got);
                if ingroup {
                    return None;
                }
                ingroup = true;
                wordok = true;
            }
            Kind::Colon => {
                if !addr.is_empty() {
                    got(&mut out, &mut addr);
                }
                if !ingroup {
                    return None;
                }
                ingroup = false;
                while t >= b && at(t).kind != Kind::Comma {
                    out.push(at(t).clone());
                    t -= 1;
                }
                if t >= b {
                    out.push(at(t).clone());
                    t -= 1;
                }
                wordok = true;
                continue;
            }
            Kind::Right => {
                flushcomma(&mut out, &mut addr, &mut got);
                out.push(at(t).clone());
                t -= 1;
                while t >= b && at(t).kind != Kind::Left {
                    addr.push(at(t).clone());
                    t -= 1;
                }
                // Even an empty address counts here: <>.
                got(&mut out, &mut addr);
                if t < b {
                    return None;
                }
                out.push(at(t).clone());
                t -= 1;
                while t >= b
                    && matches!(
                        at(t).kind,
                        Kind::Comment | Kind::Atom | Kind::Quote | Kind::At | Kind::Dot
                    )
                {
                    out.push(at(t).clone());
                    t -= 1;
                }
                wordok = false;
                continue;
            }
            Kind::Atom | Kind::Quote | Kind::Literal => {
                if !wordok {
                    flushcomma(&mut out, &mut addr, &mut got);
                }
                wordok = false;
                addr.push(at(t).clone());
                t -= 1;
                continue;
            }
            Kind::Comment => {}
            Kind::Comma => {
                if !addr.is_empty() {
                    got(&mut out, &mut addr);
                }
                wordok = true;
            }
            _ => {
                wordok = true;
                addr.push(at(t).clone());
                t -= 1;
                continue;
            }
        }
        out.push(at(t).clone());
        t -= 1;
    }
    if !addr.is_empty() {
        got(&mut out, &mut addr);
    }
    for i in (0..(t + 1).max(0) as usize).rev() {
        out.push(ta[i].clone());
    }
    out.reverse();
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(s: &str) -> String {
        let t = parse(s.as_bytes()).unwrap();
        let r = addrlist(&t, &mut |a: &mut Vec<Token>| {
            if !a.iter().any(|t| t.kind == Kind::At) && !a.is_empty() {
                a.push(Token::new(Kind::At, b""));
                a.push(Token::new(Kind::Atom, b"host"));
            }
        })
        .unwrap();
        String::from_utf8(unparse(&r, 80)).unwrap()
    }

    #[test]
    fn addresses_are_rewritten_in_place() {
        assert_eq!(roundtrip("To: joe"), "To: joe@host\n");
        assert_eq!(
            roundtrip("To: Joe Smith <joe>, bob@x (Bob)"),
            "To: Joe Smith <joe@host>, bob@x (Bob)\n"
        );
        assert_eq!(roundtrip("To: \"a b\" <>"), "To: \"a b\" <>\n");
        assert_eq!(roundtrip("Cc: list: a, b;"), "Cc: list: a@host, b@host;\n");
    }

    #[test]
    fn long_lists_fold_after_commas() {
        let many: Vec<String> = (0..12).map(|i| format!("user{i}@example.org")).collect();
        let out = roundtrip(&format!("To: {}", many.join(", ")));
        assert!(out.lines().all(|l| l.len() <= 80), "{out}");
        assert!(out.contains(",\n  user"), "{out}");
        assert_eq!(
            out.replace(",\n  ", ", "),
            format!("To: {}\n", many.join(", "))
        );
    }

    #[test]
    fn bad_syntax_is_refused() {
        assert!(parse(b"To: \"open").is_none());
        assert!(parse(b"To: )a").is_none());
        assert_eq!(parse(b"a)").unwrap()[0].kind, Kind::Quote);
        assert_eq!(
            unquote(&parse(b"\"a b\"@[1.2.3.4] (c)").unwrap()),
            b"a b@[1.2.3.4]"
        );
    }
}

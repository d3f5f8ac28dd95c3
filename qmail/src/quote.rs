//! Quoting a mailbox's local part for headers (RFC 821/822) with as little
//! quoting as possible, as qmail's quote() and quote2() do: the bounce's To
//! and Return-Path lines and qmail-inject's rewritten addresses use it.

/// Whether `c` may appear unquoted in a local part.
fn plain(c: u8) -> bool {
    c.is_ascii_graphic() && !b"\"(),:;<>@[\\]".contains(&c)
}

/// Whether `s` must be quoted.
pub fn need(s: &str) -> bool {
    let b = s.as_bytes();
    b.is_empty()
        || !b.iter().all(|&c| plain(c))
        || b[0] == b'.'
        || b[b.len() - 1] == b'.'
        || s.contains("..")
}

/// `s` quoted when needed.
pub fn quote(s: &str) -> String {
    if !need(s) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if matches!(c, '\r' | '\n' | '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// An address with its local part (before the last @) quoted when needed.
pub fn quote2(addr: &str) -> String {
    if addr.is_empty() {
        return String::new();
    }
    match addr.rfind('@') {
        None => quote(addr),
        Some(at) => format!("{}{}", quote(&addr[..at]), &addr[at..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_when_needed() {
        assert_eq!(quote2("joe@x.org"), "joe@x.org");
        assert_eq!(quote2("a b@x"), "\"a b\"@x");
        assert_eq!(quote2("a..b@x"), "\"a..b\"@x");
        assert_eq!(quote("MAILER-DAEMON"), "MAILER-DAEMON");
        assert_eq!(quote2("\"x\"@y"), "\"\\\"x\\\"\"@y");
        assert_eq!(quote2(""), "");
    }
}

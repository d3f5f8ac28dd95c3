//! multilog's pattern rules for `-pattern` and `+pattern`: a pattern matches a
//! whole line; `*` matches any string that does not contain the character
//! following it in the pattern (so `*` stops at the FIRST occurrence of that
//! character, it never backtracks), and a trailing `*` matches anything.

/// Whether `pattern` matches all of `line` with the original's `*` rule.
pub fn matches(pattern: &[u8], line: &[u8]) -> bool {
    let mut p = pattern;
    let mut l = line;
    loop {
        let Some((&ch, rest)) = p.split_first() else {
            return l.is_empty();
        };
        p = rest;
        if ch == b'*' {
            // The star stops at the first byte equal to the next pattern
            // byte; that byte is then matched literally by the next round.
            let Some(&next) = p.first() else {
                return true;
            };
            match l.iter().position(|&b| b == next) {
                Some(i) => l = &l[i..],
                None => return false,
            }
            continue;
        }
        match l.split_first() {
            Some((&b, rest)) if b == ch => l = rest,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn literal_and_whole_line() {
        assert!(matches(b"abc", b"abc"));
        assert!(!matches(b"abc", b"abcd"));
        assert!(!matches(b"abc", b"ab"));
        assert!(matches(b"", b""));
        assert!(!matches(b"", b"x"));
    }

    #[test]
    fn star_stops_at_first_next_char() {
        assert!(matches(b"*", b""));
        assert!(matches(b"*", b"anything at all"));
        assert!(matches(b"* fatal: *", b"qmail: fatal: oops"));
        assert!(matches(b"*b", b"xxxb"));
        // `*` cannot skip over a `b`: the first `b` ends the star.
        assert!(!matches(b"*b", b"xbxb"));
        assert!(matches(b"a*c*", b"abcdef"));
        assert!(!matches(b"a*c", b"abcdc"));
        assert!(!matches(b"*x", b"abc"));
    }
}

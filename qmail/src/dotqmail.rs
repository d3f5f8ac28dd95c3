//! The dot-qmail language (dot-qmail(5)): which .qmail file controls an
//! address extension (the search with `-default`, lowercasing and `.` to
//! `:`), and what each of its lines asks for.

/// One instruction line of a .qmail file, trailing spaces and tabs removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// Empty line (an error only when it is the first line).
    Blank,
    /// `#...`
    Comment,
    /// `./dir/` or `/dir/`: a maildir.
    Maildir(Vec<u8>),
    /// `./file` or `/file`: an mbox.
    Mbox(Vec<u8>),
    /// `|command`: run with /bin/sh -c.
    Program(Vec<u8>),
    /// `&address` or a bare address.
    Forward(Vec<u8>),
    /// `+list`: the rest of the file may only forward.
    List,
    /// Another `+...` line: ignored.
    Ignored,
}

/// Split `cmds` into lines as qmail-local reads them (a final line without
/// newline counts).
pub fn parse(cmds: &[u8]) -> Vec<Line> {
    let body = cmds.strip_suffix(b"\n").unwrap_or(cmds);
    body.split(|&b| b == b'\n').map(parse_line).collect()
}

fn parse_line(raw: &[u8]) -> Line {
    let end = raw
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(0, |p| p + 1);
    let l = &raw[..end];
    match l.first() {
        None => Line::Blank,
        Some(b'#') => Line::Comment,
        Some(b'.') | Some(b'/') if l.ends_with(b"/") => Line::Maildir(l.to_vec()),
        Some(b'.') | Some(b'/') => Line::Mbox(l.to_vec()),
        Some(b'|') => Line::Program(l[1..].to_vec()),
        Some(b'+') if &l[1..] == b"list" => Line::List,
        Some(b'+') => Line::Ignored,
        Some(b'&') => Line::Forward(l[1..].to_vec()),
        Some(_) => Line::Forward(l.to_vec()),
    }
}

/// The extension as used in file names: lowercased, `.` turned into `:`.
pub fn safe_ext(ext: &[u8]) -> Vec<u8> {
    ext.iter()
        .map(|&b| match b.to_ascii_lowercase() {
            b'.' => b':',
            c => c,
        })
        .collect()
}

/// The .qmail file names to try, in order, each with the value of DEFAULT
/// it sets when it is the one found (None: DEFAULT is not set).
///
/// For dash `-` and ext `a-b`: `.qmail-a-b`, `.qmail-a-default`
/// (DEFAULT=b), `.qmail-default` (DEFAULT=a-b).
pub fn candidates(dash: &[u8], ext: &[u8]) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    let safe = safe_ext(ext);
    let name = |stem: &[u8], tail: &[u8]| [b".qmail", dash, stem, tail].concat();
    let mut out = Vec::new();
    let exact_default =
        (safe.len() >= 7 && safe.ends_with(b"default")).then(|| ext[safe.len() - 7..].to_vec());
    out.push((name(&safe, b""), exact_default));
    for i in (0..=safe.len()).rev() {
        if i == 0 || safe[i - 1] == b'-' {
            out.push((name(&safe[..i], b"default"), Some(ext[i..].to_vec())));
        }
    }
    out
}

/// The name of the owner file for a found .qmail: `.qmail` + dash + safe ext + `suffix`.
pub fn owner_name(dash: &[u8], ext: &[u8], suffix: &str) -> Vec<u8> {
    [b".qmail", dash, &safe_ext(ext), suffix.as_bytes()].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dash: &str, ext: &str) -> Vec<String> {
        candidates(dash.as_bytes(), ext.as_bytes())
            .into_iter()
            .map(|(n, _)| String::from_utf8(n).unwrap())
            .collect()
    }

    #[test]
    fn search_order_follows_qmail_local() {
        assert_eq!(names("-", ""), [".qmail-", ".qmail-default"]);
        assert_eq!(names("-", "a"), [".qmail-a", ".qmail-default"]);
        assert_eq!(
            names("-", "a-"),
            [".qmail-a-", ".qmail-a-default", ".qmail-default"]
        );
        assert_eq!(
            names("-", "A.b-c"),
            [".qmail-a:b-c", ".qmail-a:b-default", ".qmail-default"]
        );
        let c = candidates(b"-", b"Foo-Bar");
        assert_eq!(c[1].1.as_deref(), Some(&b"Bar"[..]));
        assert_eq!(c[2].1.as_deref(), Some(&b"Foo-Bar"[..]));
        assert_eq!(c[0].1, None);
        let c = candidates(b"-", b"x-Default");
        assert_eq!(c[0].1.as_deref(), Some(&b"Default"[..]));
    }

    #[test]
    fn every_kind_of_line() {
        let v = parse(b"# c\n./Maildir/\n/var/mail/x  \n|prog a\n&a@b\nc@d\n+list\n+x\n\n");
        assert_eq!(
            v,
            [
                Line::Comment,
                Line::Maildir(b"./Maildir/".to_vec()),
                Line::Mbox(b"/var/mail/x".to_vec()),
                Line::Program(b"prog a".to_vec()),
                Line::Forward(b"a@b".to_vec()),
                Line::Forward(b"c@d".to_vec()),
                Line::List,
                Line::Ignored,
                Line::Blank,
            ]
        );
        assert_eq!(parse(b"./mbox"), [Line::Mbox(b"./mbox".to_vec())]);
    }
}

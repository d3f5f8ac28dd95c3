//! Option parsing with the rules of djb's sgetopt, which every original uses:
//! flags may be combined (`-vRHl0`), an option's argument may be attached or
//! the next word (`-c400`, `-c 400`), `--` ends the options, a lone `-` or the
//! first word not starting with `-` is the first operand. Errors are reported
//! in sgetopt's words (`NAME: illegal option -- z`) before the caller's usage.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// One option found on the command line, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opt {
    pub flag: u8,
    pub arg: Option<OsString>,
}

impl Opt {
    /// The option's argument as a (lossy) string, "" for a flag.
    pub fn arg_str(&self) -> String {
        self.arg
            .as_deref()
            .map(|a| a.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// The options and operands of a command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub opts: Vec<Opt>,
    pub operands: Vec<OsString>,
}

/// Parse `args` (without argv[0]) against `optstring` (`"c:x:vq"`: a letter
/// followed by `:` takes an argument). On a bad option prints sgetopt's
/// message as `prog` and returns None; the caller then gives its usage.
pub fn getopt(prog: &str, args: &[OsString], optstring: &str) -> Option<Parsed> {
    match parse(args, optstring) {
        Ok(p) => Some(p),
        Err(msg) => {
            eprintln!("{prog}: {msg}");
            None
        }
    }
}

/// The parser behind [`getopt`]; returns sgetopt's message on error.
pub fn parse(args: &[OsString], optstring: &str) -> Result<Parsed, String> {
    let spec = optstring.as_bytes();
    let mut opts = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let word = args[i].as_bytes();
        if word == b"--" {
            i += 1;
            break;
        }
        if word.len() < 2 || word[0] != b'-' {
            break;
        }
        let mut j = 1;
        while j < word.len() {
            let c = word[j];
            let takes_arg = match spec.iter().position(|&s| s == c && c != b':') {
                None => return Err(format!("illegal option -- {}", c as char)),
                Some(p) => spec.get(p + 1) == Some(&b':'),
            };
            if !takes_arg {
                opts.push(Opt { flag: c, arg: None });
                j += 1;
                continue;
            }
            let arg = if j + 1 < word.len() {
                OsString::from_vec(word[j + 1..].to_vec())
            } else {
                i += 1;
                match args.get(i) {
                    Some(a) => a.clone(),
                    None => return Err(format!("option requires an argument -- {}", c as char)),
                }
            };
            opts.push(Opt {
                flag: c,
                arg: Some(arg),
            });
            break;
        }
        i += 1;
    }
    Ok(Parsed {
        opts,
        operands: args[i..].to_vec(),
    })
}

/// Parse an unsigned decimal the way djb's scan_ulong does: leading digits
/// only, the rest ignored; returns the value and how many bytes were digits.
pub fn scan_ulong(s: &OsStr) -> (u64, usize) {
    let mut v: u64 = 0;
    let mut n = 0;
    for &b in s.as_bytes() {
        if !b.is_ascii_digit() {
            break;
        }
        v = v.saturating_mul(10).saturating_add(u64::from(b - b'0'));
        n += 1;
    }
    (v, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    #[test]
    fn combined_and_attached() {
        let p = parse(
            &v(&["-vRHl0", "-c400", "-x", "r.cdb", "0", "smtp", "-v"]),
            "vRHl:c:x:",
        )
        .unwrap();
        let flags: Vec<u8> = p.opts.iter().map(|o| o.flag).collect();
        assert_eq!(flags, b"vRHlcx");
        assert_eq!(p.opts[3].arg_str(), "0");
        assert_eq!(p.opts[4].arg_str(), "400");
        assert_eq!(p.opts[5].arg_str(), "r.cdb");
        assert_eq!(p.operands, v(&["0", "smtp", "-v"]));
    }

    #[test]
    fn dashdash_and_dash() {
        let p = parse(&v(&["-u", "--", "-d"]), "ud").unwrap();
        assert_eq!(p.opts.len(), 1);
        assert_eq!(p.operands, v(&["-d"]));
        let p = parse(&v(&["-", "x"]), "u").unwrap();
        assert_eq!(p.operands, v(&["-", "x"]));
    }

    #[test]
    fn errors_in_sgetopt_words() {
        assert_eq!(parse(&v(&["-z"]), "u").unwrap_err(), "illegal option -- z");
        assert_eq!(
            parse(&v(&["-c"]), "c:").unwrap_err(),
            "option requires an argument -- c"
        );
    }

    #[test]
    fn scan() {
        assert_eq!(scan_ulong(OsStr::new("123abc")), (123, 3));
        assert_eq!(scan_ulong(OsStr::new("x")), (0, 0));
    }
}

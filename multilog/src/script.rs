//! Parsing of multilog's script words into actions. Words are applied to each
//! line in order; `s`, `n` and `!` set the size, count and processor of the
//! directories that follow them. A leading `t` turns on timestamps; words the
//! original does not know (and `t` anywhere else) are ignored, as it does.

use std::os::unix::ffi::OsStrExt;

/// Default and bounds of `sSIZE` and `nNUM` as in daemontools 0.76.
pub const SIZE_DEFAULT: u64 = 99999;
pub const SIZE_MIN: u64 = 4096;
pub const SIZE_MAX: u64 = 16_777_215;
pub const NUM_DEFAULT: u64 = 10;
pub const NUM_MIN: u64 = 2;

/// One step applied to every line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `-pattern`: deselect the line if it matches.
    Deselect(Vec<u8>),
    /// `+pattern`: select the line if it matches.
    Select(Vec<u8>),
    /// `e`: copy a selected line (cut at 200 bytes) to stderr.
    Stderr,
    /// `=file`: the index of a status file in `Script::files`.
    Status(usize),
    /// `./dir` or `/dir`: the index of a log directory in `Script::dirs`.
    Dir(usize),
}

/// A log directory as the script asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirSpec {
    pub path: Vec<u8>,
    pub size: u64,
    pub num: u64,
    pub processor: Option<Vec<u8>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Script {
    pub timestamp: bool,
    pub actions: Vec<Action>,
    pub dirs: Vec<DirSpec>,
    pub files: Vec<Vec<u8>>,
}

impl Script {
    /// Parse the words after argv[0].
    pub fn parse<S: AsRef<std::ffi::OsStr>>(words: &[S]) -> Script {
        let mut script = Script::default();
        let mut words: Vec<&[u8]> = words.iter().map(|w| w.as_ref().as_bytes()).collect();
        if words.first() == Some(&&b"t"[..]) {
            script.timestamp = true;
            words.remove(0);
        }
        let mut size = SIZE_DEFAULT;
        let mut num = NUM_DEFAULT;
        let mut processor = None;
        for w in words {
            let rest = w.get(1..).unwrap_or_default().to_vec();
            match w.first() {
                Some(b'-') => script.actions.push(Action::Deselect(rest)),
                Some(b'+') => script.actions.push(Action::Select(rest)),
                Some(b'e') => script.actions.push(Action::Stderr),
                Some(b's') => size = number(&rest).clamp(SIZE_MIN, SIZE_MAX),
                Some(b'n') => num = number(&rest).max(NUM_MIN),
                Some(b'!') => processor = Some(rest).filter(|p| !p.is_empty()),
                Some(b'=') => {
                    script.actions.push(Action::Status(script.files.len()));
                    script.files.push(rest);
                }
                Some(b'.') | Some(b'/') => {
                    script.actions.push(Action::Dir(script.dirs.len()));
                    script.dirs.push(DirSpec {
                        path: w.to_vec(),
                        size,
                        num,
                        processor: processor.clone(),
                    });
                }
                _ => {}
            }
        }
        script
    }

    /// Whether any line can be treated differently from another: then the
    /// first 1000 bytes of each line must be seen before it is written.
    pub fn filters(&self) -> bool {
        self.actions.iter().any(|a| !matches!(a, Action::Dir(_)))
    }
}

/// The leading decimal digits of `s` as scan_ulong reads them (0 when none).
fn number(s: &[u8]) -> u64 {
    s.iter()
        .take_while(|b| b.is_ascii_digit())
        .fold(0u64, |n, &b| {
            n.saturating_mul(10).saturating_add(u64::from(b - b'0'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_script_words() {
        let s = Script::parse(&[
            "t",
            "s1000000",
            "n20",
            "!gzip",
            "-*",
            "+* fatal: *",
            "e",
            "./main",
            "=st",
            "/var/log/x",
        ]);
        assert!(s.timestamp);
        assert_eq!(s.dirs[0].size, 1_000_000);
        assert_eq!(s.dirs[0].num, 20);
        assert_eq!(s.dirs[0].processor.as_deref(), Some(&b"gzip"[..]));
        assert_eq!(s.dirs[1].path, b"/var/log/x");
        assert_eq!(s.files, vec![b"st".to_vec()]);
        assert_eq!(
            s.actions,
            vec![
                Action::Deselect(b"*".to_vec()),
                Action::Select(b"* fatal: *".to_vec()),
                Action::Stderr,
                Action::Dir(0),
                Action::Status(0),
                Action::Dir(1)
            ]
        );
    }

    #[test]
    fn bounds_and_unknown_words() {
        let s = Script::parse(&["s100", "n0", "./a", "s99999999", "n1", "zz", "t", "./b"]);
        assert!(!s.timestamp);
        assert_eq!((s.dirs[0].size, s.dirs[0].num), (SIZE_MIN, NUM_MIN));
        assert_eq!((s.dirs[1].size, s.dirs[1].num), (SIZE_MAX, NUM_MIN));
        assert_eq!(s.actions.len(), 2);
        let d = Script::parse(&["./c"]);
        assert_eq!((d.dirs[0].size, d.dirs[0].num), (SIZE_DEFAULT, NUM_DEFAULT));
        assert!(!d.filters());
    }
}

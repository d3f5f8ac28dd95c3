//! qmail's control files (QMAILHOME/control/NAME) with the defaults of
//! qmail-control(5): reading one line, a list of lines, a number, and the
//! "defaults to me" rule that most host-name controls share.
//!
//! Names are given relative to the control directory ("me", "locals"); a
//! leading "control/" is accepted too, because that is how qmail's sources and
//! documentation spell them.

use common::Error;
use std::io::{self, Read};
use std::path::PathBuf;

/// The file behind control `name`.
pub fn file(name: &str) -> PathBuf {
    let name = name.strip_prefix("control/").unwrap_or(name);
    crate::home::home().join("control").join(name)
}

/// The whole file, or None when it does not exist.
fn slurp(name: &str) -> io::Result<Option<Vec<u8>>> {
    match std::fs::File::open(file(name)) {
        Ok(mut f) => {
            let mut buf = Vec::new();
            f.read_to_end(&mut buf)?;
            Ok(Some(buf))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn strip_trailing(line: &[u8]) -> String {
    let end = line
        .iter()
        .rposition(|b| !b" \t\r\n".contains(b))
        .map_or(0, |p| p + 1);
    String::from_utf8_lossy(&line[..end]).into_owned()
}

/// The first line, trailing whitespace stripped; None when the file doesn't exist.
pub fn read_line(name: &str) -> io::Result<Option<String>> {
    Ok(slurp(name)?.map(|buf| {
        let first = buf.split(|&b| b == b'\n').next().unwrap_or(&[]);
        strip_trailing(first)
    }))
}

/// Every line that is not empty and does not start with '#', trailing
/// whitespace stripped; None when the file doesn't exist.
pub fn read_lines(name: &str) -> io::Result<Option<Vec<String>>> {
    Ok(slurp(name)?.map(|buf| {
        buf.split(|&b| b == b'\n')
            .map(strip_trailing)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    }))
}

/// The error qmail's programs report when a control cannot be read.
pub fn read_error(name: &str, e: &io::Error) -> Error {
    let name = name.strip_prefix("control/").unwrap_or(name);
    Error::sys(format!("unable to read control/{name}"), e)
}

/// A number: `default` when the file is missing or does not start with a
/// digit (control_readint's rule), an error when it cannot be read.
pub fn read_int(name: &str, default: i64) -> Result<i64, Error> {
    let line = read_line(name).map_err(|e| read_error(name, &e))?;
    Ok(line
        .and_then(|l| {
            let digits: String = l.chars().take_while(|c| c.is_ascii_digit()).collect();
            digits.parse::<i64>().ok()
        })
        .unwrap_or(default))
}

/// control/me, None when missing.
pub fn me() -> Result<Option<String>, Error> {
    read_line("me").map_err(|e| read_error("me", &e))
}

/// A line with qmail's fallback chain: the file, else `me` (when `flagme`),
/// else `default` (control_rldef).
pub fn line_or(name: &str, flagme: bool, default: &str) -> Result<String, Error> {
    if let Some(l) = read_line(name).map_err(|e| read_error(name, &e))? {
        return Ok(l);
    }
    if flagme {
        if let Some(m) = me()? {
            return Ok(m);
        }
    }
    Ok(default.to_string())
}

/// A list with qmail's fallback: the file, else `me` alone (when `flagme`), else empty.
pub fn lines_or_me(name: &str, flagme: bool) -> Result<Vec<String>, Error> {
    if let Some(v) = read_lines(name).map_err(|e| read_error(name, &e))? {
        return Ok(v);
    }
    if flagme {
        if let Some(m) = me()? {
            return Ok(vec![m]);
        }
    }
    Ok(Vec::new())
}

/// The control files qmail-send reads, with qmail-control(5)'s defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendControls {
    pub me: String,
    pub envnoathost: String,
    pub bouncefrom: String,
    pub bouncehost: String,
    pub doublebouncehost: String,
    pub doublebounceto: String,
    pub concurrencylocal: i64,
    pub concurrencyremote: i64,
    pub queuelifetime: i64,
    pub locals: Vec<String>,
    pub percenthack: Vec<String>,
    pub virtualdomains: Vec<String>,
}

impl SendControls {
    pub fn load() -> Result<SendControls, Error> {
        Ok(SendControls {
            me: line_or("me", false, "me")?,
            envnoathost: line_or("envnoathost", true, "envnoathost")?,
            bouncefrom: line_or("bouncefrom", false, "MAILER-DAEMON")?,
            bouncehost: line_or("bouncehost", true, "bouncehost")?,
            doublebouncehost: line_or("doublebouncehost", true, "doublebouncehost")?,
            doublebounceto: line_or("doublebounceto", false, "postmaster")?,
            concurrencylocal: read_int("concurrencylocal", 10)?.clamp(1, 1000),
            concurrencyremote: read_int("concurrencyremote", 20)?.clamp(1, 1000),
            queuelifetime: read_int("queuelifetime", 604800)?,
            locals: lines_or_me("locals", true)?,
            percenthack: lines_or_me("percenthack", false)?,
            virtualdomains: lines_or_me("virtualdomains", false)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_trailing_whitespace_only() {
        assert_eq!(strip_trailing(b"  a b \t\r"), "  a b");
        assert_eq!(strip_trailing(b""), "");
    }

    #[test]
    fn file_accepts_both_spellings() {
        assert_eq!(file("me"), file("control/me"));
    }
}

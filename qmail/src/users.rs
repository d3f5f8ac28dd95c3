//! Who receives mail for a local part: users/assign (qmail-users(5)), the
//! users/cdb that qmail-newu builds from it, and the qmail-getpw rules used
//! when users/cdb does not exist. qmail-lspawn calls [`lookup`] to turn an
//! address's local part into qmail-local's user, ids, home, dash and ext.

use crate::getpw;
use common::Error;
use std::path::{Path, PathBuf};

/// The fields qmail-local is run with, for one local part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub user: String,
    pub uid: u32,
    pub gid: u32,
    pub homedir: PathBuf,
    pub dash: String,
    pub ext: String,
}

/// One assignment line of users/assign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assign {
    /// `+` (prefix) rather than `=` (exact).
    pub wild: bool,
    /// The local part (or prefix), as written.
    pub local: String,
    /// user, uid, gid, homedir, dash, ext (or ext prefix), as written.
    pub fields: [String; 6],
}

/// Why users/assign cannot be turned into a cdb.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssignError {
    Read,
    Format,
}

/// Parse users/assign as qmail-newu does: lines up to one starting with `.`;
/// a final line without newline, a NUL byte, a missing or leading colon or
/// fewer than six fields after the local part is a format error.
pub fn parse_assign(text: &[u8]) -> Result<Vec<Assign>, AssignError> {
    let mut out = Vec::new();
    let mut rest = text;
    loop {
        if rest.first() == Some(&b'.') {
            return Ok(out);
        }
        let nl = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or(AssignError::Format)?;
        out.push(parse_assign_line(&rest[..nl])?);
        rest = &rest[nl + 1..];
    }
}

fn parse_assign_line(line: &[u8]) -> Result<Assign, AssignError> {
    if line.contains(&0) {
        return Err(AssignError::Format);
    }
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or(AssignError::Format)?;
    if colon == 0 {
        return Err(AssignError::Format);
    }
    let wild = line[0] == b'+';
    let local = String::from_utf8_lossy(&line[1..colon]).into_owned();
    let data = &line[colon + 1..];
    let parts: Vec<&[u8]> = data.splitn(7, |&b| b == b':').collect();
    if parts.len() < 7 {
        return Err(AssignError::Format);
    }
    let f = |i: usize| String::from_utf8_lossy(parts[i]).into_owned();
    Ok(Assign {
        wild,
        local,
        fields: [f(0), f(1), f(2), f(3), f(4), f(5)],
    })
}

impl Assign {
    /// The users/cdb key: `!` + lowercased local, plus a NUL for exact entries.
    pub fn key(&self) -> Vec<u8> {
        let mut k = b"!".to_vec();
        k.extend(self.local.to_ascii_lowercase().bytes());
        if !self.wild {
            k.push(0);
        }
        k
    }

    /// The users/cdb data: the six fields separated by NULs.
    pub fn data(&self) -> Vec<u8> {
        self.fields.join("\0").into_bytes()
    }
}

/// The value stored under the empty key: the last character of every
/// wildcard local part, so lookups only try prefixes that can match.
pub fn wildchars(entries: &[Assign]) -> Vec<u8> {
    let mut w = Vec::new();
    for e in entries.iter().filter(|e| e.wild) {
        if let Some(&c) = e.local.as_bytes().last() {
            if !w.contains(&c) {
                w.push(c);
            }
        }
    }
    w
}

/// Write `entries` as a cdb to `file` (qmail-newu's layout).
pub fn write_cdb(file: std::fs::File, entries: &[Assign]) -> std::io::Result<()> {
    let mut mk = cdb::CDBMake::new(file)?;
    for e in entries {
        mk.add(&e.key(), &e.data())?;
    }
    mk.add(b"", &wildchars(entries))?;
    mk.finish()
}

fn cdb_trouble() -> Error {
    Error::temp("Trouble reading users/cdb in qmail-lspawn.")
}

/// Look `local` up in the users/cdb at `path`: Ok(None) when the file does
/// not exist or holds no match.
pub fn lookup_cdb(path: &Path, local: &str) -> Result<Option<Delivery>, Error> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(_) => return Err(cdb_trouble()),
        Ok(_) => {}
    }
    let db = cdb::CDB::open(path).map_err(|_| cdb_trouble())?;
    let get = |key: &[u8]| -> Result<Option<Vec<u8>>, Error> {
        match db.get(key) {
            None => Ok(None),
            Some(Ok(v)) => Ok(Some(v)),
            Some(Err(_)) => Err(cdb_trouble()),
        }
    };
    let wild = get(b"")?.ok_or_else(cdb_trouble)?;
    let mut lower = b"!".to_vec();
    lower.extend(local.to_ascii_lowercase().bytes());
    lower.push(0);
    // Exact key first (with its NUL), then ever shorter prefixes without it.
    let mut i = lower.len();
    let mut flagwild = false;
    while i > 0 {
        if !flagwild || i == 1 || wild.contains(&lower[i - 1]) {
            if let Some(data) = get(&lower[..i])? {
                let tail = if flagwild { &local[i - 1..] } else { "" };
                return parse_data(&data, tail).map(Some);
            }
        }
        i -= 1;
        flagwild = true;
    }
    Ok(None)
}

/// Turn cdb data (six NUL-separated fields) into a Delivery, appending the
/// unmatched rest of the local part to ext for wildcard matches.
fn parse_data(data: &[u8], tail: &str) -> Result<Delivery, Error> {
    let parts: Vec<String> = data
        .split(|&b| b == 0)
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    if parts.len() < 6 {
        return Err(Error::temp("Internal qmail-lspawn bug."));
    }
    let num = |s: &str| common::getopt::scan_ulong(std::ffi::OsStr::new(s)).0 as u32;
    Ok(Delivery {
        user: parts[0].clone(),
        uid: num(&parts[1]),
        gid: num(&parts[2]),
        homedir: PathBuf::from(&parts[3]),
        dash: parts[4].clone(),
        ext: format!("{}{}", parts[5], tail),
    })
}

/// What qmail-lspawn does for a local part: users/cdb under QMAILHOME, then
/// the qmail-getpw rules. Ok(None) means neither a user nor the alias user
/// exists (qmail-lspawn reports "Unable to find alias user!" and defers);
/// errors carry qmail-lspawn's texts and are temporary.
pub fn lookup(local: &str) -> Result<Option<Delivery>, Error> {
    let cdb = crate::home::home().join("users/cdb");
    if let Some(d) = lookup_cdb(&cdb, local)? {
        return Ok(Some(d));
    }
    match getpw::getpw(local) {
        Ok(found) => Ok(found),
        Err(getpw::GetpwError::Nfs) => Err(Error::temp("NFS failure in qmail-local.")),
        Err(getpw::GetpwError::Sys) => Err(Error::temp("Temporary failure in qmail-lspawn.")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assign_lines_parse_like_qmail_newu() {
        let t = b"=joe:joe:1000:100:/home/joe:::\n+joe-:joe:1000:100:/home/joe:-:x:\n.\n";
        let v = parse_assign(t).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].key(), b"!joe\0");
        assert_eq!(v[0].data(), b"joe\x001000\x00100\x00/home/joe\x00\x00");
        assert!(v[1].wild);
        assert_eq!(v[1].key(), b"!joe-");
        assert_eq!(wildchars(&v), b"-");
        assert_eq!(parse_assign(b"=a:b:c\n.\n"), Err(AssignError::Format));
        assert_eq!(parse_assign(b"=a:u:1:2:/h:::\n"), Err(AssignError::Format));
        assert_eq!(
            parse_assign(b":x:u:1:2:/h:::\n.\n"),
            Err(AssignError::Format)
        );
    }

    #[test]
    fn cdb_lookup_exact_then_wildcard() {
        let dir = std::env::temp_dir().join(format!("qloc-users-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cdb");
        let t = b"=Joe:joe:1000:100:/home/joe:::\n+joe-:joe:1000:100:/home/joe:-:ext-:\n+:alias:7:8:/var/qmail/alias:-::\n.\n";
        let v = parse_assign(t).unwrap();
        write_cdb(std::fs::File::create(&path).unwrap(), &v).unwrap();
        let d = lookup_cdb(&path, "JOE").unwrap().unwrap();
        assert_eq!((d.user.as_str(), d.uid, d.gid), ("joe", 1000, 100));
        assert_eq!((d.dash.as_str(), d.ext.as_str()), ("", ""));
        let d = lookup_cdb(&path, "joe-Foo-bar").unwrap().unwrap();
        assert_eq!((d.dash.as_str(), d.ext.as_str()), ("-", "ext-Foo-bar"));
        let d = lookup_cdb(&path, "bob").unwrap().unwrap();
        assert_eq!((d.user.as_str(), d.ext.as_str()), ("alias", "bob"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

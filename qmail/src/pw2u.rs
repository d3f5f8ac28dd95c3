//! qmail-pw2u: turn a passwd-format listing on stdin into users/assign lines
//! on stdout, honouring users/include, users/exclude, users/mailnames,
//! users/subusers and users/append under QMAILHOME (qmail-pw2u(8)).

use crate::getpw::ALIAS_USER;
use common::Error;
use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{Read, Write};

/// What to do about home directories (-o, -h, -H).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HomeStrategy {
    /// Stop if a home cannot be checked; ignore accounts not owning theirs.
    Ignore,
    /// Stop if a home is missing; skip accounts not owning theirs.
    Stop,
    /// Skip accounts whose home is missing or not owned by them (default).
    Skip,
}

/// qmail-pw2u's options.
#[derive(Debug, Clone)]
pub struct Options {
    pub dashcolon: &'static str,
    pub home: HomeStrategy,
    pub no_upper: bool,
    pub brk: Option<u8>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            dashcolon: "-:",
            home: HomeStrategy::Skip,
            no_upper: true,
            brk: Some(crate::getpw::BREAK),
        }
    }
}

/// The control lists qmail-pw2u reads from QMAILHOME/users.
#[derive(Debug, Clone, Default)]
pub struct Lists {
    pub include: Option<Vec<String>>,
    pub exclude: Option<Vec<String>>,
    /// user -> mail names (users/mailnames lines `user:name1:name2`).
    pub mailnames: Option<HashMap<String, String>>,
    pub subusers: Option<Vec<u8>>,
    pub append: Option<Vec<u8>>,
}

fn fatal(msg: impl Into<String>) -> Error {
    Error::temp(msg)
}

/// An account from one passwd line: (user, uid text, gid text, home).
fn fields(line: &[u8]) -> Option<(String, String, String, String)> {
    if line.contains(&0) {
        return None;
    }
    let parts: Vec<&[u8]> = line.split(|&b| b == b':').collect();
    // user:pw:uid:gid:gecos:home:shell -- the home needs its closing colon.
    if parts.len() < 7 {
        return None;
    }
    let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    Some((s(parts[0]), s(parts[2]), s(parts[3]), s(parts[5])))
}

/// The users/assign lines for one passwd line (empty when skipped), and the
/// `user:uid:gid:home:` part recorded for subusers.
pub fn account_lines(
    line: &[u8],
    opts: &Options,
    lists: &Lists,
) -> Result<Option<(String, String, String)>, Error> {
    let Some((user, uidstr, gidstr, home)) = fields(line) else {
        return Ok(None);
    };
    let uid = common::getopt::scan_ulong(std::ffi::OsStr::new(&uidstr)).0;
    if uid == 0 || (opts.no_upper && user.bytes().any(|b| b.is_ascii_uppercase())) {
        return Ok(None);
    }
    if lists.include.as_ref().is_some_and(|l| !l.contains(&user))
        || lists.exclude.as_ref().is_some_and(|l| l.contains(&user))
    {
        return Ok(None);
    }
    if opts.home != HomeStrategy::Ignore && !home_ok(&home, uid, opts.home)? {
        return Ok(None);
    }
    let uugh = format!(":{user}:{uidstr}:{gidstr}:{home}:");
    let mut out = String::new();
    if user == ALIAS_USER {
        out.push_str(&format!("+{uugh}{}:\n", opts.dashcolon));
    }
    let names = lists
        .mailnames
        .as_ref()
        .and_then(|m| m.get(&user).cloned())
        .unwrap_or_else(|| user.clone());
    for name in names.split(':').filter(|n| !n.is_empty()) {
        out.push_str(&format!("={name}{uugh}::\n"));
        if let Some(b) = opts.brk {
            out.push_str(&format!("+{name}{}{uugh}{}:\n", b as char, opts.dashcolon));
        }
    }
    Ok(Some((user, uugh, out)))
}

fn home_ok(home: &str, uid: u64, strategy: HomeStrategy) -> Result<bool, Error> {
    match std::fs::metadata(home) {
        Ok(st) => Ok(u64::from(std::os::unix::fs::MetadataExt::uid(&st)) == uid),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && strategy == HomeStrategy::Skip => {
            Ok(false)
        }
        Err(_) => Err(fatal(format!("unable to stat {home}"))),
    }
}

/// The lines for one users/subusers line `sub:user:pre:`.
fn subuser_lines(
    line: &[u8],
    users: &HashMap<String, String>,
    opts: &Options,
) -> Result<String, Error> {
    let parts: Vec<&[u8]> = line.split(|&b| b == b':').collect();
    if parts.len() < 2 {
        return Ok(String::new());
    }
    let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let (sub, user) = (s(parts[0]), s(parts[1]));
    let Some(u) = users.get(&user) else {
        return Err(fatal(format!("unable to find {user} user for subuser")));
    };
    if parts.len() < 4 {
        return Ok(String::new());
    }
    let pre = s(parts[2]);
    let mut out = format!("={sub}{u}{}{pre}:\n", opts.dashcolon);
    if let Some(b) = opts.brk {
        out.push_str(&format!(
            "+{sub}{}{u}{}{pre}-:\n",
            b as char, opts.dashcolon
        ));
    }
    Ok(out)
}

/// Convert `passwd` into users/assign text.
pub fn convert(passwd: &[u8], opts: &Options, lists: &Lists) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    let mut users = HashMap::new();
    let mut alias = false;
    for line in lines(passwd) {
        if let Some((user, uugh, text)) = account_lines(line, opts, lists)? {
            alias |= user == ALIAS_USER;
            users.insert(user, uugh);
            out.extend(text.bytes());
        }
    }
    if !alias {
        return Err(fatal(format!("unable to find {ALIAS_USER} user")));
    }
    if let Some(subs) = &lists.subusers {
        for line in lines(subs) {
            out.extend(subuser_lines(line, &users, opts)?.bytes());
        }
    }
    if let Some(app) = &lists.append {
        out.extend(app);
    }
    out.extend(b".\n");
    Ok(out)
}

/// Lines without their newline; a final unterminated line counts, an empty
/// tail does not.
fn lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    body.split(|&b| b == b'\n')
        .filter(move |_| !text.is_empty())
}

fn read_optional(rel: &str) -> Result<Option<Vec<u8>>, Error> {
    match std::fs::read(rel) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(_) => Err(fatal("unable to read controls")),
    }
}

/// control_readfile's rules: non-empty lines not starting with '#', trailing
/// whitespace removed.
fn control_list(rel: &str) -> Result<Option<Vec<String>>, Error> {
    Ok(read_optional(rel)?.map(|b| {
        lines(&b)
            .map(|l| String::from_utf8_lossy(l).trim_end().to_string())
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    }))
}

/// Read the lists from the current directory (QMAILHOME).
pub fn load_lists() -> Result<Lists, Error> {
    let mailnames = control_list("users/mailnames")?.map(|v| {
        v.into_iter()
            .map(|l| match l.split_once(':') {
                Some((u, n)) => (u.to_string(), n.to_string()),
                None => (l.clone(), String::new()),
            })
            .collect()
    });
    Ok(Lists {
        include: control_list("users/include")?,
        exclude: control_list("users/exclude")?,
        mailnames,
        subusers: read_optional("users/subusers")?,
        append: read_optional("users/append")?,
    })
}

fn parse_options(args: &[OsString]) -> Result<Options, Error> {
    let p = common::getopt::getopt("qmail-pw2u", args, "/ohHuUc:C").ok_or(Error::silent(100))?;
    let mut o = Options::default();
    for opt in &p.opts {
        match opt.flag {
            b'/' => o.dashcolon = "-/:",
            b'o' => o.home = HomeStrategy::Skip,
            b'h' => o.home = HomeStrategy::Stop,
            b'H' => o.home = HomeStrategy::Ignore,
            b'u' => o.no_upper = false,
            b'U' => o.no_upper = true,
            b'c' => o.brk = opt.arg_str().bytes().next(),
            _ => o.brk = None,
        }
    }
    Ok(o)
}

/// Run qmail-pw2u with `args` (without argv[0]).
pub fn run(args: &[OsString]) -> Result<(), Error> {
    let opts = parse_options(args)?;
    std::env::set_current_dir(crate::home::home()).map_err(|_| fatal("unable to chdir"))?;
    let lists = load_lists()?;
    let mut input = Vec::new();
    std::io::stdin()
        .read_to_end(&mut input)
        .map_err(|_| fatal("unable to read input"))?;
    let out = convert(&input, &opts, &lists)?;
    let mut so = std::io::stdout().lock();
    so.write_all(&out)
        .and_then(|_| so.flush())
        .map_err(|_| fatal("unable to write output"))
}

//! qmail-inject: prepare a message and queue it. Headers are parsed and
//! rewritten per qmail-inject(8) and qmail-header(5): addresses in sender
//! and recipient fields get the default host, default domain and plus
//! domain; Date, Message-ID, From and `Cc: recipient list not shown: ;`
//! are added when missing (Resent- versions for resent messages); Bcc,
//! Return-Path and Content-Length are removed. Recipients come from the
//! arguments (-a), the header (-h), or both (-H); -n prints instead of
//! queueing; -f sets the envelope sender. The environment (QMAILINJECT,
//! QMAILUSER/MAILUSER/USER/LOGNAME, QMAILHOST/MAILHOST, QMAILNAME/MAILNAME/
//! NAME, QMAILSUSER, QMAILSHOST, QMAILDEFAULTDOMAIN, QMAILDEFAULTHOST,
//! QMAILPLUSDOMAIN, QMAILIDHOST, QMAILMFTFILE) adjusts all of this.

use crate::control;
use crate::queue::client::Qmail;
use crate::quote::{need as quote_need, quote2};
use crate::token822::{self, Kind, Token};
use common::Error;
use std::ffi::OsString;
use std::io::{BufRead, Write};

const LINELEN: usize = 80;

/// The header fields qmail-inject knows (hfield.c's list), lowercase.
const FIELDS: [&str; 28] = [
    "sender",
    "from",
    "reply-to",
    "to",
    "cc",
    "bcc",
    "date",
    "message-id",
    "subject",
    "resent-sender",
    "resent-from",
    "resent-reply-to",
    "resent-to",
    "resent-cc",
    "resent-bcc",
    "resent-date",
    "resent-message-id",
    "return-receipt-to",
    "errors-to",
    "apparently-to",
    "received",
    "return-path",
    "delivered-to",
    "content-length",
    "content-type",
    "content-transfer-encoding",
    "notice-requested-upon-delivery-to",
    "mail-followup-to",
];

/// Which known field `line` is (its name case-insensitively, then optional
/// blanks and a colon).
pub fn field_known(line: &[u8]) -> Option<&'static str> {
    FIELDS.iter().copied().find(|name| {
        let n = name.len();
        if line.len() <= n {
            return false;
        }
        let ok = name
            .bytes()
            .zip(line)
            .all(|(t, &c)| t == c || (t != b'-' && t.is_ascii_lowercase() && t - 32 == c));
        ok && line[n..]
            .iter()
            .find(|&&c| c != b' ' && c != b'\t')
            .is_some_and(|&c| c == b':')
    })
}

/// Whether `line` starts with a valid field name and a colon.
pub fn field_valid(line: &[u8]) -> bool {
    let Some(mut j) = line.iter().position(|&c| c == b':') else {
        return false;
    };
    while j > 0 && (line[j - 1] == b' ' || line[j - 1] == b'\t') {
        j -= 1;
    }
    j > 0 && line[..j].iter().all(|&c| c > 32 && c < 127)
}

fn env(names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| std::env::var(n).ok())
}

/// Where the message goes.
enum Out {
    Pending,
    Queue(Qmail),
    Print(std::io::BufWriter<std::io::Stdout>),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Strategy {
    Args,
    Header,
    Both,
}

pub struct Inject {
    namecomment: bool,
    deletesender: bool,
    deletefrom: bool,
    deletemessid: bool,
    hackrecip: bool,
    hackmess: bool,
    mailhost: Option<String>,
    mailrhost: Option<String>,
    mailuser: String,
    mailruser: String,
    defaultdomain: Vec<Token>,
    defaulthost: Vec<Token>,
    plusdomain: Vec<Token>,
    idhost: String,
    sender: Option<Vec<u8>>,
    seen: Vec<&'static str>,
    savedh: Vec<Vec<u8>>,
    hrlist: Vec<Vec<u8>>,
    tocclist: Vec<Vec<u8>>,
    hrrlist: Vec<Vec<u8>>,
    reciplist: Vec<Vec<u8>>,
    mft: Option<Vec<String>>,
    queue: bool,
    start: i64,
    out: Out,
}

fn perm_parse(line: &[u8]) -> Error {
    Error::perm(format!(
        "unable to parse this line:\n{}",
        String::from_utf8_lossy(line)
    ))
}

/// `prefix` + control value parsed as tokens (".domain", "@host").
fn tokens(prefix: &str, value: &str) -> Result<Vec<Token>, Error> {
    let s = format!("{prefix}{value}");
    token822::parse(s.as_bytes()).ok_or_else(|| perm_parse(s.as_bytes()))
}

/// A control with its environment override.
fn setting(name: &str, var: &str) -> Result<String, Error> {
    let v = control::line_or(name, true, name).map_err(|_| Error::temp("read error"))?;
    Ok(std::env::var(var).unwrap_or(v))
}

impl Inject {
    fn new() -> Result<Inject, Error> {
        let opts = std::env::var("QMAILINJECT").unwrap_or_default();
        let mailhost = env(&["QMAILHOST", "MAILHOST"]);
        let mailuser = env(&["QMAILUSER", "MAILUSER", "USER", "LOGNAME"])
            .unwrap_or_else(|| "anonymous".into());
        let mft = match std::env::var("QMAILMFTFILE") {
            Ok(f) => read_list(&f)?,
            Err(_) => None,
        };
        Ok(Inject {
            namecomment: opts.contains('c'),
            deletesender: opts.contains('s'),
            deletefrom: opts.contains('f'),
            deletemessid: opts.contains('i'),
            hackrecip: opts.contains('r'),
            hackmess: opts.contains('m'),
            mailrhost: env(&["QMAILSHOST"]).or_else(|| mailhost.clone()),
            mailhost,
            mailruser: env(&["QMAILSUSER"]).unwrap_or_else(|| mailuser.clone()),
            mailuser,
            defaultdomain: tokens(".", &setting("defaultdomain", "QMAILDEFAULTDOMAIN")?)?,
            defaulthost: tokens("@", &setting("defaulthost", "QMAILDEFAULTHOST")?)?,
            plusdomain: tokens(".", &setting("plusdomain", "QMAILPLUSDOMAIN")?)?,
            idhost: setting("idhost", "QMAILIDHOST")?,
            sender: None,
            seen: Vec::new(),
            savedh: Vec::new(),
            hrlist: Vec::new(),
            tocclist: Vec::new(),
            hrrlist: Vec::new(),
            reciplist: Vec::new(),
            mft,
            queue: true,
            start: crate::date822::now(),
            out: Out::Pending,
        })
    }

    /// rwgeneric: qmail-inject's rewriting of one address (natural order).
    fn rewrite(&self, a: &mut Vec<Token>) {
        if a.is_empty() {
            return;
        }
        let n = a.len();
        if n >= 2
            && a[n - 1].kind == Kind::Literal
            && a[n - 1].text.is_empty()
            && a[n - 2].kind == Kind::At
        {
            return; // <foo@[]> stays
        }
        if a[0].kind == Kind::At {
            // A source route: drop it up to its colon.
            let colon = a.iter().position(|t| t.kind == Kind::Colon);
            a.drain(..colon.map_or(a.len(), |c| c + 1));
            if a.is_empty() {
                return;
            }
        }
        for k in [Kind::Dot, Kind::At] {
            if a.last().is_some_and(|t| t.kind == k) {
                a.pop();
            }
            if a.is_empty() {
                return;
            }
        }
        if !a.iter().any(|t| t.kind == Kind::At) {
            a.extend(self.defaulthost.iter().cloned());
        }
        let last = a.last_mut().expect("nonempty");
        if last.kind == Kind::Atom && last.text.last() == Some(&b'+') {
            last.text.pop();
            a.extend(self.plusdomain.iter().cloned());
        }
        let at = a
            .iter()
            .rposition(|t| t.kind == Kind::At)
            .map_or(0, |p| p + 1);
        let host = &a[at..];
        if !host
            .iter()
            .any(|t| matches!(t.kind, Kind::Dot | Kind::Literal))
        {
            a.extend(self.defaultdomain.iter().cloned());
        }
    }

    fn setreturn(&mut self, a: &[Token]) {
        if self.sender.is_none() {
            let mut s = token822::unquote(a);
            if self.hackrecip {
                s.extend_from_slice(b"-@[]");
            }
            self.sender = Some(s);
        }
    }

    /// Rewrite the addresses of one header field; None if it does not parse.
    fn rewrite_field(&mut self, h: &[u8], kind: &str) -> Option<Vec<u8>> {
        let ta = token822::parse(h)?;
        let mut collected = Vec::new();
        let out = token822::addrlist(&ta, &mut |a: &mut Vec<Token>| {
            self.rewrite(a);
            collected.push(a.clone());
        })?;
        for a in collected {
            let plain = token822::unquote(&a);
            match kind {
                "to" | "cc" => {
                    self.hrlist.push(plain.clone());
                    self.tocclist.push(plain);
                }
                "bcc" | "apparently-to" => self.hrlist.push(plain),
                "resent-to" | "resent-cc" | "resent-bcc" => self.hrrlist.push(plain),
                "return-path" => self.setreturn(&a),
                _ => {}
            }
        }
        Some(token822::unparse(&out, LINELEN))
    }

    fn header_field(&mut self, mut h: Vec<u8>) -> Result<(), Error> {
        let kind = field_known(&h);
        match kind {
            Some("from") if self.deletefrom => return Ok(()),
            Some("message-id") if self.deletemessid => return Ok(()),
            Some("return-path") if self.deletesender => return Ok(()),
            Some(k) => self.seen.push(k),
            None if !field_valid(&h) => {
                return Err(Error::perm(format!(
                    "invalid header field: {}",
                    String::from_utf8_lossy(&h)
                )))
            }
            None => {}
        }
        let k = kind.unwrap_or("");
        let mayfail = matches!(
            k,
            "to" | "cc" | "bcc" | "apparently-to" | "resent-to" | "resent-cc" | "resent-bcc"
        );
        let rewritten = matches!(
            k,
            "return-path"
                | "sender"
                | "from"
                | "reply-to"
                | "return-receipt-to"
                | "errors-to"
                | "resent-sender"
                | "resent-from"
                | "resent-reply-to"
        );
        if mayfail || rewritten {
            match self.rewrite_field(&h, k) {
                Some(new) => h = new,
                None if mayfail => {}
                None => return Err(perm_parse(&h)),
            }
        }
        if !matches!(k, "bcc" | "resent-bcc" | "return-path" | "content-length") {
            self.savedh.push(h);
        }
        Ok(())
    }

    fn seen(&self, k: &str) -> bool {
        self.seen.contains(&k)
    }

    fn put(&mut self, b: &[u8]) {
        match &mut self.out {
            Out::Queue(q) => q.put(b),
            Out::Print(w) => {
                let _ = w.write_all(b);
            }
            Out::Pending => {}
        }
    }

    /// A From: field for the invoking user, rewritten like any sender.
    fn default_from(&mut self) -> Result<Vec<u8>, Error> {
        let fullname = env(&["QMAILNAME", "MAILNAME", "NAME"]);
        let mut t = vec![
            Token::new(Kind::Atom, b"From"),
            Token::new(Kind::Colon, b""),
        ];
        let named = fullname.is_some() && !self.namecomment;
        if let (Some(n), true) = (&fullname, named) {
            t.push(Token::new(Kind::Quote, n.as_bytes()));
            t.push(Token::new(Kind::Left, b""));
        }
        let ukind = if quote_need(&self.mailuser) {
            Kind::Quote
        } else {
            Kind::Atom
        };
        t.push(Token::new(ukind, self.mailuser.as_bytes()));
        if let Some(h) = &self.mailhost {
            t.push(Token::new(Kind::At, b""));
            t.push(Token::new(Kind::Atom, h.as_bytes()));
        }
        if named {
            t.push(Token::new(Kind::Right, b""));
        }
        if let (Some(n), true) = (&fullname, self.namecomment) {
            t.push(Token::new(Kind::Comment, n.as_bytes()));
        }
        let line = token822::unparse(&t, LINELEN);
        self.rewrite_field(&line, "from")
            .ok_or_else(|| perm_parse(&line))
    }

    /// The envelope sender when none was given: the user, VERP-hacked.
    fn default_return_path(&mut self) -> Result<(), Error> {
        let mut user = self.mailruser.clone();
        if self.hackmess {
            user.push_str(&format!("-{}.{}", self.start, std::process::id()));
        }
        if self.hackrecip {
            user.push('-');
        }
        let mut t = vec![
            Token::new(Kind::Atom, b"Return-Path"),
            Token::new(Kind::Colon, b""),
            Token::new(Kind::Quote, user.as_bytes()),
        ];
        if let Some(h) = &self.mailrhost {
            t.push(Token::new(Kind::At, b""));
            t.push(Token::new(Kind::Atom, h.as_bytes()));
        }
        let line = token822::unparse(&t, LINELEN);
        self.rewrite_field(&line, "return-path")
            .map(|_| ())
            .ok_or_else(|| perm_parse(&line))
    }

    fn finish_header(&mut self) -> Result<(), Error> {
        let resent = [
            "resent-sender",
            "resent-from",
            "resent-reply-to",
            "resent-to",
            "resent-cc",
            "resent-bcc",
            "resent-date",
            "resent-message-id",
        ]
        .iter()
        .any(|k| self.seen(k));
        if self.sender.is_none() {
            self.default_return_path()?;
        }
        if self.queue {
            let q = Qmail::open().map_err(|_| Error::temp("unable to run qmail-queue"))?;
            self.out = Out::Queue(q);
        } else {
            self.out = Out::Print(std::io::BufWriter::new(std::io::stdout()));
            let s =
                String::from_utf8_lossy(self.sender.as_deref().unwrap_or_default()).into_owned();
            self.put(format!("Return-Path: <{}>\n", quote2(&s)).as_bytes());
        }
        let p = if resent { "Resent-" } else { "" };
        let seen = |k: &str| self.seen(&format!("{}{k}", p.to_ascii_lowercase()));
        let (date, msgid, from) = (seen("date"), seen("message-id"), seen("from"));
        let recips = seen("to") || seen("cc");
        if !date {
            let d = format!("{p}Date: {}\n", crate::date822::fmt(self.start));
            self.put(d.as_bytes());
        }
        if !msgid {
            let m = format!("{p}{}", message_id(self.start, &self.idhost));
            self.put(m.as_bytes());
        }
        if !from {
            let f = self.default_from()?;
            self.put(p.as_bytes());
            self.put(&f);
        }
        if !recips {
            self.put(format!("{p}Cc: recipient list not shown: ;\n").as_bytes());
        }
        if !resent {
            self.finish_mft();
        }
        for h in std::mem::take(&mut self.savedh) {
            self.put(&h);
        }
        if resent {
            self.hrlist = std::mem::take(&mut self.hrrlist);
        }
        Ok(())
    }

    /// Mail-Followup-To when QMAILMFTFILE lists one of the To/Cc addresses.
    fn finish_mft(&mut self) {
        let Some(lists) = &self.mft else { return };
        if self.seen("mail-followup-to") {
            return;
        }
        let hit = self.tocclist.iter().any(|a| {
            let a = String::from_utf8_lossy(a);
            lists.iter().any(|l| l.eq_ignore_ascii_case(&a))
        });
        if !hit {
            return;
        }
        let addrs: Vec<String> = self
            .tocclist
            .iter()
            .rev()
            .map(|a| quote2(&String::from_utf8_lossy(a)))
            .collect();
        let line = format!("Mail-Followup-To: {}\n", addrs.join(",\n  "));
        self.put(line.as_bytes());
    }

    /// An argument recipient, rewritten.
    fn add_recip(&mut self, r: &str) -> Result<(), Error> {
        let q = quote2(r);
        let mut t = token822::parse(q.as_bytes())
            .ok_or_else(|| Error::perm(format!("unable to parse address: {r}")))?;
        self.rewrite(&mut t);
        self.reciplist.push(token822::unquote(&t));
        Ok(())
    }

    /// Read the message: header fields (with continuation lines), then body.
    fn read_message(&mut self, input: &mut impl BufRead) -> Result<(), Error> {
        let mut field: Option<Vec<u8>> = None;
        loop {
            let Some(line) = next_line(input)? else {
                if let Some(f) = field.take() {
                    self.header_field(f)?;
                }
                return self.finish_header();
            };
            if let Some(f) = field.as_mut() {
                if line[0] == b' ' || line[0] == b'\t' {
                    f.extend_from_slice(&line);
                    continue;
                }
                let f = field.take().expect("field");
                self.header_field(f)?;
            }
            if line == b"\n" {
                self.finish_header()?;
                self.put(&line);
                break;
            }
            if line.starts_with(b"From ") {
                let mut f = b"MBOX-Line: ".to_vec();
                f.extend_from_slice(&line);
                field = Some(f);
            } else if field_valid(&line) {
                field = Some(line);
            } else {
                self.finish_header()?;
                self.put(b"\n");
                self.put(&line);
                break;
            }
        }
        while let Some(line) = next_line(input)? {
            self.put(&line);
        }
        Ok(())
    }

    fn finish(mut self, flagrh: bool) -> Result<(), Error> {
        match std::mem::replace(&mut self.out, Out::Pending) {
            Out::Print(mut w) => {
                let _ = w.flush();
                Ok(())
            }
            Out::Pending => Ok(()),
            Out::Queue(mut q) => {
                let sender = String::from_utf8_lossy(self.sender.as_deref().unwrap_or_default())
                    .into_owned();
                q.from(&sender);
                for r in &self.reciplist {
                    q.to(&String::from_utf8_lossy(r));
                }
                if flagrh {
                    for r in &self.hrlist {
                        q.to(&String::from_utf8_lossy(r));
                    }
                }
                q.close().map_err(|e| {
                    let code = if e.starts_with('D') { 100 } else { 111 };
                    Error::code(code, e[1..].to_string())
                })
            }
        }
    }
}

/// One line including its "\n" (added to a last line without one).
fn next_line(input: &mut impl BufRead) -> Result<Option<Vec<u8>>, Error> {
    let mut line = Vec::new();
    match input.read_until(b'\n', &mut line) {
        Err(_) => Err(Error::temp("read error")),
        Ok(0) => Ok(None),
        Ok(_) => {
            if line.last() != Some(&b'\n') {
                line.push(b'\n');
            }
            Ok(Some(line))
        }
    }
}

fn read_list(f: &str) -> Result<Option<Vec<String>>, Error> {
    match std::fs::read(f) {
        Ok(b) => Ok(Some(
            String::from_utf8_lossy(&b)
                .lines()
                .map(|l| l.trim_end().to_string())
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .collect(),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(_) => Err(Error::temp("read error")),
    }
}

/// `Message-ID: <YYYYMMDDhhmmss.PID.qmail@idhost>\n`
pub fn message_id(when: i64, idhost: &str) -> String {
    let d = crate::date822::fmt(when);
    // d is "D Mon YYYY HH:MM:SS -0000"; rebuild the digits from its parts.
    let parts: Vec<&str> = d.split(' ').collect();
    let mon = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == parts[1])
    .unwrap_or(0)
        + 1;
    let day: u32 = parts[0].parse().unwrap_or(1);
    format!(
        "Message-ID: <{}{mon:02}{day:02}{}.{}.qmail@{idhost}>\n",
        parts[2],
        parts[3].replace(':', ""),
        std::process::id()
    )
}

pub fn run(args: &[OsString]) -> Result<(), Error> {
    let mut inj = Inject::new()?;
    let p = common::getopt::getopt("qmail-inject", args, "aAhHnNf:")
        .ok_or_else(|| Error::silent(100))?;
    let mut strategy = None;
    for o in &p.opts {
        match o.flag {
            b'a' => strategy = Some(Strategy::Args),
            b'A' => strategy = None,
            b'h' => strategy = Some(Strategy::Header),
            b'H' => strategy = Some(Strategy::Both),
            b'n' => inj.queue = false,
            b'N' => inj.queue = true,
            b'f' => {
                let q = quote2(&o.arg_str());
                let mut t =
                    token822::parse(q.as_bytes()).ok_or_else(|| perm_parse(q.as_bytes()))?;
                inj.rewrite(&mut t);
                inj.sender = Some(token822::unquote(&t));
            }
            _ => {}
        }
    }
    let strategy = strategy.unwrap_or(if p.operands.is_empty() {
        Strategy::Header
    } else {
        Strategy::Args
    });
    if strategy != Strategy::Header {
        for r in &p.operands {
            inj.add_recip(&r.to_string_lossy())?;
        }
    }
    let stdin = std::io::stdin();
    inj.read_message(&mut stdin.lock())?;
    inj.finish(strategy != Strategy::Args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_fields_match_case_insensitively() {
        assert_eq!(field_known(b"TO: x\n"), Some("to"));
        assert_eq!(field_known(b"Resent-Cc : x\n"), Some("resent-cc"));
        assert_eq!(field_known(b"Tox: x\n"), None);
        assert!(field_valid(b"X-Foo: y\n"));
        assert!(!field_valid(b"no colon here\n"));
        assert!(!field_valid(b": empty\n"));
    }

    #[test]
    fn message_id_format() {
        let m = message_id(811_140_414, "x.org");
        assert!(m.starts_with("Message-ID: <19950915044654."), "{m}");
        assert!(m.ends_with(".qmail@x.org>\n"));
    }
}

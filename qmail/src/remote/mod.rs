//! qmail-remote: send one message (stdin) from one sender to recipients at
//! one host over SMTP, and report to qmail-rspawn on stdout in qmail's
//! protocol: per recipient `r` (accepted), `h` (permanently refused) or `s`
//! (temporarily refused) records, then one final record starting with `K`
//! (delivered), `Z` (try later) or `D` (give up), each record ended by a NUL.
//! The exit code is always 0: the result is what it prints.

mod cname;
mod route;
mod smtp;
mod starttls;

use common::Error;
use std::ffi::OsString;
use std::io::Write;
use std::time::Duration;

/// qmail-remote's output so far.
#[derive(Debug, Default)]
pub struct Report {
    pub out: Vec<u8>,
}

impl Report {
    /// Add text to the current record.
    pub fn text(&mut self, s: &str) {
        self.out.extend(s.as_bytes());
    }

    /// End the current record.
    pub fn end(&mut self) {
        self.out.push(0);
    }

    /// A whole final record.
    pub fn last(&mut self, s: &str) {
        self.text(s);
        self.end();
    }
}

/// The control files qmail-remote reads.
#[derive(Debug, Clone)]
pub struct Controls {
    pub helohost: String,
    pub timeoutconnect: Duration,
    pub timeoutremote: Duration,
    pub routes: Vec<String>,
}

fn secs(n: i64) -> Duration {
    Duration::from_secs(u64::try_from(n).unwrap_or(0))
}

impl Controls {
    /// Read them; None means "Unable to read control files".
    pub fn load() -> Option<Controls> {
        use crate::control;
        let timeoutremote = control::read_int("timeoutremote", 1200).ok()?;
        let timeoutconnect = control::read_int("timeoutconnect", 60).ok()?;
        let helohost = match control::read_line("helohost").ok()? {
            Some(h) => h,
            None => control::me().ok()??,
        };
        let routes = control::read_lines("smtproutes").ok()?.unwrap_or_default();
        Some(Controls {
            helohost,
            timeoutconnect: secs(timeoutconnect),
            timeoutremote: secs(timeoutremote),
            routes,
        })
    }
}

/// An address as it goes into MAIL FROM / RCPT TO: the box quoted when
/// RFC 821 needs it, the domain as given.
pub fn mangle(addr: &str) -> String {
    if !addr.contains('@') {
        return addr.to_string();
    }
    let q = crate::local::env::quote_addr(addr.as_bytes());
    String::from_utf8_lossy(&q).into_owned()
}

/// The whole job, leaving the final record in `rep`.
fn deliver(args: &[OsString], rep: &mut Report) {
    if args.len() < 3 {
        return rep.last("DI (qmail-remote) was invoked improperly. (#5.3.5)\n");
    }
    if std::env::set_current_dir(crate::home::home()).is_err() {
        return rep.last("ZUnable to switch to home directory. (#4.3.0)\n");
    }
    let Some(ctl) = Controls::load() else {
        return rep.last("ZUnable to read control files. (#4.3.0)\n");
    };
    let host = args[0].to_string_lossy().into_owned();
    let sender = mangle(&args[1].to_string_lossy());
    // Through smtproutes the relay gets the addresses as they are.
    let by_mx = route::relay(&host, &ctl.routes).is_none();
    let resolver = dnscache::stub::Resolver::from_env();
    let mut recips = Vec::new();
    let mut all_aliases = true;
    for r in &args[2..] {
        match cname::recipient(&resolver, &r.to_string_lossy(), by_mx) {
            Ok((addr, alias)) => {
                recips.push(addr);
                all_aliases &= alias;
            }
            Err(()) => return rep.last(cname::TEMP),
        }
    }
    let targets = match route::targets(&host, &ctl.routes, all_aliases) {
        Ok(t) => t,
        Err(text) => return rep.last(&text),
    };
    for t in targets {
        if crate::tcpto::skip(t.addr.ip()) {
            continue;
        }
        match smtp::Conn::connect(&t, &ctl) {
            Ok(conn) => {
                crate::tcpto::record(t.addr.ip(), false);
                return conn.session(&ctl.helohost, &sender, &recips, rep);
            }
            Err(e) => crate::tcpto::record(t.addr.ip(), e.kind() == std::io::ErrorKind::TimedOut),
        }
    }
    rep.last("ZSorry, I wasn't able to establish an SMTP connection. (#4.4.1)\n")
}

/// Run qmail-remote with `args` (host sender recip...).
pub fn run(args: &[OsString]) -> Result<(), Error> {
    let mut rep = Report::default();
    deliver(args, &mut rep);
    let mut so = std::io::stdout().lock();
    // Nobody to tell if qmail-rspawn went away.
    let _ = so.write_all(&rep.out).and_then(|_| so.flush());
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn addresses_are_quoted_only_when_needed() {
        assert_eq!(super::mangle("joe@example.com"), "joe@example.com");
        assert_eq!(super::mangle("a b@example.com"), "\"a b\"@example.com");
        assert_eq!(super::mangle(""), "");
        assert_eq!(super::mangle("postmaster"), "postmaster");
    }
}

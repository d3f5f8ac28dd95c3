//! qmail-showctl: describe the build settings and every control file, in
//! the original's words, with "(Default.)" for missing files and a note
//! for files it does not know.

use crate::control;
use std::fmt::Write as _;

/// Bytes outside printable ASCII shown as '?'.
fn safe(s: &str) -> String {
    s.bytes()
        .map(|c| {
            if (32..=126).contains(&c) {
                c as char
            } else {
                '?'
            }
        })
        .collect()
}

struct Show {
    out: String,
    me: Option<String>,
}

impl Show {
    fn int(&mut self, f: &str, def: &str, pre: &str, post: &str) {
        let _ = write!(self.out, "\n{f}: ");
        match control::read_line(f) {
            Err(_) => self.out.push_str("Oops! Trouble reading this file.\n"),
            Ok(line) => {
                let n = line.and_then(|l| {
                    let d: String = l.chars().take_while(char::is_ascii_digit).collect();
                    d.parse::<u64>().ok()
                });
                match n {
                    None => {
                        let _ = writeln!(self.out, "(Default.) {pre}{def}{post}.");
                    }
                    Some(n) => {
                        let _ = writeln!(self.out, "{pre}{}{post}.", n.min(i32::MAX as u64));
                    }
                }
            }
        }
    }

    fn str(&mut self, f: &str, flagme: bool, def: &str, pre: &str) {
        let _ = write!(self.out, "\n{f}: ");
        match control::read_line(f) {
            Err(_) => self.out.push_str("Oops! Trouble reading this file.\n"),
            Ok(Some(l)) => {
                let _ = writeln!(self.out, "{pre}{}.", safe(&l));
            }
            Ok(None) => {
                let v = match (&self.me, flagme) {
                    (Some(m), true) => m.clone(),
                    _ => def.to_string(),
                };
                let _ = writeln!(self.out, "(Default.) {pre}{}.", safe(&v));
            }
        }
    }

    /// A list; Some(true) when the file exists.
    fn lst(&mut self, f: &str, def: &str, pre: &str, post: &str) -> Option<bool> {
        let _ = write!(self.out, "\n{f}: ");
        match control::read_lines(f) {
            Err(_) => {
                self.out.push_str("Oops! Trouble reading this file.\n");
                None
            }
            Ok(None) => {
                let _ = writeln!(self.out, "(Default.) {def}");
                Some(false)
            }
            Ok(Some(lines)) => {
                self.out.push('\n');
                for l in lines {
                    let _ = writeln!(self.out, "{pre}{}{post}", safe(&l));
                }
                Some(true)
            }
        }
    }
}

const KNOWN: [&str; 31] = [
    "bouncefrom",
    "bouncehost",
    "badmailfrom",
    "concurrencylocal",
    "concurrencyremote",
    "databytes",
    "defaultdomain",
    "defaulthost",
    "doublebouncehost",
    "doublebounceto",
    "envnoathost",
    "helohost",
    "idhost",
    "localiphost",
    "locals",
    "me",
    "morercpthosts",
    "morercpthosts.cdb",
    "percenthack",
    "plusdomain",
    "qmqpservers",
    "queuelifetime",
    "rcpthosts",
    "smtpgreeting",
    "smtproutes",
    "timeoutconnect",
    "timeoutremote",
    "timeoutsmtpd",
    "virtualdomains",
    ".",
    "..",
];

fn header() -> String {
    let uid = nix::unistd::getuid().as_raw();
    let gid = nix::unistd::getgid().as_raw();
    let u = |n: &str| crate::ids::user(n).unwrap_or(uid).to_string();
    let g = |n: &str| crate::ids::group(n).unwrap_or(gid).to_string();
    let users: Vec<String> = [
        "alias", "qmaild", "qmaill", "root", "qmailp", "qmailq", "qmailr", "qmails",
    ]
    .iter()
    .map(|n| u(n))
    .collect();
    format!(
        "qmail home directory: {}.\nuser-ext delimiter: -.\npaternalism (in decimal): 2.\n\
         silent concurrency limit: {}.\nsubdirectory split: {}.\nuser ids: {}.\ngroup ids: {}, {}.\n",
        crate::home::home().display(),
        crate::spawn::AUTO_SPAWN,
        crate::queue::SPLIT,
        users.join(", "),
        g("nofiles"),
        g("qmail")
    )
}

/// The whole report and the exit code.
pub fn report() -> (String, i32) {
    let mut out = header();
    let dir = crate::home::home().join("control");
    let names = match std::fs::read_dir(&dir) {
        Ok(rd) => {
            let mut v: Vec<String> = rd
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        }
        Err(_) => {
            out.push_str("Oops! Unable to chdir to control.\n");
            return (out, 111);
        }
    };
    let me = match control::read_line("me") {
        Ok(m) => m,
        Err(_) => {
            out.push_str("Oops! Trouble reading control/me.");
            return (out, 111);
        }
    };
    let mut s = Show { out, me };
    s.lst(
        "badmailfrom",
        "Any MAIL FROM is allowed.",
        "",
        " not accepted in MAIL FROM.",
    );
    s.str("bouncefrom", false, "MAILER-DAEMON", "Bounce user name is ");
    s.str("bouncehost", true, "bouncehost", "Bounce host name is ");
    s.int("concurrencylocal", "10", "Local concurrency is ", "");
    s.int("concurrencyremote", "20", "Remote concurrency is ", "");
    s.int("databytes", "0", "SMTP DATA limit is ", " bytes");
    s.str(
        "defaultdomain",
        true,
        "defaultdomain",
        "Default domain name is ",
    );
    s.str("defaulthost", true, "defaulthost", "Default host name is ");
    s.str(
        "doublebouncehost",
        true,
        "doublebouncehost",
        "2B recipient host: ",
    );
    s.str("doublebounceto", false, "postmaster", "2B recipient user: ");
    s.str(
        "envnoathost",
        true,
        "envnoathost",
        "Presumed domain name is ",
    );
    s.str(
        "helohost",
        true,
        "helohost",
        "SMTP client HELO host name is ",
    );
    s.str("idhost", true, "idhost", "Message-ID host name is ");
    s.str(
        "localiphost",
        true,
        "localiphost",
        "Local IP address becomes ",
    );
    s.lst(
        "locals",
        "Messages for me are delivered locally.",
        "Messages for ",
        " are delivered locally.",
    );
    s.str("me", false, "undefined! Uh-oh", "My name is ");
    s.lst(
        "percenthack",
        "The percent hack is not allowed.",
        "The percent hack is allowed for user%host@",
        ".",
    );
    s.str("plusdomain", true, "plusdomain", "Plus domain name is ");
    s.lst("qmqpservers", "No QMQP servers.", "QMQP server: ", ".");
    s.int(
        "queuelifetime",
        "604800",
        "Message lifetime in the queue is ",
        " seconds",
    );
    let pre = "SMTP clients may send messages to recipients at ";
    if s.lst(
        "rcpthosts",
        "SMTP clients may send messages to any recipient.",
        pre,
        ".",
    ) == Some(true)
    {
        s.lst("morercpthosts", "No effect.", pre, ".");
    } else {
        s.lst(
            "morercpthosts",
            "No rcpthosts; morercpthosts is irrelevant.",
            "No rcpthosts; doesn't matter that morercpthosts has ",
            ".",
        );
    }
    s.out.push_str("\nmorercpthosts.cdb: ");
    s.out.push_str(morercpthosts_cdb(&dir));
    s.str("smtpgreeting", true, "smtpgreeting", "SMTP greeting: 220 ");
    s.lst(
        "smtproutes",
        "No artificial SMTP routes.",
        "SMTP route: ",
        "",
    );
    s.int(
        "timeoutconnect",
        "60",
        "SMTP client connection timeout is ",
        " seconds",
    );
    s.int(
        "timeoutremote",
        "1200",
        "SMTP client data timeout is ",
        " seconds",
    );
    s.int(
        "timeoutsmtpd",
        "1200",
        "SMTP server data timeout is ",
        " seconds",
    );
    s.lst(
        "virtualdomains",
        "No virtual domains.",
        "Virtual domain: ",
        "",
    );
    for n in names.iter().filter(|n| !KNOWN.contains(&n.as_str())) {
        let _ = writeln!(s.out, "\n{n}: I have no idea what this file does.");
    }
    (s.out, 0)
}

fn morercpthosts_cdb(dir: &std::path::Path) -> &'static str {
    let m = std::fs::metadata(dir.join("morercpthosts")).ok();
    let c = std::fs::metadata(dir.join("morercpthosts.cdb")).ok();
    match (m, c) {
        (None, None) => "(Default.) No effect.\n",
        (None, Some(_)) => "Oops! morercpthosts.cdb exists but morercpthosts doesn't.\n",
        (Some(_), None) => "Oops! morercpthosts exists but morercpthosts.cdb doesn't.\n",
        (Some(m), Some(c)) => {
            use std::os::unix::fs::MetadataExt;
            if m.mtime() > c.mtime() {
                "Oops! morercpthosts.cdb is older than morercpthosts.\n"
            } else {
                "Modified recently enough; hopefully up to date.\n"
            }
        }
    }
}

pub fn run() -> Result<(), common::Error> {
    let (text, code) = report();
    use std::io::Write;
    let _ = std::io::stdout().write_all(text.as_bytes());
    if code == 0 {
        Ok(())
    } else {
        Err(common::Error::silent(code))
    }
}

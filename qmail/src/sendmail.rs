//! sendmail: the compatibility wrapper mail programs call. It accepts
//! sendmail's options, ignoring those qmail has no use for, and runs
//! bin/qmail-inject (`-t` reads recipients from the header too, `-f` sets
//! the sender, `-F` the full name), bin/qmail-smtpd for `-bs` (with the
//! environment of a local connection) or bin/qmail-qread for `-bp` and
//! when called as mailq.

use common::Error;
use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::Command;

const USAGE: &str = "sendmail [ -t ] [ -fsender ] [ -Fname ] [ -bp ] [ -bs ] [ arg ... ]";

fn exec(prog: &str, args: &[OsString], what: &str) -> Error {
    let e = common::sig::default_signals(&mut Command::new(prog))
        .args(args)
        .exec();
    let _ = e;
    Error::temp(format!("unable to run {what}"))
}

fn smtpd() -> Error {
    if std::env::var_os("PROTO").is_none() {
        for (k, v) in [
            ("RELAYCLIENT", ""),
            ("DATABYTES", "0"),
            ("PROTO", "TCP"),
            ("TCPLOCALIP", "127.0.0.1"),
            ("TCPLOCALHOST", "localhost"),
            ("TCPREMOTEIP", "127.0.0.1"),
            ("TCPREMOTEHOST", "localhost"),
            ("TCPREMOTEINFO", "sendmail-bs"),
        ] {
            std::env::set_var(k, v);
        }
    }
    exec("bin/qmail-smtpd", &[], "qmail-smtpd")
}

/// QMAILUSER and QMAILHOST from the -f address, as the original does.
fn set_sender_env(s: &str) {
    for k in ["QMAILNAME", "MAILNAME", "NAME", "QMAILHOST", "MAILHOST"] {
        std::env::remove_var(k);
    }
    match s.rfind('@') {
        None => std::env::set_var("QMAILUSER", s),
        Some(a) => {
            std::env::set_var("QMAILHOST", &s[a + 1..]);
            std::env::set_var("QMAILUSER", &s[..a]);
        }
    }
}

pub fn run(argv0: &str, args: &[OsString]) -> Result<(), Error> {
    std::env::set_current_dir(crate::home::home())
        .map_err(|_| Error::temp("unable to switch to qmail home directory"))?;
    // -E and -J (Sony NEWS-OS) take an optional attached argument: drop them.
    let args: Vec<OsString> = args
        .iter()
        .filter(|a| {
            let s = a.to_string_lossy();
            !(s.starts_with("-E") || s.starts_with("-J"))
        })
        .cloned()
        .collect();
    let p = common::getopt::getopt("sendmail", &args, "vimte:f:p:o:B:F:EJxb:")
        .ok_or_else(|| Error::usage(USAGE))?;
    let mut flagh = false;
    let mut sender = None;
    for o in &p.opts {
        match o.flag {
            b't' => flagh = true,
            b'f' => sender = Some(o.arg_str()),
            b'F' => std::env::set_var("MAILNAME", o.arg_str()),
            b'b' => match o.arg_str().bytes().next() {
                Some(b'm') => {}
                Some(b'p') => return Err(exec("bin/qmail-qread", &[], "qmail-qread")),
                Some(b's') => return Err(smtpd()),
                _ => return Err(Error::usage(USAGE)),
            },
            _ => {}
        }
    }
    let name = std::path::Path::new(argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name == "mailq" {
        return Err(exec("bin/qmail-qread", &[], "qmail-qread"));
    }
    if name == "newaliases" {
        return Err(Error::perm("please use fastforward/newaliases instead"));
    }
    let mut qi: Vec<OsString> = vec![if flagh { "-H" } else { "-a" }.into()];
    if let Some(s) = sender {
        qi.push("-f".into());
        qi.push(s.clone().into());
        set_sender_env(&s);
    }
    qi.push("--".into());
    qi.extend(p.operands);
    Err(exec("bin/qmail-inject", &qi, "qmail-inject"))
}

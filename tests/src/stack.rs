//! A private mail stack under our svscan, as an operator would run it:
//! a QMAILHOME laid out by `qmail-install -p`, one user `joe` whose mail goes
//! to ~/Maildir/, and service directories for qmail-send (qmail-start),
//! qmail-smtpd behind tcpserver with a tcprules cdb, and optionally
//! qmail-popup/qmail-pop3d behind tcpserver; every service logs through
//! multilog into its log/main. Without root privileges the services run as
//! the invoking user, as in service-examples/local.

use crate::harness::{bin, path_with_bins, run, wait_until, Guard, TempDir};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// How long a service may take to come up or a message to arrive: generous,
/// the machine is small and shared.
pub const DEADLINE: Duration = Duration::from_secs(90);

/// The POP3 password of `joe` in stacks that run qmail-pop3d.
pub const POP3_PASSWORD: &str = "e2e-secret";

/// What to build.
pub struct Options {
    /// The tcp.smtp rules text fed to our tcprules.
    pub smtp_rules: String,
    /// Whether to run the POP3 service.
    pub pop3: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            smtp_rules: "127.:allow,RELAYCLIENT=\"\"\n".into(),
            pop3: false,
        }
    }
}

/// A running stack; svscan and everything below it die with it.
pub struct MailStack {
    // Declared first so it drops first: the processes die before their
    // directory is removed.
    svscan: Option<Guard>,
    pub dir: TempDir,
    pub smtp_port: u16,
    pub pop3_port: u16,
}

impl MailStack {
    /// Build the stack, start svscan and wait until every service is up.
    pub fn start(opts: &Options) -> MailStack {
        let dir = TempDir::new("stack");
        let mut s = MailStack {
            dir,
            smtp_port: crate::free_port(),
            pop3_port: crate::free_port(),
            svscan: None,
        };
        s.install_qmail();
        s.add_user_joe();
        s.build_rules(&opts.smtp_rules);
        s.add_send_service();
        s.add_smtpd_service();
        if opts.pop3 {
            s.add_pop3_service();
        }
        s.start_svscan();
        s.wait_log("qmail-send", "status: local 0/");
        s.wait_log("qmail-smtpd", "tcpserver: status: 0/");
        if opts.pop3 {
            s.wait_log("qmail-pop3d", "tcpserver: status: 0/");
        }
        s
    }

    pub fn qmail_home(&self) -> PathBuf {
        self.dir.path().join("qmail")
    }

    pub fn joe_home(&self) -> PathBuf {
        self.dir.path().join("joe")
    }

    pub fn scan_dir(&self) -> PathBuf {
        self.dir.path().join("service")
    }

    pub fn service(&self, name: &str) -> PathBuf {
        self.scan_dir().join(name)
    }

    fn install_qmail(&self) {
        let mut c = Command::new(bin("qmail-install"));
        c.arg("-p").env("QMAILHOME", self.qmail_home());
        let out = run(c, DEADLINE);
        assert!(out.status.success(), "qmail-install -p: {out:?}");
        for f in ["me", "locals", "rcpthosts"] {
            let p = self.qmail_home().join("control").join(f);
            fs::write(p, "localhost\n").unwrap();
        }
    }

    /// users/assign maps joe to the invoking uid; no .qmail, so qmail-start's
    /// default delivery ./Maildir/ applies.
    fn add_user_joe(&self) {
        let home = self.joe_home();
        fs::create_dir_all(&home).unwrap();
        let mut c = Command::new(bin("maildirmake"));
        c.arg(home.join("Maildir"));
        let out = run(c, DEADLINE);
        assert!(out.status.success(), "maildirmake: {out:?}");
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        let assign = format!("=joe:joe:{uid}:{gid}:{}:::\n.\n", home.display());
        fs::write(self.qmail_home().join("users/assign"), assign).unwrap();
        let mut c = Command::new(bin("qmail-newu"));
        c.env("QMAILHOME", self.qmail_home());
        let out = run(c, DEADLINE);
        assert!(out.status.success(), "qmail-newu: {out:?}");
    }

    fn build_rules(&self, rules: &str) {
        let d = self.dir.path();
        let mut c = Command::new(bin("tcprules"));
        c.arg(d.join("tcp.smtp.cdb")).arg(d.join("tcp.smtp.tmp"));
        let out = crate::run_with_input(c, rules.as_bytes(), DEADLINE);
        assert!(out.status.success(), "tcprules: {out:?}");
    }

    fn add_send_service(&self) {
        let h = self.qmail_home();
        let h = h.display();
        let run = format!(
            "#!/bin/sh\nexec 2>&1\ncd {h} || exit 111\n\
             exec env QMAILHOME={h} qmail-start ./Maildir/\n"
        );
        self.add_service("qmail-send", &run);
    }

    fn add_smtpd_service(&self) {
        let h = self.qmail_home();
        let cdb = self.dir.path().join("tcp.smtp.cdb");
        let run = format!(
            "#!/bin/sh\nexec 2>&1\nexec env QMAILHOME={} tcpserver -v -HR -l0 -x {} \
             127.0.0.1 {} qmail-smtpd\n",
            h.display(),
            cdb.display(),
            self.smtp_port
        );
        self.add_service("qmail-smtpd", &run);
    }

    /// qmail-popup hands USER/PASS to a checkpassword for the one account
    /// (the system's would need /etc/shadow and a real user), which execs
    /// qmail-pop3d in joe's home.
    fn add_pop3_service(&self) {
        let check = self.dir.path().join("checkpassword");
        let script = format!(
            "#!/bin/sh\ninput=$(tr '\\0' '\\n' <&3) || exit 2\n\
             user=$(printf '%s\\n' \"$input\" | sed -n 1p)\n\
             pass=$(printf '%s\\n' \"$input\" | sed -n 2p)\n\
             [ \"$user\" = joe ] && [ \"$pass\" = {POP3_PASSWORD} ] || exit 1\n\
             cd {home} || exit 111\nHOME={home} USER=joe\nexport HOME USER\nexec \"$@\"\n",
            home = self.joe_home().display()
        );
        write_exec(&check, &script);
        let run = format!(
            "#!/bin/sh\nexec 2>&1\nexec tcpserver -v -HR -l0 127.0.0.1 {} \
             qmail-popup localhost {} qmail-pop3d Maildir\n",
            self.pop3_port,
            check.display()
        );
        self.add_service("qmail-pop3d", &run);
    }

    /// A service directory with `run` and a multilog `log/run`.
    fn add_service(&self, name: &str, run: &str) {
        let d = self.service(name);
        fs::create_dir_all(d.join("log")).unwrap();
        write_exec(&d.join("run"), run);
        write_exec(&d.join("log/run"), "#!/bin/sh\nexec multilog t ./main\n");
    }

    fn start_svscan(&mut self) {
        let mut c = Command::new(bin("svscan"));
        c.arg(self.scan_dir())
            .env("PATH", path_with_bins())
            // Nothing here resolves names, but if anything tried, it must
            // not leave loopback.
            .env("DNSCACHEIP", "127.0.0.1")
            .stdin(Stdio::null())
            .stdout(fs::File::create(self.dir.path().join("svscan.out")).unwrap())
            .stderr(fs::File::create(self.dir.path().join("svscan.err")).unwrap());
        self.svscan = Some(Guard::spawn(&mut c));
    }

    /// The log directory of `service`'s multilog.
    pub fn log_dir(&self, service: &str) -> PathBuf {
        self.service(service).join("log/main")
    }

    /// Every line `service` logged, rotated files first, with labels.
    pub fn log_raw(&self, service: &str) -> String {
        let dir = self.log_dir(service);
        let mut old: Vec<PathBuf> = fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('@'))
            })
            .collect();
        old.sort();
        old.push(dir.join("current"));
        old.iter()
            .map(|p| fs::read_to_string(p).unwrap_or_default())
            .collect()
    }

    /// Every line `service` logged, without the TAI64N labels.
    pub fn log_lines(&self, service: &str) -> Vec<String> {
        self.log_raw(service)
            .lines()
            .map(|l| strip_label(l).to_string())
            .collect()
    }

    /// Wait for a line of `service`'s log containing `needle`.
    pub fn wait_log(&self, service: &str, needle: &str) {
        let ok = wait_until(DEADLINE, || {
            self.log_lines(service).iter().any(|l| l.contains(needle))
        });
        assert!(
            ok,
            "{service} log lacks {needle:?}:\n{}\nsvscan stderr:\n{}",
            self.log_raw(service),
            fs::read_to_string(self.dir.path().join("svscan.err")).unwrap_or_default()
        );
    }

    /// The pid of svscan.
    pub fn svscan_pid(&self) -> u32 {
        self.svscan.as_ref().map_or(0, |g| g.pid())
    }

    /// Our svc with `flag` on a service directory (relative to the scan dir).
    pub fn svc(&self, flag: &str, service: &str) -> Output {
        let mut c = Command::new(bin("svc"));
        c.arg(flag).arg(self.service(service));
        let out = run(c, DEADLINE);
        assert!(out.status.success(), "svc {flag} {service}: {out:?}");
        out
    }

    /// The messages delivered to joe (new/ and cur/), sorted by content.
    pub fn maildir_messages(&self) -> Vec<Vec<u8>> {
        let md = self.joe_home().join("Maildir");
        let mut v: Vec<Vec<u8>> = ["new", "cur"]
            .iter()
            .flat_map(|sub| fs::read_dir(md.join(sub)).into_iter().flatten().flatten())
            .filter_map(|e| fs::read(e.path()).ok())
            .collect();
        v.sort();
        v
    }

    /// The latest modification time (Unix seconds) in joe's Maildir.
    pub fn newest_mtime(&self) -> u64 {
        let md = self.joe_home().join("Maildir");
        ["new", "cur"]
            .iter()
            .flat_map(|sub| fs::read_dir(md.join(sub)).into_iter().flatten().flatten())
            .filter_map(|e| e.metadata().ok()?.modified().ok())
            .filter_map(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs())
            .max()
            .unwrap_or(0)
    }

    /// Wait until joe's Maildir holds `n` messages; returns them.
    pub fn wait_messages(&self, n: usize) -> Vec<Vec<u8>> {
        let ok = wait_until(DEADLINE, || self.maildir_messages().len() >= n);
        let got = self.maildir_messages();
        assert!(
            ok,
            "{} of {n} messages delivered; qmail-send log:\n{}",
            got.len(),
            self.log_raw("qmail-send")
        );
        got
    }

    /// Files anywhere under queue/ except the directory skeleton.
    pub fn queued_files(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        walk(&self.qmail_home().join("queue"), &mut out);
        out.retain(|p| !p.ends_with("lock/sendmutex") && !p.ends_with("lock/tcpto"));
        out.retain(|p| !p.ends_with("lock/trigger"));
        out
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn write_exec(path: &Path, text: &str) {
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// A multilog line without its `@` + 24 hex digits + space label.
pub fn strip_label(line: &str) -> &str {
    match line.strip_prefix('@') {
        Some(rest) if rest.len() > 25 && rest.as_bytes()[24] == b' ' => &rest[25..],
        _ => line,
    }
}

/// Whether `delivered` is `sent` (with CRLF turned into LF as qmail stores
/// it) behind nothing but trace lines: Return-Path, Delivered-To, Received
/// and their continuation lines.
pub fn is_sent_plus_trace(delivered: &[u8], sent_lf: &[u8]) -> bool {
    let Some(prefix_len) = delivered.len().checked_sub(sent_lf.len()) else {
        return false;
    };
    let (prefix, body) = delivered.split_at(prefix_len);
    if body != sent_lf {
        return false;
    }
    let prefix = String::from_utf8_lossy(prefix);
    prefix.lines().all(|l| {
        l.starts_with("Return-Path: ")
            || l.starts_with("Delivered-To: ")
            || l.starts_with("Received: ")
            || l.starts_with(' ')
            || l.starts_with('\t')
    }) && prefix.contains("Received: ")
        && prefix.starts_with("Return-Path: ")
}

//! qmail as root, the way a real installation runs: qmail-install creates
//! the qmail users and groups and lays out the home with hier.c's owners
//! and modes, qmail-instcheck finds nothing to complain about, qmail-start
//! gives every daemon its own user, the setuid qmail-queue ignores a
//! caller's QMAILHOME, and a local delivery runs as the recipient.
//!
//! Without root these tests print why they skip (CI runs them as root).
//!
//! The home is private, under a temporary directory: qmail-install,
//! qmail-start and the daemons are not setuid, so they honour QMAILHOME.
//! The installed bin/qmail-queue is setuid qmailq and therefore must not
//! (a caller could point it at a queue of their choosing): that refusal is
//! tested as such, and messages are queued by running the same program
//! under qmailq's ids directly, which is what the setuid bit gives it.

mod support_qeng;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use support_qeng::*;

/// Held by each test while it runs: useradd and groupadd of two tests at
/// once would race on /etc/passwd, and every test shares the qmail users.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The serialising lock when root; None (after saying why) otherwise.
fn root() -> Option<std::sync::MutexGuard<'static, ()>> {
    if unsafe { libc::geteuid() } == 0 {
        return Some(SERIAL.lock().unwrap_or_else(|e| e.into_inner()));
    }
    eprintln!("skipping: needs root (creates users, chowns, setuid files)");
    None
}

/// A temporary directory on a filesystem that honours setuid bits.
fn suid_tempdir(tag: &str) -> TempDir {
    let t = TempDir::new(tag);
    if !nosuid(t.path()) {
        return t;
    }
    drop(t);
    let t = TempDir::new_in(Path::new("/var/tmp"), &format!("qeng-{tag}"));
    assert!(
        !nosuid(t.path()),
        "no filesystem without nosuid for the test"
    );
    t
}

fn nosuid(p: &Path) -> bool {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    st.f_flag & libc::ST_NOSUID != 0
}

fn uid(name: &str) -> u32 {
    nix::unistd::User::from_name(name)
        .unwrap()
        .unwrap_or_else(|| panic!("no user {name}"))
        .uid
        .as_raw()
}

fn gid(name: &str) -> u32 {
    nix::unistd::Group::from_name(name)
        .unwrap()
        .unwrap_or_else(|| panic!("no group {name}"))
        .gid
        .as_raw()
}

/// A throwaway mail user, removed from the system on drop.
struct MailUser {
    name: String,
    home: PathBuf,
}

impl MailUser {
    fn new(dir: &Path) -> MailUser {
        MailUser::named(dir, "")
    }

    /// A user named qft, this process's pid and `tag`.
    fn named(dir: &Path, tag: &str) -> MailUser {
        let name = format!("qft{}{tag}", std::process::id());
        let home = dir.join(&name);
        // A leftover of a killed earlier run with this pid, if any.
        let _ = Command::new("userdel")
            .arg(&name)
            .stderr(Stdio::null())
            .status();
        let st = Command::new("useradd")
            .args(["-M", "-s", "/bin/sh", "-d"])
            .arg(&home)
            .arg(&name)
            .status()
            .unwrap();
        assert!(st.success(), "useradd failed");
        let u = MailUser { name, home };
        let (id, g) = (uid(&u.name), user_gid(&u.name));
        for d in ["", "Maildir", "Maildir/new", "Maildir/cur", "Maildir/tmp"] {
            let p = u.home.join(d);
            std::fs::create_dir_all(&p).unwrap();
            std::os::unix::fs::chown(&p, Some(id), Some(g)).unwrap();
        }
        u
    }
}

impl Drop for MailUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).status();
    }
}

fn user_gid(name: &str) -> u32 {
    nix::unistd::User::from_name(name)
        .unwrap()
        .unwrap()
        .gid
        .as_raw()
}

/// A home installed by root's qmail-install (users created as needed).
fn install(t: &TempDir) -> PathBuf {
    let home = t.path().join("qmail");
    let out = Command::new(bin("qmail-install"))
        .env("QMAILHOME", &home)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    std::fs::write(home.join("control/me"), "example.org\n").unwrap();
    std::fs::write(home.join("control/locals"), "example.org\n").unwrap();
    home
}

/// Owner, group and mode (with setuid/setgid bits) of a path.
fn stat(p: &Path) -> (u32, u32, u32) {
    let m = std::fs::symlink_metadata(p).unwrap();
    (m.uid(), m.gid(), m.mode() & 0o7777)
}

#[test]
fn install_creates_users_and_hier_owners_and_instcheck_passes() {
    let Some(_serial) = root() else {
        return;
    };
    let t = suid_tempdir("priv-install");
    let home = install(&t);
    for u in [
        "alias", "qmaild", "qmaill", "qmailp", "qmailq", "qmailr", "qmails",
    ] {
        uid(u);
    }
    let (q, n) = (gid("qmail"), gid("nofiles"));
    for (u, g) in [("alias", n), ("qmaild", n), ("qmaill", n), ("qmailp", n)] {
        assert_eq!(user_gid(u), g, "{u}'s group");
    }
    for u in ["qmailq", "qmailr", "qmails"] {
        assert_eq!(user_gid(u), q, "{u}'s group");
    }
    let (qq, qs, qr, al) = (uid("qmailq"), uid("qmails"), uid("qmailr"), uid("alias"));
    let want = [
        ("", 0, 0o755),
        ("control", 0, 0o755),
        ("users", 0, 0o755),
        ("bin", 0, 0o755),
        ("alias", al, 0o2755),
        ("queue", qq, 0o750),
        ("queue/pid", qq, 0o700),
        ("queue/intd", qq, 0o700),
        ("queue/todo", qq, 0o750),
        ("queue/bounce", qs, 0o700),
        ("queue/mess", qq, 0o750),
        ("queue/mess/0", qq, 0o750),
        ("queue/mess/22", qq, 0o750),
        ("queue/info/7", qs, 0o700),
        ("queue/local/22", qs, 0o700),
        ("queue/remote/0", qs, 0o700),
        ("queue/lock", qq, 0o750),
        ("queue/lock/tcpto", qr, 0o644),
        ("queue/lock/sendmutex", qs, 0o600),
        ("queue/lock/trigger", qs, 0o622),
        ("bin/qmail-queue", qq, 0o4711),
        ("bin/qmail-lspawn", 0, 0o700),
        ("bin/qmail-start", 0, 0o700),
        ("bin/qmail-send", 0, 0o711),
        ("bin/qmail-local", 0, 0o711),
        ("bin/qmail-newu", 0, 0o700),
        ("bin/qmail-inject", 0, 0o755),
    ];
    for (p, u, mode) in want {
        assert_eq!(stat(&home.join(p)), (u, q, mode), "{p}");
    }
    assert_eq!(
        std::fs::metadata(home.join("queue/lock/tcpto"))
            .unwrap()
            .len(),
        1024
    );
    let out = Command::new(bin("qmail-instcheck"))
        .env("QMAILHOME", &home)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    // A second install changes nothing and instcheck sees a damaged entry.
    install(&t);
    std::fs::set_permissions(
        home.join("queue/todo"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let out = Command::new(bin("qmail-instcheck"))
        .env("QMAILHOME", &home)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "instcheck: warning: {} has wrong permissions\n",
            home.join("queue/todo").display()
        )
    );
}

#[test]
fn setuid_qmail_queue_ignores_a_callers_qmailhome() {
    let Some(_serial) = root() else {
        return;
    };
    let t = suid_tempdir("priv-suid");
    let home = install(&t);
    let u = MailUser::new(t.path());
    let envfile = t.path().join("env");
    std::fs::write(&envfile, b"Fa@b\0Tc@d\0\0").unwrap();
    let out = Command::new(home.join("bin/qmail-queue"))
        .env("QMAILHOME", &home)
        .uid(uid(&u.name))
        .gid(user_gid(&u.name))
        .stdin(Stdio::null())
        .stdout(std::fs::File::open(&envfile).unwrap())
        .output()
        .unwrap();
    let todo = std::fs::read_dir(home.join("queue/todo")).unwrap().count();
    assert_eq!(todo, 0, "setuid qmail-queue used the caller's QMAILHOME");
    if !Path::new("/var/qmail/queue").exists() {
        // The built-in home has no queue here: qmail-queue cannot chdir.
        assert_eq!(out.status.code(), Some(61), "{out:?}");
    }
}

/// qmail-start's pid and the daemons it forked, by program name.
fn daemons(pid: u32) -> Vec<(String, u32)> {
    let kids =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    std::iter::once(pid)
        .chain(kids.split_whitespace().filter_map(|s| s.parse().ok()))
        .map(|p| {
            let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
            (comm.trim().to_string(), proc_uid(p))
        })
        .collect()
}

/// The effective uid in /proc/PID/status.
fn proc_uid(pid: u32) -> u32 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|x| x.parse().ok())
        .unwrap_or(u32::MAX)
}

#[test]
fn daemons_run_as_their_users_and_delivery_as_the_recipient() {
    let Some(_serial) = root() else {
        return;
    };
    let t = suid_tempdir("priv-start");
    let home = install(&t);
    let u = MailUser::new(t.path());
    let log = t.path().join("send.log");
    let mut g = start_as_root(&home, &log);
    let logtext = || std::fs::read_to_string(&log).unwrap_or_default();
    let pid = g.0.id();
    // qmail-done is qmail-send's own helper, running as qmails too;
    // qmail-queued, the resident queue writer, runs as qmailq.
    assert!(wait_until(Duration::from_secs(30), || daemons(pid).len() == 6));
    let mut seen = daemons(pid);
    seen.sort();
    let want = vec![
        ("qmail-clean".to_string(), uid("qmailq")),
        ("qmail-done".to_string(), uid("qmails")),
        ("qmail-lspawn".to_string(), 0),
        ("qmail-queued".to_string(), uid("qmailq")),
        ("qmail-rspawn".to_string(), uid("qmailr")),
        ("qmail-send".to_string(), uid("qmails")),
    ];
    assert_eq!(seen, want);

    // Queued as qmailq (what the setuid bit gives qmail-queue), delivered
    // by qmail-local running as the recipient.
    queue_as_qmailq(
        &home,
        format!("Fme@x.org\0T{}@example.org\0\0", u.name).as_bytes(),
        b"Subject: root\n\nhello\n",
    );
    let new = u.home.join("Maildir/new");
    assert!(
        wait_until(Duration::from_secs(60), || std::fs::read_dir(&new)
            .unwrap()
            .count()
            == 1),
        "no delivery: {}",
        logtext()
    );
    let f = std::fs::read_dir(&new)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert!(std::fs::read_to_string(&f)
        .unwrap()
        .ends_with("Subject: root\n\nhello\n"));
    assert_eq!(stat(&f).0, uid(&u.name), "delivered as someone else");
    let text = logtext();
    assert!(text.contains(": success: did_1+0+0/\n"), "{text}");
    remote_channel_reads_the_queue(&home, &logtext);
    g.stop();
    let text = logtext();
    assert!(
        !text.contains("alert:") && !text.contains("warning:"),
        "{text}"
    );
}

/// qmail-rspawn runs as qmailr and must accept qmailq's message: a remote
/// delivery to a closed loopback port is a connection deferral, never a
/// complaint about the message's owner.
fn remote_channel_reads_the_queue(home: &Path, logtext: &dyn Fn() -> String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        home.join("control/smtproutes"),
        format!("remote.test:127.0.0.1:{port}\n"),
    )
    .unwrap();
    queue_as_qmailq(
        home,
        b"Fme@x.org\0Tyou@remote.test\0\0",
        b"Subject: far\n\nx\n",
    );
    assert!(
        wait_until(Duration::from_secs(120), || logtext()
            .contains("delivery 2: ")),
        "{}",
        logtext()
    );
    let text = logtext();
    assert!(!text.contains("wrong owner"), "{text}");
    assert!(text.contains("delivery 2: deferral: "), "{text}");
}

/// Queue a message with qmail-queue running as qmailq (what its setuid bit
/// gives it); asserts success.
fn queue_as_qmailq(home: &Path, envelope: &[u8], message: &[u8]) {
    let envfile = home.join(format!(
        "../env-{}",
        COUNT.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    ));
    std::fs::write(&envfile, envelope).unwrap();
    let mut q = Command::new(bin("qmail-queue"))
        .env("QMAILHOME", home)
        .uid(uid("qmailq"))
        .gid(gid("qmail"))
        .stdin(Stdio::piped())
        .stdout(std::fs::File::open(&envfile).unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let _ = q.stdin.take().unwrap().write_all(message);
    }
    let out = wait_output(q, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

static COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// qmail-start as root on `home`, logging to `log`.
fn start_as_root(home: &Path, log: &Path) -> Group {
    let path = format!("{}:{}", home.join("bin").display(), path_with_bins());
    let child = Command::new(home.join("bin/qmail-start"))
        .arg("./Maildir/")
        .env("QMAILHOME", home)
        .env("PATH", &path)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(log).unwrap())
        .process_group(0)
        .spawn()
        .unwrap();
    let g = Group(child);
    let logtext = || std::fs::read_to_string(log).unwrap_or_default();
    assert!(
        wait_until(Duration::from_secs(60), || logtext().contains("status: ")),
        "qmail-send did not start: {}",
        logtext()
    );
    g
}

#[test]
fn resident_deliveries_stay_with_their_user() {
    // Two users, each with a program delivery and a Maildir one, all in
    // one message: every delivery runs as its own recipient, whichever
    // resident qmail-local process carries it out.
    let Some(_serial) = root() else {
        return;
    };
    let t = suid_tempdir("priv-resident");
    let home = install(&t);
    let users = [
        MailUser::named(t.path(), "a"),
        MailUser::named(t.path(), "b"),
    ];
    for u in &users {
        std::fs::write(u.home.join(".qmail-prog"), "|id -u > uid\n").unwrap();
    }
    let log = t.path().join("send.log");
    let mut g = start_as_root(&home, &log);
    let mut envelope = b"Fme@x.org\0".to_vec();
    for u in &users {
        envelope.extend(format!("T{}-prog@example.org\0T{0}@example.org\0", u.name).bytes());
    }
    envelope.push(0);
    queue_as_qmailq(&home, &envelope, b"Subject: two\n\nhello\n");
    let logtext = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        wait_until(Duration::from_secs(60), || logtext().contains("end msg ")),
        "{}",
        logtext()
    );
    assert_eq!(logtext().matches(": success: ").count(), 4, "{}", logtext());
    for u in &users {
        let id = uid(&u.name);
        assert_eq!(
            std::fs::read_to_string(u.home.join("uid")).unwrap(),
            format!("{id}\n")
        );
        let new: Vec<_> = std::fs::read_dir(u.home.join("Maildir/new"))
            .unwrap()
            .flatten()
            .collect();
        assert_eq!(new.len(), 1);
        assert_eq!(stat(&new[0].path()).0, id, "delivered as someone else");
    }
    g.stop();
}

/// qmail-start's process group, killed by its id on drop.
struct Group(std::process::Child);

impl Group {
    fn stop(&mut self) {
        let pid = self.0.id();
        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        wait_until(Duration::from_secs(60), || !alive(pid));
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        unsafe { libc::killpg(self.0.id() as i32, libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

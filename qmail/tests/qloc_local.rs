//! qmail-local as qmail-lspawn runs it: deliveries into Maildir and mbox in
//! temporary homes as the invoking user, every kind of dot-qmail line, the
//! extension search, loop detection, program exit codes, forwarding through
//! a recording qmail-queue, and bad input.

mod qloc_support;

use qloc_support::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

const LOCAL: &str = env!("CARGO_BIN_EXE_qmail-local");
const MSG: &[u8] = b"Subject: hello\n\nFrom the start\nbody\n";

struct Run {
    qhome: TempDir,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Run {
    /// qmail-local for user joe at `home`, address LOCAL@example.com.
    fn new(home: &TempDir, local: &str, dash: &str, ext: &str) -> Run {
        let args = [
            "joe",
            &home.path().display().to_string(),
            local,
            dash,
            ext,
            "example.com",
            "sender@remote.org",
            "./Maildir/",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        Run {
            qhome: TempDir::new("qhome"),
            args,
            env: Vec::new(),
        }
    }

    fn arg(mut self, i: usize, v: &str) -> Self {
        self.args[i] = v.to_string();
        self
    }

    fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    fn cmd(&self, flags: &[&str]) -> Command {
        let mut c = bin(LOCAL, self.qhome.path());
        c.args(flags).arg("--").args(&self.args);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    fn go(&self, msg: &[u8]) -> Outcome {
        run_with(self.cmd(&[]), msg)
    }
}

fn joe_home() -> TempDir {
    let h = TempDir::new("home");
    h.maildir("Maildir");
    h
}

#[test]
fn default_delivery_to_maildir_with_return_path_and_delivered_to() {
    let h = joe_home();
    let o = Run::new(&h, "joe", "", "").go(MSG);
    assert_eq!(
        (o.code, o.out().as_str(), o.err().as_str()),
        (0, "did 1+0+0\n", "")
    );
    let got = only_file(&h.path().join("Maildir/new"));
    let want = [
        &b"Return-Path: <sender@remote.org>\nDelivered-To: joe@example.com\n"[..],
        MSG,
    ]
    .concat();
    assert_eq!(got, want);
    assert!(files(&h.path().join("Maildir/tmp")).is_empty());
    let name = files(&h.path().join("Maildir/new"))[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let parts: Vec<&str> = name.splitn(3, '.').collect();
    assert!(parts[0].bytes().all(|b| b.is_ascii_digit()), "{name}");
    assert!(
        parts[1].starts_with('M') && parts[1].contains('P'),
        "{name}"
    );
}

#[test]
fn every_kind_of_line() {
    let h = joe_home();
    h.maildir("other");
    let qq = fake_queue(&h, 0);
    let dot = "# a comment\n./other/\n./mbox\n|echo \"$USER $HOME $LOCAL $EXT $EXT2 $EXT3 $EXT4 $HOST $HOST2 $HOST3 $HOST4 $RECIPIENT $SENDER $NEWSENDER $DEFAULT\"; printf %s \"$DTLINE$RPLINE\"\n&one@a.example\ntwo@b.example\n\n";
    h.write(".qmail-list-default", dot.as_bytes());
    let run = Run::new(&h, "joe-list-A.b-c", "-", "list-A.b-c")
        .arg(5, "mx.mail.example.com")
        .env("QMAILQUEUE", qq.to_str().unwrap());
    let o = run.go(MSG);
    let home = h.path().display().to_string();
    let lines: Vec<String> = o.out().lines().map(String::from).collect();
    assert_eq!(o.code, 0, "{}", o.err());
    assert_eq!(
        lines[0],
        format!("joe {home} joe-list-A.b-c list-A.b-c A.b-c c  mx.mail.example.com mx.mail.example mx.mail mx joe-list-A.b-c@mx.mail.example.com sender@remote.org sender@remote.org A.b-c")
    );
    assert_eq!(lines[1], "Delivered-To: joe-list-A.b-c@mx.mail.example.com");
    assert_eq!(lines[2], "Return-Path: <sender@remote.org>");
    assert_eq!(lines[3], "did 2+2+1");
    assert!(lines[4].starts_with("qp "), "{lines:?}");
    assert_eq!(lines.len(), 5);
    // The maildir got it, the mbox got it with From_ line and quoting.
    assert!(only_file(&h.path().join("other/new")).ends_with(MSG));
    let mbox = String::from_utf8(fs::read(h.path().join("mbox")).unwrap()).unwrap();
    assert!(mbox.starts_with("From sender@remote.org "), "{mbox}");
    assert!(mbox.ends_with("Return-Path: <sender@remote.org>\nDelivered-To: joe-list-A.b-c@mx.mail.example.com\nSubject: hello\n\n>From the start\nbody\n\n"), "{mbox}");
    // One qmail-queue run for both forwards, our Delivered-To on top.
    assert_eq!(
        fs::read(h.path().join("qq.msg")).unwrap(),
        [
            &b"Delivered-To: joe-list-A.b-c@mx.mail.example.com\n"[..],
            MSG
        ]
        .concat()
    );
    assert_eq!(
        fs::read(h.path().join("qq.env")).unwrap(),
        b"Fsender@remote.org\0Tone@a.example\0Ttwo@b.example\0\0"
    );
    assert!(files(&h.path().join("Maildir/new")).is_empty());
}

#[test]
fn extension_search_order_and_default() {
    let h = joe_home();
    h.write(".qmail-a-default", b"|echo a-default $DEFAULT\n");
    h.write(".qmail-default", b"|echo default $DEFAULT\n");
    h.write(".qmail-a-b:c", b"|echo exact\n");
    let run = |ext: &str| Run::new(&h, &format!("joe-{ext}"), "-", ext).go(MSG);
    assert_eq!(run("A-B.C").out(), "exact\ndid 0+0+1\n");
    assert_eq!(run("a-x-Y").out(), "a-default x-Y\ndid 0+0+1\n");
    assert_eq!(run("zz").out(), "default zz\ndid 0+0+1\n");
    fs::remove_file(h.path().join(".qmail-default")).unwrap();
    let o = run("zz");
    assert_eq!(
        (o.code, o.err().as_str()),
        (100, "Sorry, no mailbox here by that name. (#5.1.1)\n")
    );
    // Without a dash a missing .qmail means the default delivery.
    assert_eq!(Run::new(&h, "joe", "", "").go(MSG).out(), "did 1+0+0\n");
}

#[test]
fn dry_run_lists_the_deliveries() {
    let h = joe_home();
    h.write(".qmail", b"./Maildir/\n/var/mail/joe\n|prog x\n&a@b\nc@d\n");
    let o = run_with(Run::new(&h, "joe", "", "").cmd(&["-n"]), MSG);
    assert_eq!(o.code, 0);
    assert_eq!(
        o.out(),
        "maildir ./Maildir/\nmbox /var/mail/joe\nprogram prog x\nforward a@b\nforward c@d\ndid 2+2+1\n"
    );
    assert!(files(&h.path().join("Maildir/new")).is_empty());
}

#[test]
fn delivered_to_loop_is_refused() {
    let h = joe_home();
    let msg = b"Received: x\nDelivered-To: joe@example.com\nSubject: s\n\nbody\n";
    let o = Run::new(&h, "joe", "", "").go(msg);
    assert_eq!(o.code, 100);
    assert_eq!(
        o.err(),
        "This message is looping: it already has my Delivered-To line. (#5.4.6)\n"
    );
    // Only the header counts, and only the exact line.
    let msg = b"Delivered-To: JOE@example.com\n\nDelivered-To: joe@example.com\n";
    assert_eq!(Run::new(&h, "joe", "", "").go(msg).code, 0);
}

#[test]
fn program_exit_codes() {
    let h = joe_home();
    let with = |line: &str| {
        h.write(".qmail", format!("{line}\n./Maildir/\n").as_bytes());
        Run::new(&h, "joe", "", "").go(MSG)
    };
    let o = with("|exit 0");
    assert_eq!((o.code, o.out().as_str()), (0, "did 1+0+1\n"));
    let o = with("|exit 99");
    assert_eq!((o.code, o.out().as_str()), (0, "did 0+0+1\n"));
    assert_eq!(files(&h.path().join("Maildir/new")).len(), 1);
    let o = with("|echo no such user; exit 100");
    assert_eq!((o.code, o.out().as_str()), (100, "no such user\n"));
    for code in [64, 65, 70, 76, 77, 78, 112] {
        assert_eq!(with(&format!("|exit {code}")).code, 100, "{code}");
    }
    let o = with("|echo later; exit 111");
    assert_eq!((o.code, o.out().as_str()), (111, "later\n"));
    assert_eq!(with("|exit 3").code, 111);
    let o = with("|kill -9 $$");
    assert_eq!(
        (o.code, o.err().as_str()),
        (111, "Aack, child crashed. (#4.3.0)\n")
    );
    // The program reads the message from the start.
    h.write(".qmail", b"./Maildir/\n|cat > seen\n");
    assert_eq!(Run::new(&h, "joe", "", "").go(MSG).code, 0);
    assert_eq!(fs::read(h.path().join("seen")).unwrap(), MSG);
}

#[test]
fn owner_and_verp_newsender() {
    let h = joe_home();
    h.write(".qmail-list", b"|echo $NEWSENDER\n");
    let run = || Run::new(&h, "joe-list", "-", "list").go(MSG).out();
    assert_eq!(run(), "sender@remote.org\ndid 0+0+1\n");
    h.write(".qmail-list-owner", b"./Maildir/\n");
    assert_eq!(run(), "joe-list-owner@example.com\ndid 0+0+1\n");
    h.write(".qmail-list-owner-default", b"./Maildir/\n");
    assert_eq!(run(), "joe-list-owner-@example.com-@[]\ndid 0+0+1\n");
    // Bounces keep their empty sender.
    let o = Run::new(&h, "joe-list", "-", "list").arg(6, "").go(MSG);
    assert_eq!(o.out(), "\ndid 0+0+1\n");
}

#[test]
fn home_and_dot_qmail_permissions() {
    let h = joe_home();
    fs::set_permissions(h.path(), fs::Permissions::from_mode(0o1755)).unwrap();
    let o = Run::new(&h, "joe", "", "").go(MSG);
    assert_eq!(
        (o.code, o.err().as_str()),
        (
            111,
            "Home directory is sticky: user is editing his .qmail file. (#4.2.1)\n"
        )
    );
    let o = run_with(Run::new(&h, "joe", "", "").cmd(&["-n"]), MSG);
    assert_eq!(
        (o.code, o.err().as_str()),
        (0, "Warning: home directory is sticky.\n")
    );
    fs::set_permissions(h.path(), fs::Permissions::from_mode(0o757)).unwrap();
    let o = Run::new(&h, "joe", "", "").go(MSG);
    assert_eq!(
        (o.code, o.err().as_str()),
        (111, "Uh-oh: home directory is writable. (#4.7.0)\n")
    );
    fs::set_permissions(h.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let q = h.write(".qmail", b"./Maildir/\n");
    fs::set_permissions(&q, fs::Permissions::from_mode(0o646)).unwrap();
    let o = Run::new(&h, "joe", "", "").go(MSG);
    assert_eq!(
        (o.code, o.err().as_str()),
        (111, "Uh-oh: .qmail file is writable. (#4.7.0)\n")
    );
    // The owner's x bit makes the file forward-only.
    fs::set_permissions(&q, fs::Permissions::from_mode(0o744)).unwrap();
    let o = Run::new(&h, "joe", "", "").go(MSG);
    assert_eq!(
        (o.code, o.err().as_str()),
        (
            111,
            "Uh-oh: .qmail has file delivery but has x bit set. (#4.7.0)\n"
        )
    );
    h.write(".qmail", b"+list\n|true\n");
    let o = Run::new(&h, "joe", "", "").go(MSG);
    assert_eq!(
        (o.code, o.err().as_str()),
        (
            111,
            "Uh-oh: .qmail has prog delivery but has x bit set. (#4.7.0)\n"
        )
    );
    h.write(".qmail", b"\n./Maildir/\n");
    let o = Run::new(&h, "joe", "", "").go(MSG);
    assert_eq!(
        (o.code, o.err().as_str()),
        (111, "Uh-oh: first line of .qmail file is blank. (#4.2.1)\n")
    );
}

#[test]
fn usage_and_missing_home() {
    let h = joe_home();
    let mut c = bin(LOCAL, h.path());
    c.args(["joe", "/x"]);
    let o = run_with(c, MSG);
    let usage = "qmail-local: usage: qmail-local [ -nN ] user homedir local dash ext domain sender aliasempty\n";
    assert_eq!((o.code, o.err().as_str()), (100, usage));
    let o = Run::new(&h, "joe", "", "").arg(1, "relative").go(MSG);
    assert_eq!((o.code, o.err().as_str()), (100, usage));
    let missing = format!("{}/nothere", h.path().display());
    let o = Run::new(&h, "joe", "", "").arg(1, &missing).go(MSG);
    assert_eq!(
        (o.code, o.err()),
        (
            111,
            format!("Unable to switch to {missing}: file does not exist. (#4.3.0)\n")
        )
    );
}

#[test]
fn bad_input_and_missing_maildir() {
    let h = joe_home();
    // An unterminated last line gets its newline in an mbox, not in a maildir.
    h.write(".qmail", b"./Maildir/\n./mbox\n");
    let o = Run::new(&h, "joe", "", "").go(b"Subject: x\n\nno newline");
    assert_eq!(o.code, 0);
    assert!(only_file(&h.path().join("Maildir/new")).ends_with(b"\n\nno newline"));
    assert!(fs::read(h.path().join("mbox"))
        .unwrap()
        .ends_with(b"\n\nno newline\n\n"));
    // A 2 MiB header line goes through untouched.
    let mut big = b"X-Big: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 2 << 20));
    big.extend(b"\n\nbody\n");
    fs::remove_file(h.path().join("mbox")).unwrap();
    for f in files(&h.path().join("Maildir/new")) {
        fs::remove_file(f).unwrap();
    }
    assert_eq!(Run::new(&h, "joe", "", "").go(&big).code, 0);
    assert!(only_file(&h.path().join("Maildir/new")).ends_with(&big));
    // A missing maildir defers.
    h.write(".qmail", b"./Nowhere/\n");
    let o = Run::new(&h, "joe", "", "").go(MSG);
    assert_eq!(
        (o.code, o.err().as_str()),
        (111, "Unable to chdir to maildir. (#4.2.1)\n")
    );
    h.write(".qmail", b"./nodir/mbox\n");
    let o = Run::new(&h, "joe", "", "").go(MSG);
    assert_eq!(
        (o.code, o.err().as_str()),
        (
            111,
            "Unable to open ./nodir/mbox: file does not exist. (#4.2.1)\n"
        )
    );
}

#[test]
fn forwarding_failures() {
    let h = joe_home();
    h.write(".qmail", b"a@b\n");
    let qq = fake_queue(&h, 31);
    let o = Run::new(&h, "joe", "", "")
        .env("QMAILQUEUE", qq.to_str().unwrap())
        .go(MSG);
    assert_eq!(
        (o.code, o.err().as_str()),
        (
            100,
            "Unable to forward message: mail server permanently rejected message (#5.3.0).\n"
        )
    );
    let qq = fake_queue(&h, 53);
    let o = Run::new(&h, "joe", "", "")
        .env("QMAILQUEUE", qq.to_str().unwrap())
        .go(MSG);
    assert_eq!(
        (o.code, o.err().as_str()),
        (
            111,
            "Unable to forward message: qq write error or disk full (#4.3.0).\n"
        )
    );
}

#[test]
fn mbox_waits_for_a_concurrent_writer_lock() {
    let h = joe_home();
    h.write(".qmail", b"./mbox\n");
    let mbox = h.write("mbox", b"");
    // python holds flock on the mbox for a second, appending its own message.
    let script = format!(
        "import fcntl,time\nf=open('{}','a')\nfcntl.flock(f,fcntl.LOCK_EX)\nopen('{}/locked','w').close()\ntime.sleep(1.5)\nf.write('From other\\n\\n');f.flush()\nfcntl.flock(f,fcntl.LOCK_UN)\n",
        mbox.display(),
        h.path().display()
    );
    let mut py = Command::new("python3");
    py.arg("-c").arg(script);
    let mut g = spawn(py);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !h.path().join("locked").exists() {
        assert!(std::time::Instant::now() < deadline, "python never locked");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let o = Run::new(&h, "joe", "", "").go(MSG);
    assert_eq!(o.code, 0, "{}", o.err());
    let text = String::from_utf8(fs::read(&mbox).unwrap()).unwrap();
    assert!(
        text.starts_with("From other\n\nFrom sender@remote.org "),
        "{text}"
    );
    g.0.as_mut().unwrap().wait().unwrap();
    g.0 = None;
}

#[test]
fn mbox_on_a_full_filesystem_is_cut_back() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipping: mounting a small tmpfs needs root");
        return;
    }
    let h = joe_home();
    let mnt = h.path().join("full");
    fs::create_dir(&mnt).unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&mnt)
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipping: cannot mount tmpfs here");
        return;
    }
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _u = Unmount(mnt.clone());
    let mbox = mnt.join("mbox");
    fs::write(&mbox, b"From old\n\nold\n\n").unwrap();
    h.write(".qmail", format!("{}\n", mbox.display()).as_bytes());
    let mut big = b"Subject: big\n\n".to_vec();
    big.extend(std::iter::repeat_n(b"0123456789abcdef\n".as_slice(), 16384).flatten());
    let o = Run::new(&h, "joe", "", "").go(&big);
    assert_eq!(o.code, 111);
    assert_eq!(
        o.err(),
        format!(
            "Unable to write {}: out of disk space. (#4.3.0)\n",
            mbox.display()
        )
    );
    assert_eq!(fs::read(&mbox).unwrap(), b"From old\n\nold\n\n");
}

#[test]
fn forward_into_the_real_queue() {
    // A private QMAILHOME laid out by our installer, with our qmail-queue.
    let q = TempDir::new("realq");
    let qh = q.path().join("qmail");
    let inst = std::path::Path::new(LOCAL).with_file_name("qmail-install");
    let st = Command::new(&inst)
        .arg("-p")
        .env("QMAILHOME", &qh)
        .status()
        .unwrap();
    assert!(st.success());
    fs::write(qh.join("control/me"), "example.com\n").unwrap();
    let h = joe_home();
    h.write(".qmail", b"&fwd@elsewhere.example\n");
    let mut c = bin(LOCAL, &qh);
    c.arg("--").args([
        "joe",
        h.path().to_str().unwrap(),
        "joe",
        "",
        "",
        "example.com",
        "sender@remote.org",
        "./Maildir/",
    ]);
    let o = run_with(c, MSG);
    assert_eq!(o.code, 0, "{}", o.err());
    let out = o.out();
    assert!(out.starts_with("did 0+1+0\nqp "), "{out}");
    // The queued message carries our Delivered-To; the envelope our recipient.
    let mut found_msg = false;
    let mut found_env = false;
    let mut stack = vec![qh.join("queue")];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                stack.push(p);
                continue;
            }
            if !ft.is_file() {
                // queue/lock/trigger is a fifo: opening it would block.
                continue;
            }
            let b = fs::read(&p).unwrap_or_default();
            let has = |n: &[u8]| b.windows(n.len()).any(|w| w == n);
            found_msg |= has(b"Delivered-To: joe@example.com\nSubject: hello\n");
            found_env |= has(b"Tfwd@elsewhere.example\0");
        }
    }
    assert!(
        found_msg && found_env,
        "message or envelope not in the queue"
    );
}

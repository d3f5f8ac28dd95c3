//! qmail-qstat, qmail-qread and qmail-showctl on a private home.

mod support_qeng;
use support_qeng::*;

fn stdout(h: &Home, prog: &str) -> (String, Option<i32>) {
    let out = h.cmd(prog).output().unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.code(),
    )
}

#[test]
fn qstat_counts_queued_and_unprocessed() {
    let h = Home::new("qstat");
    assert_eq!(
        stdout(&h, "qmail-qstat"),
        (
            "messages in queue: 0\nmessages in queue but not yet preprocessed: 0\n".into(),
            Some(0)
        )
    );
    inject(&h, "Subject: a\n\n", "me@x.org", &["joe@example.org"]);
    inject(&h, "Subject: b\n\n", "me@x.org", &["joe@example.org"]);
    assert_eq!(
        stdout(&h, "qmail-qstat").0,
        "messages in queue: 2\nmessages in queue but not yet preprocessed: 2\n"
    );
}

#[test]
fn qread_lists_messages_and_recipients() {
    let h = Home::new("qread");
    let joe = add_joe(&h);
    std::fs::write(joe.join(".qmail-later"), "|exit 111\n").unwrap();
    let s = Stack::start(&h, &[]);
    inject(
        &h,
        "Subject: a\n\nbody\n",
        "me@x.org",
        &["joe@example.org", "joe-later@example.org"],
    );
    s.wait_log("deferral");
    s.wait_log("success");
    let (out, code) = stdout(&h, "qmail-qread");
    assert_eq!(code, Some(0));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[0].contains(" GMT  #"), "{out}");
    assert!(lines[0].ends_with("  <me@x.org> "), "{out}");
    assert!(lines.contains(&"  done\tlocal\tjoe@example.org"), "{out}");
    assert!(lines.contains(&"\tlocal\tjoe-later@example.org"), "{out}");
}

#[test]
fn showctl_describes_controls() {
    let h = Home::new("showctl");
    h.control("concurrencyremote", "5\n");
    h.control("smtproutes", ":relay.example.net\n");
    h.control("mystery", "x\n");
    let (out, code) = stdout(&h, "qmail-showctl");
    assert_eq!(code, Some(0));
    assert!(out.starts_with(&format!(
        "qmail home directory: {}.\nuser-ext delimiter: -.\n",
        h.root().display()
    )));
    assert!(out.contains("\nsubdirectory split: 23.\n"));
    assert!(out.contains("\nconcurrencyremote: Remote concurrency is 5.\n"));
    assert!(out.contains("\nconcurrencylocal: (Default.) Local concurrency is 10.\n"));
    assert!(out.contains("\nme: My name is example.org.\n"));
    assert!(out.contains("\nbouncehost: (Default.) Bounce host name is example.org.\n"));
    assert!(out.contains("\nlocals: \nMessages for example.org are delivered locally.\nMessages for localhost are delivered locally.\n"));
    assert!(out.contains("\nsmtproutes: \nSMTP route: :relay.example.net\n"));
    assert!(out.contains("\nmorercpthosts.cdb: (Default.) No effect.\n"));
    assert!(
        out.ends_with("\nmystery: I have no idea what this file does.\n"),
        "{out}"
    );
}

#[test]
fn tcpto_shows_and_tcpok_clears() {
    let h = Home::new("tcpto");
    let mut buf = vec![0u8; 1024];
    buf[0..4].copy_from_slice(&[192, 0, 2, 7]);
    buf[4] = 2;
    let when = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32
        - 100;
    buf[8..12].copy_from_slice(&when.to_le_bytes());
    let f = h.root().join("queue/lock/tcpto");
    std::fs::write(&f, &buf).unwrap();
    let (out, code) = stdout(&h, "qmail-tcpto");
    assert_eq!(code, Some(0));
    assert!(out.starts_with("192.0.2.7 timed out 10"), "{out}");
    assert!(
        out.ends_with(" seconds ago; # recent timeouts: 2\n"),
        "{out}"
    );
    assert_eq!(stdout(&h, "qmail-tcpok"), (String::new(), Some(0)));
    assert_eq!(std::fs::read(&f).unwrap(), vec![0u8; 1024]);
    assert_eq!(stdout(&h, "qmail-tcpto").0, "");
}

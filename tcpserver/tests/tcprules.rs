//! tcprules and tcprulescheck from the outside: guide rules, bad lines
//! named in the error and leaving the cdb alone, 100 KiB lines, 100,000
//! rules, and the same output as Debian's tools.

mod support;
use std::path::Path;
use std::process::{Command, Stdio};
use support::*;

const DEB_RULES: &str = "/usr/bin/tcprules";
const DEB_CHECK: &str = "/usr/bin/tcprulescheck";

fn check(exe: &Path, cdb: &Path, ip: &str, host: Option<&str>) -> (Option<i32>, String) {
    let mut c = Command::new(exe);
    c.arg(cdb)
        .env("TCPREMOTEIP", ip)
        .env_remove("TCPREMOTEHOST")
        .env_remove("TCPREMOTEINFO");
    if let Some(h) = host {
        c.env("TCPREMOTEHOST", h);
    }
    let out = wait_output(
        c.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn guide_rules_and_check_output() {
    let dir = TempDir::new("guide");
    let text = "127.:allow,RELAYCLIENT=\"\"\n1.2.3.6:allow,RELAYCLIENT=\"@fixme\"\n213.41.188.249:allow,RELAYCLIENT=\" \",RBLSMTPD=\" \"\n10.0.0.5-7:deny\n=.example.com:allow,X=/y/\n:allow\n";
    let out = tcprules(&bin("tcprules"), &dir, "r", text);
    assert!(out.status.success(), "{out:?}");
    let cdb = dir.path("r.cdb");
    assert!(!dir.path("r.tmp").exists(), "the temporary file is renamed");
    let cases = [
        ("127.0.0.1", None, "rule 127.:\nset environment variable RELAYCLIENT=\nallow connection\n"),
        ("1.2.3.6", None, "rule 1.2.3.6:\nset environment variable RELAYCLIENT=@fixme\nallow connection\n"),
        ("213.41.188.249", None, "rule 213.41.188.249:\nset environment variable RELAYCLIENT= \nset environment variable RBLSMTPD= \nallow connection\n"),
        ("10.0.0.6", None, "rule 10.0.0.6:\ndeny connection\n"),
        ("9.9.9.9", Some("a.example.com"), "rule =.example.com:\nset environment variable X=y\nallow connection\n"),
        ("9.9.9.9", None, "rule :\nallow connection\n"),
    ];
    for (ip, host, want) in cases {
        assert_eq!(
            check(&bin("tcprulescheck"), &cdb, ip, host),
            (Some(0), want.to_string()),
            "{ip}"
        );
        if have(DEB_CHECK) {
            assert_eq!(
                check(Path::new(DEB_CHECK), &cdb, ip, host).1,
                want,
                "Debian on {ip}"
            );
        }
    }
    let empty = dir.path("e.cdb");
    assert!(tcprules(&bin("tcprules"), &dir, "e", "# nothing\n")
        .status
        .success());
    assert_eq!(
        check(&bin("tcprulescheck"), &empty, "1.2.3.4", None).1,
        "default:\nallow connection\n"
    );
}

#[test]
fn bad_lines_are_named_and_leave_the_cdb_alone() {
    let dir = TempDir::new("bad");
    assert!(tcprules(&bin("tcprules"), &dir, "r", "1.2.3.4:deny\n")
        .status
        .success());
    let before = std::fs::read(dir.path("r.cdb")).unwrap();
    for bad in [
        "1.2.3.4:allowz",
        "1.2.3.4:allow,A=\"unterminated",
        "x:allow,A",
        "x:permit",
        "10.0.0.0/99:deny",
        "::1:nope",
    ] {
        let out = tcprules(
            &bin("tcprules"),
            &dir,
            "r",
            &format!(":allow\n{bad}\n:deny\n"),
        );
        assert_eq!(out.status.code(), Some(100), "{bad}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!("tcprules: fatal: unable to parse this line: {bad}\n")
        );
        assert_eq!(std::fs::read(dir.path("r.cdb")).unwrap(), before);
    }
    let out = wait_output(
        Command::new(bin("tcprules"))
            .arg("only-one")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    assert_eq!(out.status.code(), Some(100));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "tcprules: usage: tcprules rules.cdb rules.tmp\n"
    );
    let out = tcprules(&bin("tcprules"), &dir, "nodir/r", ":allow\n");
    assert_eq!(out.status.code(), Some(111));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("tcprules: fatal: unable to create "));
}

#[test]
fn long_lines_and_many_rules_match_debian() {
    let dir = TempDir::new("big");
    let value = "v".repeat(100 * 1024);
    let mut text = format!("1.2.3.4:allow,BIG=\"{value}\"\n");
    for a in 0..=255 {
        for b in 0..=255 {
            text.push_str(&format!("10.{a}.{b}.:deny\n"));
        }
    }
    for i in 0..(100_000 - 65_536) {
        text.push_str(&format!("11.{}.{}.:deny,N=\"{i}\"\n", i / 256, i % 256));
    }
    text.push_str("127.:allow\n:deny\n");
    let out = tcprules(&bin("tcprules"), &dir, "ours", &text);
    assert!(out.status.success(), "{out:?}");
    let (code, got) = check(
        &bin("tcprulescheck"),
        &dir.path("ours.cdb"),
        "1.2.3.4",
        None,
    );
    assert_eq!(code, Some(0));
    let want = format!("rule 1.2.3.4:\nset environment variable BIG={value}\nallow connection\n");
    assert!(
        got == want,
        "the 100 KiB value came back changed ({} bytes)",
        got.len()
    );
    assert_eq!(
        check(
            &bin("tcprulescheck"),
            &dir.path("ours.cdb"),
            "11.1.2.3",
            None
        )
        .1,
        "rule 11.1.2.:\ndeny connection\n"
    );
    assert_eq!(
        check(
            &bin("tcprulescheck"),
            &dir.path("ours.cdb"),
            "127.0.0.1",
            None
        )
        .1,
        "rule 127.:\nallow connection\n"
    );
    if have(DEB_RULES) {
        assert!(tcprules(Path::new(DEB_RULES), &dir, "theirs", &text)
            .status
            .success());
        let same = std::fs::read(dir.path("ours.cdb")).unwrap()
            == std::fs::read(dir.path("theirs.cdb")).unwrap();
        assert!(same, "our cdb differs from Debian's");
    }
}

#[test]
fn ipv6_rules() {
    let dir = TempDir::new("v6");
    assert!(tcprules(
        &bin("tcprules"),
        &dir,
        "r",
        "::1:allow,A=\"one\"\n2001:db8::/32:deny\n2001:db8:1::/48:allow,A=\"net\"\n:deny\n"
    )
    .status
    .success());
    let cdb = dir.path("r.cdb");
    let c = |ip| check(&bin("tcprulescheck"), &cdb, ip, None).1;
    assert_eq!(
        c("::1"),
        "rule ::1:\nset environment variable A=one\nallow connection\n"
    );
    assert_eq!(
        c("2001:db8:1::5"),
        "rule 2001:db8:1::/48:\nset environment variable A=net\nallow connection\n"
    );
    assert_eq!(c("2001:db8:2::5"), "rule 2001:db8::/32:\ndeny connection\n");
    assert_eq!(c("2001:db9::5"), "rule :\ndeny connection\n");
}

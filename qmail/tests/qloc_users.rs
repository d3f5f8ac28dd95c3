//! qmail-pw2u, qmail-newu and qmail-getpw against the formats of
//! qmail-users(5): passwd in, users/assign out, users/cdb built from it and
//! read back the way qmail-lspawn looks addresses up.

mod qloc_support;

use qloc_support::*;
use std::fs;

const PW2U: &str = env!("CARGO_BIN_EXE_qmail-pw2u");
const NEWU: &str = env!("CARGO_BIN_EXE_qmail-newu");
const GETPW: &str = env!("CARGO_BIN_EXE_qmail-getpw");

/// A non-root uid whose homes the test can own: our own, or 1234 as root.
fn owner(dirs: &[&std::path::Path]) -> u32 {
    let me = nix::unistd::geteuid().as_raw();
    if me != 0 {
        return me;
    }
    for d in dirs {
        std::os::unix::fs::chown(d, Some(1234), Some(1234)).unwrap();
    }
    1234
}

struct Setup {
    qhome: TempDir,
    homes: TempDir,
    passwd: Vec<u8>,
    uid: u32,
}

fn setup() -> Setup {
    let qhome = TempDir::new("qh");
    fs::create_dir(qhome.path().join("users")).unwrap();
    let homes = TempDir::new("homes");
    let (ha, hj) = (homes.path().join("alias"), homes.path().join("joe"));
    fs::create_dir(&ha).unwrap();
    fs::create_dir(&hj).unwrap();
    let uid = owner(&[&ha, &hj]);
    let gone = homes.path().join("gone");
    let passwd = format!(
        "root:x:0:0::/root:/bin/sh\nalias:x:{uid}:{uid}::{}:/bin/false\njoe:x:{uid}:{uid}:Joe:{}:/bin/sh\nUpper:x:{uid}:{uid}::{}:/bin/sh\ngone:x:{uid}:{uid}::{}:/bin/sh\nbad line\nnoshell:x:5:5::{}",
        ha.display(), hj.display(), hj.display(), gone.display(), hj.display()
    );
    Setup {
        qhome,
        homes,
        passwd: passwd.into_bytes(),
        uid,
    }
}

#[test]
fn pw2u_default_output() {
    let s = setup();
    let o = run_with(bin(PW2U, s.qhome.path()), &s.passwd);
    let (u, ha, hj) = (
        s.uid,
        s.homes.path().join("alias").display().to_string(),
        s.homes.path().join("joe").display().to_string(),
    );
    assert_eq!(o.code, 0, "{}", o.err());
    assert_eq!(
        o.out(),
        format!(
            "+:alias:{u}:{u}:{ha}:-::\n=alias:alias:{u}:{u}:{ha}:::\n+alias-:alias:{u}:{u}:{ha}:-::\n=joe:joe:{u}:{u}:{hj}:::\n+joe-:joe:{u}:{u}:{hj}:-::\n.\n"
        )
    );
}

#[test]
fn pw2u_lists_and_options() {
    let s = setup();
    let users = s.qhome.path().join("users");
    fs::write(users.join("mailnames"), "joe:jo:joseph\n").unwrap();
    fs::write(users.join("subusers"), "sub:joe:pre:\n").unwrap();
    fs::write(users.join("append"), "=x:y:1:2:/z:::\n").unwrap();
    let mut c = bin(PW2U, s.qhome.path());
    c.args(["-/", "-c+"]);
    let o = run_with(c, &s.passwd);
    let (u, hj) = (s.uid, s.homes.path().join("joe").display().to_string());
    let out = o.out();
    let want = format!(
        "=jo:joe:{u}:{u}:{hj}:::\n+jo+:joe:{u}:{u}:{hj}:-/::\n=joseph:joe:{u}:{u}:{hj}:::\n+joseph+:joe:{u}:{u}:{hj}:-/::\n=sub:joe:{u}:{u}:{hj}:-/:pre:\n+sub+:joe:{u}:{u}:{hj}:-/:pre-:\n=x:y:1:2:/z:::\n.\n"
    );
    assert!(out.ends_with(&want), "{out}");
    // Excluding the alias user is fatal; -h stops at a missing home.
    fs::write(users.join("exclude"), "alias\n").unwrap();
    let o = run_with(bin(PW2U, s.qhome.path()), &s.passwd);
    assert_eq!(
        (o.code, o.err().as_str()),
        (111, "qmail-pw2u: fatal: unable to find alias user\n")
    );
    fs::remove_file(users.join("exclude")).unwrap();
    let mut c = bin(PW2U, s.qhome.path());
    c.arg("-h");
    let o = run_with(c, &s.passwd);
    let gone = s.homes.path().join("gone").display().to_string();
    assert_eq!(
        (o.code, o.err()),
        (111, format!("qmail-pw2u: fatal: unable to stat {gone}\n"))
    );
    fs::write(users.join("subusers"), "sub:nobodyhere:pre:\n").unwrap();
    let o = run_with(bin(PW2U, s.qhome.path()), &s.passwd);
    assert_eq!(
        o.err(),
        "qmail-pw2u: fatal: unable to find nobodyhere user for subuser\n"
    );
}

#[test]
fn newu_builds_the_cdb_lspawn_reads() {
    let s = setup();
    let users = s.qhome.path().join("users");
    let assign = run_with(bin(PW2U, s.qhome.path()), &s.passwd).stdout;
    fs::write(users.join("assign"), &assign).unwrap();
    let o = run_with(bin(NEWU, s.qhome.path()), b"");
    assert_eq!((o.code, o.err().as_str()), (0, ""));
    assert!(!users.join("cdb.tmp").exists());
    let cdb = users.join("cdb");
    let d = qmail::users::lookup_cdb(&cdb, "JOE").unwrap().unwrap();
    assert_eq!(
        (d.user.as_str(), d.uid, d.dash.as_str(), d.ext.as_str()),
        ("joe", s.uid, "", "")
    );
    let d = qmail::users::lookup_cdb(&cdb, "joe-Some-Thing")
        .unwrap()
        .unwrap();
    assert_eq!(
        (d.user.as_str(), d.dash.as_str(), d.ext.as_str()),
        ("joe", "-", "Some-Thing")
    );
    let d = qmail::users::lookup_cdb(&cdb, "postmaster")
        .unwrap()
        .unwrap();
    assert_eq!(
        (d.user.as_str(), d.dash.as_str(), d.ext.as_str()),
        ("alias", "-", "postmaster")
    );
    // Bad input leaves the old cdb in place.
    fs::write(users.join("assign"), "=a:b\n.\n").unwrap();
    let o = run_with(bin(NEWU, s.qhome.path()), b"");
    assert_eq!(
        (o.code, o.err().as_str()),
        (111, "qmail-newu: fatal: bad format in users/assign\n")
    );
    assert!(qmail::users::lookup_cdb(&cdb, "joe").unwrap().is_some());
    fs::remove_file(users.join("assign")).unwrap();
    let o = run_with(bin(NEWU, s.qhome.path()), b"");
    assert_eq!(o.err(), "qmail-newu: fatal: unable to open users/assign\n");
}

#[test]
fn getpw_usage_and_alias_fallback() {
    let q = TempDir::new("gp");
    let o = run_with(bin(GETPW, q.path()), b"");
    assert_eq!((o.code, o.out().as_str()), (100, ""));
    // root never receives mail through getpw: the alias user gets it, or
    // qmail-getpw says there is none (exit 116).
    let mut c = bin(GETPW, q.path());
    c.arg("root-x");
    let o = run_with(c, b"");
    match nix::unistd::User::from_name("alias").unwrap() {
        None => assert_eq!((o.code, o.out().as_str()), (116, "")),
        Some(u) => {
            assert_eq!(o.code, 0);
            let want = format!(
                "alias\0{}\0{}\0{}\0-\0root-x\0",
                u.uid,
                u.gid,
                u.dir.display()
            );
            assert_eq!(o.out(), want);
        }
    }
}

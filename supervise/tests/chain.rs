//! The chain-loading tools run as a user would, each compared with Debian's
//! daemontools binary when it is installed: same stdout, stderr and exit
//! code for good and bad input (envdir with NULs, trailing blanks, empty
//! files, a 1 MiB file and 10,000 entries; softlimit with absurd values;
//! setuidgid with an unknown account; setlock contention).

mod support;

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::*;

fn ours(name: &str) -> &'static str {
    match name {
        "envdir" => env!("CARGO_BIN_EXE_envdir"),
        "envuidgid" => env!("CARGO_BIN_EXE_envuidgid"),
        "setuidgid" => env!("CARGO_BIN_EXE_setuidgid"),
        "softlimit" => env!("CARGO_BIN_EXE_softlimit"),
        "setlock" => env!("CARGO_BIN_EXE_setlock"),
        "pgrphack" => env!("CARGO_BIN_EXE_pgrphack"),
        "fghack" => env!("CARGO_BIN_EXE_fghack"),
        _ => panic!("unknown program {name}"),
    }
}

fn exec(bin: &str, args: &[&str], cwd: &Path) -> Output {
    run(Command::new(bin).args(args).current_dir(cwd))
}

/// Run our `name` with `args` in `cwd`, check it against Debian's when
/// installed, and return our output.
fn both(name: &str, args: &[&str], cwd: &Path) -> Output {
    let out = exec(ours(name), args, cwd);
    let theirs = format!("/usr/bin/{name}");
    if have_peer(&theirs, name) {
        let t = exec(&theirs, args, cwd);
        assert_eq!(
            (
                t.status.code(),
                t.stdout.clone(),
                String::from_utf8_lossy(&t.stderr)
            ),
            (
                out.status.code(),
                out.stdout.clone(),
                String::from_utf8_lossy(&out.stderr)
            ),
            "{name} {args:?} differs from daemontools"
        );
    }
    out
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn envdir_values_follow_the_original() {
    let t = TempDir::new("chain-envdir");
    let e = t.join("env");
    fs::create_dir(&e).unwrap();
    fs::write(e.join("SP"), "a b \t\t \nsecond line\n").unwrap();
    fs::write(e.join("NUL"), b"x\0y\0\n").unwrap();
    fs::write(e.join("EMPTY"), "").unwrap();
    fs::write(e.join("BLANKLINE"), "\nrest\n").unwrap();
    fs::write(e.join(".hidden"), "no\n").unwrap();
    let show = r#"printf '%s|' "${SP-unset}" "${NUL-unset}" "${EMPTY-unset}" "${BLANKLINE-unset}"; env | grep -c hidden"#;
    let out = both("envdir", &["env", "sh", "-c", show], t.path());
    assert_eq!(text(&out.stdout), "a b|x\ny\n|unset||0\n");
    // An empty file removes a variable the caller had.
    let mut cmd = Command::new(ours("envdir"));
    cmd.args(["env", "sh", "-c", "echo ${EMPTY-removed}"])
        .current_dir(t.path())
        .env("EMPTY", "was set");
    assert_eq!(text(&run(&mut cmd).stdout), "removed\n");
}

#[test]
fn envdir_big_file_and_many_entries() {
    let t = TempDir::new("chain-envbig");
    let big = t.join("big");
    fs::create_dir(&big).unwrap();
    let mut content = b"first\n".to_vec();
    content.resize(1 << 20, b'y');
    fs::write(big.join("BIG"), &content).unwrap();
    let out = both("envdir", &["big", "sh", "-c", "echo $BIG"], t.path());
    assert_eq!(text(&out.stdout), "first\n");
    // A single 1 MiB line is too long for one environment string.
    fs::write(big.join("BIG"), vec![b'z'; 1 << 20]).unwrap();
    let out = both("envdir", &["big", "true"], t.path());
    assert_eq!(out.status.code(), Some(111));
    assert_eq!(
        text(&out.stderr),
        "envdir: fatal: unable to run true: argument list too long\n"
    );
    let many = t.join("many");
    fs::create_dir(&many).unwrap();
    for i in 0..10_000 {
        fs::write(many.join(format!("V{i:05}")), format!("{i}\n")).unwrap();
    }
    let out = both(
        "envdir",
        &["many", "sh", "-c", "env | grep -c '^V[0-9]'; echo $V09999"],
        t.path(),
    );
    assert_eq!(text(&out.stdout), "10000\n9999\n");
}

#[test]
fn envdir_errors() {
    let t = TempDir::new("chain-enverr");
    let out = both("envdir", &["missing", "true"], t.path());
    assert_eq!(out.status.code(), Some(111));
    assert_eq!(
        text(&out.stderr),
        "envdir: fatal: unable to switch to directory missing: file does not exist\n"
    );
    let e = t.join("e");
    fs::create_dir_all(e.join("sub")).unwrap();
    let out = both("envdir", &["e", "true"], t.path());
    assert_eq!(
        text(&out.stderr),
        "envdir: fatal: unable to read e/sub: is a directory\n"
    );
    let out = both("envdir", &["e"], t.path());
    assert_eq!(out.status.code(), Some(111));
    assert_eq!(text(&out.stderr), "envdir: usage: envdir dir child\n");
    fs::remove_dir(e.join("sub")).unwrap();
    let out = both("envdir", &["e", "./no-such-program"], t.path());
    assert_eq!(
        text(&out.stderr),
        "envdir: fatal: unable to run ./no-such-program: file does not exist\n"
    );
}

#[test]
fn softlimit_absurd_values() {
    let t = TempDir::new("chain-soft");
    let show = "ulimit -S -d; ulimit -S -s; ulimit -S -n";
    // Wraps modulo 2^64 like the original's scan_ulong, then is capped.
    let huge = "99999999999999999999999";
    let out = both(
        "softlimit",
        &["-d", huge, "sh", "-c", "ulimit -S -d"],
        t.path(),
    );
    assert_eq!(out.status.code(), Some(0));
    both("softlimit", &["-o", huge, "sh", "-c", show], t.path());
    both(
        "softlimit",
        &["-o", "=", "-m", "=", "sh", "-c", show],
        t.path(),
    );
    both("softlimit", &["-m", "0", "sh", "-c", "echo ran"], t.path());
    let out = both(
        "softlimit",
        &["-o100", "sh", "-c", "ulimit -S -n"],
        t.path(),
    );
    assert_eq!(text(&out.stdout), "100\n");
    for bad in [
        &["-o", "12x", "true"][..],
        &["-z", "1", "true"],
        &["-o", "5"],
        &[],
    ] {
        let out = both("softlimit", bad, t.path());
        assert_eq!(out.status.code(), Some(100), "{bad:?}");
        assert!(text(&out.stderr).ends_with("-t cpusecs] child\n"));
    }
}

#[test]
fn setuidgid_and_envuidgid() {
    let t = TempDir::new("chain-uid");
    let out = both("setuidgid", &["no-such-user-x", "true"], t.path());
    assert_eq!(out.status.code(), Some(111));
    assert_eq!(
        text(&out.stderr),
        "setuidgid: fatal: unknown account no-such-user-x\n"
    );
    let out = both("setuidgid", &["root"], t.path());
    assert_eq!(out.status.code(), Some(100));
    assert_eq!(
        text(&out.stderr),
        "setuidgid: usage: setuidgid account child\n"
    );
    let out = both("envuidgid", &["no-such-user-x", "true"], t.path());
    assert_eq!(
        text(&out.stderr),
        "envuidgid: fatal: unknown account no-such-user-x\n"
    );
    let out = both(
        "envuidgid",
        &["root", "sh", "-c", "echo $UID:$GID"],
        t.path(),
    );
    assert_eq!(text(&out.stdout), "0:0\n");
    if !is_root() {
        eprintln!("SKIP setuidgid to nobody: needs root");
        return;
    }
    let out = both(
        "setuidgid",
        &["nobody", "sh", "-c", "id -u; id -G"],
        t.path(),
    );
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    let want = format!("{}\n{}\n", nobody.uid, nobody.gid);
    assert_eq!(text(&out.stdout), want);
}

/// Start `setlock FILE sleep 1000` with `bin` and wait until it holds the lock.
fn holder(bin: &str, dir: &Path) -> Guard {
    let g = Guard::spawn(
        Command::new(bin)
            .args(["lockfile", "sh", "-c", "echo held > held; exec sleep 1000"])
            .current_dir(dir)
            .stdin(Stdio::null()),
    );
    assert!(wait_until(DEADLINE, || dir.join("held").exists()));
    g
}

#[test]
fn setlock_contention() {
    let t = TempDir::new("chain-lock");
    let theirs = Path::new("/usr/bin/setlock").exists();
    let holders: Vec<&str> = if theirs {
        vec![ours("setlock"), "/usr/bin/setlock"]
    } else {
        vec![ours("setlock")]
    };
    for h in holders {
        let mut g = holder(h, t.path());
        let out = both("setlock", &["-n", "lockfile", "echo", "got it"], t.path());
        assert_eq!(out.status.code(), Some(111));
        assert_eq!(
            text(&out.stderr),
            "setlock: fatal: unable to lock lockfile: temporary failure\n"
        );
        let out = both("setlock", &["-nx", "lockfile", "echo", "got it"], t.path());
        assert_eq!(
            (out.status.code(), text(&out.stdout)),
            (Some(0), String::new())
        );
        let out = both("setlock", &["-nxX", "lockfile", "true"], t.path());
        assert_eq!(out.status.code(), Some(111));
        // -N (the default) waits for the holder.
        let mut waiter = Guard::spawn(
            Command::new(ours("setlock"))
                .args(["-nN", "lockfile", "true"])
                .current_dir(t.path()),
        );
        std::thread::sleep(Duration::from_millis(300));
        assert!(waiter.try_status().is_none(), "-N did not wait");
        g.kill_all();
        let st = waiter.wait_for(DEADLINE).expect("waiter got the lock");
        assert_eq!(st.code(), Some(0));
        fs::remove_file(t.join("held")).unwrap();
    }
    let out = both("setlock", &["missing/lockfile", "true"], t.path());
    assert_eq!(
        text(&out.stderr),
        "setlock: fatal: unable to open missing/lockfile: file does not exist\n"
    );
    let out = both("setlock", &["-x", "missing/lockfile", "true"], t.path());
    assert_eq!((out.status.code(), out.stderr.len()), (Some(0), 0));
    let out = both("setlock", &["lockfile"], t.path());
    assert_eq!(out.status.code(), Some(100));
    assert_eq!(
        text(&out.stderr),
        "setlock: usage: setlock [ -nNxX ] file program [ arg ... ]\n"
    );
}

#[test]
fn pgrphack_starts_a_new_session() {
    let t = TempDir::new("chain-pgrp");
    let show =
        "set -- $(ps -o pid= -o pgid= -o sid= -p $$); [ $1 = $2 ] && [ $2 = $3 ] && echo leader";
    let out = both("pgrphack", &["sh", "-c", show], t.path());
    assert_eq!(text(&out.stdout), "leader\n");
    let out = both("pgrphack", &[], t.path());
    assert_eq!(
        (out.status.code(), text(&out.stderr)),
        (Some(100), "pgrphack: usage: pgrphack child\n".to_string())
    );
}

#[test]
fn fghack_waits_for_backgrounded_daemons() {
    let t = TempDir::new("chain-fg");
    let start = Instant::now();
    let out = both("fghack", &["sh", "-c", "sleep 1 & exit 3"], t.path());
    assert_eq!(out.status.code(), Some(3));
    assert!(start.elapsed() >= Duration::from_secs(1), "did not wait");
    let out = both("fghack", &["sh", "-c", "kill -9 $$"], t.path());
    assert_eq!(
        (out.status.code(), text(&out.stderr)),
        (Some(111), "fghack: fatal: child crashed\n".to_string())
    );
    let out = both("fghack", &["./nothing-here"], t.path());
    assert_eq!(
        text(&out.stderr),
        "fghack: fatal: unable to run ./nothing-here: file does not exist\n"
    );
}

#[test]
fn programs_run_with_the_callers_signal_dispositions() {
    // Rust's runtime would ignore SIGPIPE and the child would inherit that.
    let t = TempDir::new("chain-sig");
    fs::create_dir(t.join("env")).unwrap();
    let show = ["grep", "^SigIgn", "/proc/self/status"];
    let cases: [(&str, Vec<&str>); 6] = [
        ("envdir", [&["env"][..], &show].concat()),
        ("envuidgid", [&["root"][..], &show].concat()),
        ("softlimit", [&["-o", "100"][..], &show].concat()),
        ("setlock", [&["lockfile"][..], &show].concat()),
        ("pgrphack", show.to_vec()),
        ("fghack", show.to_vec()),
    ];
    for (name, args) in cases {
        let out = both(name, &args, t.path());
        let mask = text(&out.stdout);
        let mask = u64::from_str_radix(mask.trim_start_matches("SigIgn:").trim(), 16).unwrap();
        assert_eq!(
            mask & (1 << (libc::SIGPIPE - 1)),
            0,
            "{name} leaves SIGPIPE ignored"
        );
    }
}

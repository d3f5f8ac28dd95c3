//! dnscache-conf: the service directory it creates (files, modes, owners,
//! contents), its messages, and the same tree as Debian's dnscache-conf
//! (run as root in a private mount namespace that gives both the same
//! /etc/dnsroots.global).

mod support;

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use support::*;

const CONF: &str = env!("CARGO_BIN_EXE_dnscache-conf");

fn me() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .unwrap()
        .unwrap()
        .name
}

/// Every entry under `dir`: relative path -> (mode, uid, gid, contents).
fn tree(dir: &Path) -> BTreeMap<String, (u32, u32, u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        let md = std::fs::symlink_metadata(&p).unwrap();
        let rel = p.strip_prefix(dir).unwrap().display().to_string();
        let data = if md.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
            Vec::new()
        } else {
            std::fs::read(&p).unwrap()
        };
        out.insert(
            rel,
            (md.permissions().mode() & 0o7777, md.uid(), md.gid(), data),
        );
    }
    out
}

#[test]
fn creates_the_service_directory() {
    let tmp = TempDir::new("conf");
    let d = tmp.path().join("dnscache");
    let ds = d.to_str().unwrap();
    let user = me();
    let o = run(CONF, &[&user, &user, ds, "127.0.0.5"], &[]);
    assert_eq!((o.stderr.as_str(), o.code), ("", 0));
    let t = tree(&d);
    let names: Vec<&str> = t.keys().map(|s| s.as_str()).collect();
    assert_eq!(
        names,
        [
            "",
            "env",
            "env/CACHESIZE",
            "env/DATALIMIT",
            "env/IP",
            "env/IPSEND",
            "env/ROOT",
            "log",
            "log/main",
            "log/run",
            "log/status",
            "root",
            "root/ip",
            "root/ip/127.0.0.1",
            "root/servers",
            "root/servers/@",
            "run",
            "seed"
        ]
    );
    let mode = |n: &str| t[n].0;
    let text = |n: &str| String::from_utf8(t[n].3.clone()).unwrap();
    assert_eq!(mode(""), 0o3755);
    for dir in ["env", "log", "log/main", "root", "root/ip", "root/servers"] {
        assert_eq!(mode(dir), 0o2755, "{dir}");
    }
    for f in ["env/IP", "env/ROOT", "log/status", "root/servers/@"] {
        assert_eq!(mode(f), 0o644, "{f}");
    }
    assert_eq!((mode("run"), mode("log/run")), (0o755, 0o755));
    assert_eq!((mode("seed"), mode("root/ip/127.0.0.1")), (0o600, 0o600));
    assert_eq!(t["seed"].3.len(), 128);
    assert_eq!(text("env/IP"), "127.0.0.5\n");
    assert_eq!(text("env/IPSEND"), "0.0.0.0\n");
    assert_eq!(text("env/CACHESIZE"), "1000000\n");
    assert_eq!(text("env/DATALIMIT"), "3000000\n");
    assert_eq!(text("env/ROOT"), format!("{ds}/root\n"));
    let dnscache = Path::new(CONF).parent().unwrap().join("dnscache");
    assert_eq!(
        text("run"),
        format!(
            "#!/bin/sh\nexec 2>&1\nexec <seed\nexec envdir ./env sh -c '\n  exec envuidgid {user} softlimit -o250 -d \"$DATALIMIT\" {}\n'\n",
            dnscache.display()
        )
    );
    assert_eq!(
        text("log/run"),
        format!("#!/bin/sh\nexec setuidgid {user} multilog t ./main\n")
    );
    assert!(text("root/servers/@").lines().count() >= 1);

    let again = run(CONF, &[&user, &user, ds], &[]);
    assert_eq!(
        (again.stderr, again.code),
        (
            format!("dnscache-conf: fatal: unable to create {ds}: file already exists\n"),
            111
        )
    );
}

#[test]
fn usage_and_unknown_accounts() {
    let usage = "dnscache-conf: usage: dnscache-conf acct logacct /dnscache [ myip ]\n";
    for args in [&[][..], &["a", "b"][..], &["a", "b", "relative/dir"][..]] {
        let o = run(CONF, args, &[]);
        assert_eq!((o.stderr.as_str(), o.code), (usage, 100), "{args:?}");
    }
    let o = run(CONF, &["x", "no-such-account-here", "/nonexistent/d"], &[]);
    assert_eq!(
        (o.stderr.as_str(), o.code),
        (
            "dnscache-conf: fatal: unknown account no-such-account-here\n",
            111
        )
    );
    let o = run(CONF, &["x", &me(), "/nonexistent/d"], &[]);
    assert_eq!(
        (o.stderr.as_str(), o.code),
        (
            "dnscache-conf: fatal: unable to create /nonexistent/d: file does not exist\n",
            111
        )
    );
}

#[test]
fn same_tree_as_debians_dnscache_conf() {
    let theirs = "/usr/sbin/dnscache-conf";
    if !is_root() || !Path::new(theirs).is_file() || !have("unshare") {
        eprintln!("skipped: needs root, unshare and Debian's djbdns-conf");
        return;
    }
    let tmp = TempDir::new("confcmp");
    let etc = tmp.path().join("etc");
    std::fs::create_dir(&etc).unwrap();
    for f in ["passwd", "group", "nsswitch.conf"] {
        let _ = std::fs::copy(Path::new("/etc").join(f), etc.join(f));
    }
    std::fs::write(etc.join("dnsroots.global"), "198.41.0.4\n192.33.4.12\n").unwrap();
    let script = format!("mount --bind {} /etc && exec \"$0\" \"$@\"", etc.display());
    let make = |prog: &str, dir: &Path| {
        run(
            "unshare",
            &[
                "-m",
                "sh",
                "-c",
                &script,
                prog,
                "nobody",
                "nobody",
                dir.to_str().unwrap(),
                "127.0.0.7",
            ],
            &[],
        )
    };
    let (a, b) = (tmp.path().join("theirs"), tmp.path().join("ours"));
    let o = make(theirs, &a);
    if o.code != 0 {
        eprintln!(
            "skipped: cannot mount in a private namespace here: {}",
            o.stderr
        );
        return;
    }
    assert_eq!(make(CONF, &b).code, 0);
    let (mut ta, mut tb) = (tree(&a), tree(&b));
    // What may differ: the random seed, where each dnscache lives, the
    // directory's own name, and Debian's larger DATALIMIT.
    for t in [&mut ta, &mut tb] {
        t.get_mut("seed").unwrap().3.clear();
        t.get_mut("env/ROOT").unwrap().3.clear();
        t.get_mut("env/DATALIMIT").unwrap().3.clear();
        let run = String::from_utf8(t["run"].3.clone()).unwrap();
        let cut = run.rfind(" /").unwrap();
        let rest = &run[cut..];
        let end = rest.find('\n').unwrap();
        t.get_mut("run").unwrap().3 = format!("{}{}", &run[..cut], &rest[end..]).into_bytes();
    }
    assert_eq!(tb, ta);
}

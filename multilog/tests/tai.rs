//! tai64n and tai64nlocal against Debian's: each reads the other's labels,
//! and tai64nlocal's output is byte-identical in fixed time zones.

mod support;

use std::path::{Path, PathBuf};
use support::*;

fn originals() -> Option<(PathBuf, PathBuf)> {
    Some((debian("tai64n")?, debian("tai64nlocal")?))
}

fn zone_available(tz: &str) -> bool {
    let ok = Path::new("/usr/share/zoneinfo").join(tz).exists();
    if !ok {
        eprintln!("skipping zone {tz}: tzdata not installed");
    }
    ok
}

const INPUT: &[u8] = b"first line\n\nwith\0nul\n@not a label\nlast without newline";

/// Labels chosen to cover the epoch, DST changes and nanoseconds.
const LABELS: &[u8] = b"@400000003b9aca0a00000005 2001\n\
@4000000000000000000001f4 before 1970\n\
@400000004c8a3a4e3b9ac9ff dst summer\n\
@4000000054b6e00a00000000 winter\n\
@400000006b0294be1e91a924\n\
plain line\n\
 @400000003b9aca0a00000005 not at start\n";

#[test]
fn our_tai64n_labels_arrival_as_daemontools() {
    let d = TempDir::new("tai");
    let before = common::tai::Tai64n::now();
    let out = run(Path::new(TAI64N), &[], d.path(), INPUT);
    let after = common::tai::Tai64n::now();
    assert_eq!(out.code, Some(0));
    let mut want = Vec::new();
    for line in INPUT.split_inclusive(|&b| b == b'\n') {
        let got = &out.stdout[want.len()..];
        let label = common::tai::Tai64n::parse_hex(&got[1..25]).unwrap();
        assert!(before.secs <= label.secs && label.secs <= after.secs);
        assert_eq!(
            label.nanos % 1000,
            500,
            "microseconds + 500 ns as daemontools"
        );
        want.extend_from_slice(&got[..25]);
        want.push(b' ');
        want.extend_from_slice(line);
    }
    assert_eq!(out.stdout, want);
}

#[test]
fn tai64nlocal_matches_the_original_in_fixed_zones() {
    let Some((_, their_local)) = originals() else {
        return;
    };
    let d = TempDir::new("tailocal");
    for tz in ["UTC", "Europe/Paris", "America/New_York"] {
        if !zone_available(tz) {
            continue;
        }
        let env = [("TZ", tz)];
        let theirs = run_env(&their_local, &[], d.path(), LABELS, &env, 30);
        let ours = run_env(Path::new(TAI64NLOCAL), &[], d.path(), LABELS, &env, 30);
        assert_eq!(theirs.code, Some(0));
        assert_eq!(ours.code, Some(0));
        assert_eq!(
            String::from_utf8_lossy(&theirs.stdout),
            String::from_utf8_lossy(&ours.stdout),
            "TZ={tz}"
        );
    }
}

#[test]
fn each_reads_the_others_labels() {
    let Some((their_n, their_local)) = originals() else {
        return;
    };
    let d = TempDir::new("taicross");
    let env = [("TZ", "Europe/Paris")];
    for stamper in [their_n.as_path(), Path::new(TAI64N)] {
        let stamped = run(stamper, &[], d.path(), INPUT).stdout;
        let theirs = run_env(&their_local, &[], d.path(), &stamped, &env, 30);
        let ours = run_env(Path::new(TAI64NLOCAL), &[], d.path(), &stamped, &env, 30);
        assert_eq!(
            theirs.stdout,
            ours.stdout,
            "labels by {}",
            stamper.display()
        );
        // And the text after the local time is the input again.
        let text: Vec<u8> = ours
            .stdout
            .split_inclusive(|&b| b == b'\n')
            .flat_map(|l| l[30..].to_vec())
            .collect();
        assert_eq!(text, INPUT);
    }
}

#[test]
fn multilog_t_labels_read_by_both_tai64nlocal() {
    let Some((_, their_local)) = originals() else {
        return;
    };
    let d = TempDir::new("mlt");
    assert_eq!(
        run(Path::new(MULTILOG), &["t", "./log"], d.path(), b"a\nb\n").code,
        Some(0)
    );
    let current = std::fs::read(d.join("log/current")).unwrap();
    let env = [("TZ", "UTC")];
    let theirs = run_env(&their_local, &[], d.path(), &current, &env, 30);
    let ours = run_env(Path::new(TAI64NLOCAL), &[], d.path(), &current, &env, 30);
    assert_eq!(theirs.stdout, ours.stdout);
    assert!(ours.stdout.ends_with(b" b\n"));
}

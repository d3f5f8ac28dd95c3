//! Programs the qmail tools run start with SIGPIPE at its default, as under
//! the C originals: Rust's runtime ignores it in our binaries, and an
//! ignored signal would otherwise survive into the program (qmail-local's
//! `|prog` deliveries, except, preline).

mod qloc_support;

use qloc_support::*;
use std::path::Path;

const MSG: &[u8] = b"Subject: hello\n\nbody\n";

/// The SigIgn mask the program recorded into `file`.
fn ignored(file: &Path) -> u64 {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let mask = text.trim().trim_start_matches("SigIgn:").trim();
    u64::from_str_radix(mask, 16).unwrap_or_else(|_| panic!("no SigIgn line: {text:?}"))
}

fn assert_sigpipe_default(who: &str, file: &Path) {
    let pipe = 1u64 << (libc::SIGPIPE - 1);
    assert_eq!(ignored(file) & pipe, 0, "{who} leaves SIGPIPE ignored");
}

#[test]
fn qmail_local_program_delivery_gets_default_sigpipe() {
    let h = TempDir::new("home");
    h.write(".qmail", b"|grep ^SigIgn /proc/self/status > sigign\n");
    let q = TempDir::new("qhome");
    let home = h.path().display().to_string();
    let mut c = bin(env!("CARGO_BIN_EXE_qmail-local"), q.path());
    c.args(["--", "joe", &home, "joe", "", "", "example.com"])
        .args(["sender@remote.org", "./Maildir/"]);
    let o = run_with(c, MSG);
    assert_eq!(
        (o.code, o.out().as_str()),
        (0, "did 0+0+1\n"),
        "{}",
        o.err()
    );
    assert_sigpipe_default("qmail-local", &h.path().join("sigign"));
}

#[test]
fn wrappers_run_programs_with_default_sigpipe() {
    let t = TempDir::new("wrap");
    let q = TempDir::new("qhome");
    for name in ["except", "preline", "bouncesaying"] {
        let file = t.path().join(name);
        let script = format!("grep ^SigIgn /proc/self/status > {}", file.display());
        let mut c = match name {
            "except" => bin(env!("CARGO_BIN_EXE_except"), q.path()),
            "preline" => {
                let mut c = bin(env!("CARGO_BIN_EXE_preline"), q.path());
                c.env("UFLINE", "From a\n")
                    .env("RPLINE", "")
                    .env("DTLINE", "");
                c
            }
            _ => {
                let mut c = bin(env!("CARGO_BIN_EXE_bouncesaying"), q.path());
                c.arg("refused");
                c
            }
        };
        c.args(["sh", "-c", &script]);
        run_with(c, MSG);
        assert_sigpipe_default(name, &file);
    }
}

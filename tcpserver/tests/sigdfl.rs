//! Programs exec'd by argv0, fixcrio, recordio and rblsmtpd start with
//! SIGPIPE at its default, as under the C originals: Rust's runtime ignores
//! it in our binaries and an ignored signal survives exec.

mod support;
use std::path::Path;
use std::process::{Command, Stdio};
use support::*;

/// Whether the SigIgn mask the program recorded into `file` has SIGPIPE.
fn sigpipe_ignored(file: &Path) -> bool {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let mask = text.trim().trim_start_matches("SigIgn:").trim();
    let mask = u64::from_str_radix(mask, 16).unwrap_or_else(|_| panic!("no SigIgn: {text:?}"));
    mask & (1 << (libc::SIGPIPE - 1)) != 0
}

#[test]
fn exec_d_programs_get_default_sigpipe() {
    let t = TempDir::new("sigdfl");
    for tool in ["argv0", "fixcrio", "recordio", "rblsmtpd"] {
        let file = t.path(tool);
        let script = format!("grep ^SigIgn /proc/self/status > {}", file.display());
        let mut c = Command::new(bin(tool));
        if tool == "argv0" {
            c.args(["sh", "sh"]);
        } else {
            c.arg("sh");
        }
        c.args(["-c", &script])
            .env("RBLSMTPD", "")
            .env("TCPREMOTEIP", "127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let out = wait_output(c.spawn().unwrap());
        assert_eq!(out.status.code(), Some(0), "{tool}: {out:?}");
        assert!(!sigpipe_ignored(&file), "{tool} leaves SIGPIPE ignored");
    }
}

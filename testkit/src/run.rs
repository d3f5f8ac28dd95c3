//! Running a program to completion with captured output and a deadline past
//! which it is killed by pid, so a hung program fails its test instead of
//! hanging the suite.

use std::io::{Read, Write};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::process::Guard;

/// Run `cmd` with empty stdin, stdout and stderr captured, killing it if it
/// outlives `limit`.
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> Output {
    run_with_input(cmd, b"", limit)
}

/// Run `cmd` with `input` on stdin; panics (after killing it) when it
/// outlives `limit`.
pub fn run_with_input(cmd: &mut Command, input: &[u8], limit: Duration) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut g = Guard::spawn(cmd);
    let mut stdin = g.child.stdin.take().expect("stdin");
    let input = input.to_vec();
    // Threads are fine here: the test process is not a forking program, and
    // a writer blocked on a full pipe must not keep the readers from running.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out_reader = drain(g.child.stdout.take().expect("stdout"));
    let err_reader = drain(g.child.stderr.take().expect("stderr"));
    let status = match g.wait_for(limit) {
        Some(st) => st,
        None => {
            g.kill_all();
            panic!("{cmd:?} still running after {limit:?}")
        }
    };
    let _ = writer.join();
    Output {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
}

/// Read a pipe to its end on a helper thread.
fn drain<R: Read + Send + 'static>(mut r: R) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = r.read_to_end(&mut v);
        v
    })
}

//! svscanboot: start svscan at boot with its error output shown in `ps`
//! through readproctitle (daemontools 0.76, as Debian packages it). It first
//! tells any supervise left over from before to exit (`svc -dx`), then runs
//! `svscan DIR 2>&1 | readproctitle service errors: ....` with an
//! environment holding only the fixed PATH, and stdio on /dev/null.

use common::pathexec;
use common::{Error, Result};
use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{dup2, fork, ForkResult, Pid};
use std::ffi::OsString;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;

/// The PATH the original script sets for everything it runs.
pub const PATH: &str =
    "/command:/usr/local/bin:/usr/local/sbin:/bin:/sbin:/usr/bin:/usr/sbin:/usr/X11R6/bin";

/// daemontools' scan directory (Debian's script hard-codes /etc/service).
pub const DEFAULT_DIR: &str = "/service";

/// `svscanboot [dir]`; `args` excludes argv[0].
pub fn run(args: Vec<OsString>) -> Result<()> {
    let dir = args.first().cloned().unwrap_or_else(|| DEFAULT_DIR.into());
    std::env::set_var("PATH", PATH);
    null_stdio()?;
    let svc = stop_leftovers(&dir)?;
    wait(svc);
    let (rd, wr) = nix::unistd::pipe().map_err(|e| Error::sys("unable to create pipe", e))?;
    let mut title = vec![
        OsString::from("readproctitle"),
        "service".into(),
        "errors:".into(),
    ];
    title.push(".".repeat(400).into());
    let svscan = spawn(
        &["svscan".into(), dir],
        &[(wr.as_raw_fd(), 1), (wr.as_raw_fd(), 2)],
    )?;
    let reader = spawn(&title, &[(rd.as_raw_fd(), 0)])?;
    drop((rd, wr));
    wait(svscan);
    match wait(reader) {
        Some(0) => Ok(()),
        Some(code) => Err(Error::silent(code)),
        None => Err(Error::silent(111)),
    }
}

fn null_stdio() -> Result<()> {
    let null = open("/dev/null", OFlag::O_RDWR, Mode::empty())
        .map_err(|e| Error::sys("unable to open /dev/null", e))?;
    for fd in 0..3 {
        dup2(null, fd).map_err(|e| Error::sys("unable to set up descriptors", e))?;
    }
    if null > 2 {
        let _ = nix::unistd::close(null);
    }
    Ok(())
}

/// `svc -dx DIR/* DIR/*/log`, with the shell's glob rules (no dot entries;
/// a pattern without matches is passed on as it is).
fn stop_leftovers(dir: &OsString) -> Result<Pid> {
    let mut services: Vec<OsString> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.file_name().as_bytes().first() != Some(&b'.'))
                .map(|e| e.path().into_os_string())
                .collect()
        })
        .unwrap_or_default();
    services.sort();
    let logs: Vec<OsString> = services
        .iter()
        .map(|s| std::path::Path::new(s).join("log"))
        .filter(|p| p.exists())
        .map(|p| p.into_os_string())
        .collect();
    let mut argv = vec![OsString::from("svc"), "-dx".into()];
    argv.extend(glob_or_pattern(services, dir, "*"));
    argv.extend(glob_or_pattern(logs, dir, "*/log"));
    spawn(&argv, &[])
}

fn glob_or_pattern(found: Vec<OsString>, dir: &OsString, pat: &str) -> Vec<OsString> {
    if !found.is_empty() {
        return found;
    }
    let mut p = dir.clone();
    p.push("/");
    p.push(pat);
    vec![p]
}

/// Fork and exec `argv` with only PATH in its environment and the given
/// descriptor moves; a failed exec is reported like the shell would.
fn spawn(argv: &[OsString], moves: &[(i32, i32)]) -> Result<Pid> {
    // SAFETY: single-threaded; the child only moves descriptors and execs.
    match unsafe { fork() }.map_err(|e| Error::sys("unable to fork", e))? {
        ForkResult::Parent { child } => Ok(child),
        ForkResult::Child => {
            for &(from, to) in moves {
                let _ = dup2(from, to);
            }
            for (k, _) in std::env::vars_os() {
                if k != "PATH" {
                    std::env::remove_var(k);
                }
            }
            let e = pathexec::run(argv);
            let what = format!("unable to run {}", argv[0].to_string_lossy());
            Error::sys(what, e).exit("svscanboot")
        }
    }
}

fn wait(pid: Pid) -> Option<i32> {
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => return Some(code),
            Ok(WaitStatus::Signaled(..)) => return None,
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return None,
        }
    }
}

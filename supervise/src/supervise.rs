//! supervise: starts ./run in a service directory, restarts it when it exits
//! (after the one-second pause daemontools takes after every start), obeys
//! the letters svc writes to supervise/control, and keeps supervise/status
//! current for svstat. Single-threaded: one poll over the SIGCHLD self-pipe,
//! the control fifo and, when the service asked for it, the readiness pipe.

use crate::control::{self, Command, Control};
use crate::readiness::{self, Event};
use crate::status::{self, Status, Want};
use common::error::{warn, Errno, Error, Result};
use common::tai::Tai64n;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::ffi::{CString, OsString};
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::time::{Duration, Instant};

const PROG: &str = "supervise";

/// `supervise dir`: `args` is the whole argv.
pub fn run(args: &[OsString]) -> Result<()> {
    let dir = match args {
        [_, dir] => dir.to_string_lossy().into_owned(),
        _ => return Err(Error::usage("supervise dir")),
    };
    // Rust ignores SIGPIPE at startup; the service must inherit the default.
    unsafe {
        let _ = nix::sys::signal::signal(Signal::SIGPIPE, nix::sys::signal::SigHandler::SigDfl);
    }
    let mut sv = Supervisor::setup(dir)?;
    sv.main_loop();
    sv.announce();
    Ok(())
}

/// Everything supervise knows, owned by its loop.
struct Supervisor {
    /// The directory as given, for messages.
    dir: String,
    selfpipe: File,
    control: Control,
    _lock: File,
    /// supervise/ok, held open (read end) for supervise's lifetime.
    _ok: Option<File>,
    /// The service's pid, 0 while it is down.
    pid: i32,
    /// When `pid` last changed.
    when: Tai64n,
    paused: bool,
    want: Want,
    /// `x` was received: exit once the service is down.
    exiting: bool,
    /// A fork failed: start again when the loop comes round.
    retry_start: bool,
    /// Whether the last read of a non-fifo control file found a byte.
    control_busy: bool,
    ready: Option<readiness::Pipe>,
    run_path: CString,
}

impl Supervisor {
    /// Everything the original does before its loop, in its order, with its messages.
    fn setup(dir: String) -> Result<Supervisor> {
        let selfpipe = sigchld_pipe(&dir)?;
        std::env::set_current_dir(&dir)
            .map_err(|e| Error::sys(format!("unable to chdir to {dir}"), e))?;
        let want = initial_want(&dir)?;
        make_supervise_dir();
        let lock = acquire_lock(&dir)?;
        let control = control::open_control(&dir)?;
        let mut sv = Supervisor {
            dir,
            selfpipe,
            control,
            _lock: lock,
            _ok: None,
            pid: 0,
            when: Tai64n::now(),
            paused: false,
            want,
            exiting: false,
            retry_start: false,
            control_busy: false,
            ready: None,
            run_path: CString::new("./run").expect("no NUL"),
        };
        sv.pid_change();
        sv.announce();
        sv._ok = Some(control::open_ok(&sv.dir)?);
        if sv.want == Want::Up {
            sv.try_start();
        }
        Ok(sv)
    }

    /// Wait for a child, a command or readiness; handle it; update status.
    fn main_loop(&mut self) {
        self.announce();
        loop {
            if self.exiting && self.pid == 0 {
                return;
            }
            self.wait_for_events();
            self.drain_selfpipe();
            if self.reap() && self.exiting {
                return;
            }
            self.read_command();
            self.read_readiness();
            if self.retry_start && self.pid == 0 {
                self.retry_start = false;
                if self.want != Want::Down {
                    self.try_start();
                }
            }
        }
    }

    fn wait_for_events(&mut self) {
        let mut fds = [pollfd(self.selfpipe.as_raw_fd()), pollfd(-1), pollfd(-1)];
        let mut timeout = -1;
        if self.control.is_fifo {
            fds[1].fd = self.control.read.as_raw_fd();
        } else {
            timeout = if self.control_busy { 0 } else { 1000 };
        }
        if let Some(p) = &self.ready {
            fds[2].fd = p.fd();
        }
        if self.retry_start {
            timeout = 0;
        }
        // Negative fds are ignored by poll; EINTR just means "look again".
        unsafe { libc::poll(fds.as_mut_ptr(), 3, timeout) };
    }

    fn drain_selfpipe(&mut self) {
        let mut buf = [0u8; 32];
        while matches!(self.selfpipe.read(&mut buf), Ok(n) if n > 0) {}
    }

    /// Collect dead children; true when the service itself died.
    fn reap(&mut self) -> bool {
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => return false,
                Ok(st) => {
                    if st.pid().map(Pid::as_raw) == Some(self.pid) && self.pid != 0 {
                        self.service_died();
                        return true;
                    }
                }
            }
        }
    }

    fn service_died(&mut self) {
        self.pid = 0;
        self.pid_change();
        self.announce();
        if !self.exiting && self.want == Want::Up {
            self.try_start();
        }
    }

    /// One command byte per round, as the original (the poll comes back at once if more wait).
    fn read_command(&mut self) {
        let mut b = [0u8; 1];
        self.control_busy = matches!(self.control.read.read(&mut b), Ok(1));
        if self.control_busy {
            if let Some(cmd) = Command::from_byte(b[0]) {
                self.obey(cmd);
            }
        }
    }

    fn obey(&mut self, cmd: Command) {
        match cmd {
            Command::Down => {
                self.want = Want::Down;
                if self.pid != 0 {
                    self.signal(Signal::SIGTERM);
                    self.signal(Signal::SIGCONT);
                    self.paused = false;
                }
                self.announce();
            }
            Command::Up => self.want_started(Want::Up),
            Command::Once => self.want_started(Want::Nothing),
            Command::Pause => self.set_paused(true, Signal::SIGSTOP),
            Command::Cont => self.set_paused(false, Signal::SIGCONT),
            Command::Signal(sig) => self.signal(sig),
            Command::Exit => {
                self.exiting = true;
                self.announce();
            }
        }
    }

    fn want_started(&mut self, want: Want) {
        self.want = want;
        self.announce();
        if self.pid == 0 {
            self.try_start();
        }
    }

    fn set_paused(&mut self, paused: bool, sig: Signal) {
        self.paused = paused;
        self.announce();
        self.signal(sig);
    }

    fn signal(&self, sig: Signal) {
        if self.pid != 0 {
            let _ = kill(Pid::from_raw(self.pid), sig);
        }
    }

    fn read_readiness(&mut self) {
        let Some(p) = self.ready.as_mut() else { return };
        match p.read() {
            Event::Pending => {}
            Event::Closed => self.ready = None,
            Event::Ready => {
                self.ready = None;
                if let Err((step, e)) = readiness::mark(Tai64n::now()) {
                    self.warn_file(step, "ready", e);
                }
            }
        }
    }

    /// Fork and exec ./run, then sleep a second without reading commands
    /// (so a crashing service restarts at most once a second).
    fn try_start(&mut self) {
        let notify = self.notification_pipe();
        match unsafe { nix::unistd::fork() } {
            Err(e) => {
                let why = Errno::from(e).text();
                warn(
                    PROG,
                    format_args!(
                        "unable to fork for {}, sleeping 60 seconds: {why}",
                        self.dir
                    ),
                );
                std::thread::sleep(Duration::from_secs(60));
                self.retry_start = true;
            }
            Ok(nix::unistd::ForkResult::Child) => self.exec_run(notify.map(|(_, w, n)| (w, n))),
            Ok(nix::unistd::ForkResult::Parent { child }) => {
                self.paused = false;
                self.pid = child.as_raw();
                self.pid_change();
                self.ready = notify.map(|(p, _, _)| p);
                self.announce();
                self.sleep_after_start();
            }
        }
    }

    /// The readiness pipe for the next start, if the service wants one.
    fn notification_pipe(&self) -> Option<(readiness::Pipe, OwnedFd, RawFd)> {
        let n = match readiness::wanted_fd() {
            Ok(n) => n?,
            Err(why) => {
                let (dir, file) = (&self.dir, readiness::FD_FILE);
                warn(PROG, format_args!("unable to read {dir}/{file}: {why}"));
                return None;
            }
        };
        match readiness::Pipe::new() {
            Ok((p, w)) => Some((p, w, n)),
            Err(e) => {
                let why = Errno::from(e).text();
                warn(
                    PROG,
                    format_args!("unable to create pipe for {}: {why}", self.dir),
                );
                None
            }
        }
    }

    /// In the child: become ./run, or say why not and exit 111.
    fn exec_run(&self, notify: Option<(OwnedFd, RawFd)>) -> ! {
        unsafe {
            let _ = nix::sys::signal::signal(Signal::SIGCHLD, nix::sys::signal::SigHandler::SigDfl);
        }
        if let Some((w, n)) = &notify {
            let _ = readiness::install_in_child(w, *n);
        }
        let argv = [self.run_path.as_c_str()];
        let e = nix::unistd::execv(&self.run_path, &argv).unwrap_err();
        let line = format!(
            "{PROG}: fatal: unable to start {}/run: {}\n",
            self.dir,
            Errno::from(e).text()
        );
        let _ = nix::unistd::write(std::io::stderr(), line.as_bytes());
        unsafe { libc::_exit(111) }
    }

    /// The one-second pause after a start; only the readiness pipe is read
    /// meanwhile, so that its stamp is exact.
    fn sleep_after_start(&mut self) {
        let end = Instant::now() + Duration::from_secs(1);
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            let Some(fd) = self.ready.as_ref().map(|p| p.fd()) else {
                std::thread::sleep(left);
                return;
            };
            let mut fds = [pollfd(fd)];
            let ms = left.as_millis().clamp(1, 1000) as i32;
            if unsafe { libc::poll(fds.as_mut_ptr(), 1, ms) } > 0 {
                self.read_readiness();
            }
        }
    }

    /// The pid changed: new stamp, and readiness belongs to the old process.
    fn pid_change(&mut self) {
        self.when = Tai64n::now();
        self.ready = None;
        readiness::clear();
    }

    /// Write supervise/status; failures are warnings, supervise carries on.
    fn announce(&self) {
        let st = Status::new(self.when, self.pid as u32, self.paused, self.want);
        if let Err((step, e)) =
            status::replace_file("supervise/status.new", "supervise/status", &st.encode())
        {
            self.warn_file(step, "status", e);
        }
    }

    /// The original's warnings for writing supervise/NAME.new and renaming it.
    fn warn_file(&self, step: &str, name: &str, e: Errno) {
        let dir = &self.dir;
        let why = if e.0 == 0 { "partial write" } else { e.text() };
        match step {
            "rename" => warn(
                PROG,
                format_args!("unable to rename {dir}/supervise/{name}.new to {name}: {why}"),
            ),
            _ => warn(
                PROG,
                format_args!("unable to {step} {dir}/supervise/{name}.new: {why}"),
            ),
        }
    }
}

fn pollfd(fd: RawFd) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

/// The self-pipe SIGCHLD writes to; its read end is returned.
fn sigchld_pipe(dir: &str) -> Result<File> {
    use nix::fcntl::OFlag;
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)
        .map_err(|e| Error::sys(format!("unable to create pipe for {dir}"), e))?;
    signal_hook::low_level::pipe::register(libc::SIGCHLD, w)
        .map_err(|e| Error::sys(format!("unable to create pipe for {dir}"), e))?;
    Ok(File::from(r))
}

/// Up unless the service directory holds a file named `down`.
fn initial_want(dir: &str) -> Result<Want> {
    match std::fs::metadata("down") {
        Ok(_) => Ok(Want::Down),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Want::Up),
        Err(e) => Err(Error::sys(format!("unable to stat {dir}/down"), e)),
    }
}

/// mkdir supervise (mode 700); as Debian's supervise, when it is a dangling
/// symlink (supervise/ kept elsewhere, e.g. on tmpfs), create its target.
fn make_supervise_dir() {
    let mut b = std::fs::DirBuilder::new();
    b.mode(0o700);
    if let Err(e) = b.create("supervise") {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            if let Ok(target) = std::fs::read_link("supervise") {
                let _ = b.create(target);
            }
        }
    }
}

/// Open supervise/lock and take the exclusive lock without waiting.
fn acquire_lock(dir: &str) -> Result<File> {
    let fail = |e: Errno| Error::sys(format!("unable to acquire {dir}/supervise/lock"), e);
    let f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NONBLOCK)
        .open("supervise/lock")
        .map_err(|e| fail(Errno::from(e)))?;
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == -1 {
        return Err(fail(Errno::last()));
    }
    Ok(f)
}

//! The small stream tools of ucspi-tcp: addcr, delcr (filters), fixcrio and
//! recordio (run a program with a relay on its input and output, the relay
//! being a child so the program keeps the pid its caller started), argv0.

use common::error::Errno;
use common::{Error, Result};
use std::ffi::{CString, OsString};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStringExt;

/// Copy stdin to stdout through `f`, which sees each chunk and the state
/// carried between chunks.
fn filter(mut f: impl FnMut(&[u8], &mut Vec<u8>)) -> Result<()> {
    let mut inp = io::stdin().lock();
    let mut out = io::stdout().lock();
    let mut buf = vec![0u8; 64 * 1024];
    let mut conv = Vec::with_capacity(128 * 1024);
    loop {
        let n = match inp.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::sys("unable to read input", e)),
        };
        conv.clear();
        f(&buf[..n], &mut conv);
        out.write_all(&conv)
            .map_err(|e| Error::sys("unable to write output", e))?;
    }
    conv.clear();
    f(&[], &mut conv);
    out.write_all(&conv)
        .and_then(|()| out.flush())
        .map_err(|e| Error::sys("unable to write output", e))
}

/// CR before every LF.
pub fn add_cr(chunk: &[u8], out: &mut Vec<u8>) {
    for &c in chunk {
        if c == b'\n' {
            out.push(b'\r');
        }
        out.push(c);
    }
}

/// Removes the CR of each CR LF; `held` carries a CR across chunks. An
/// empty chunk (end of input) releases a held CR, as Debian's delcr does.
pub fn del_cr(chunk: &[u8], out: &mut Vec<u8>, held: &mut bool) {
    if chunk.is_empty() && *held {
        out.push(b'\r');
        *held = false;
    }
    for &c in chunk {
        if *held && c != b'\n' {
            out.push(b'\r');
        }
        *held = c == b'\r';
        if !*held {
            out.push(c);
        }
    }
}

/// CR before each LF that lacks one; `last` is the previous byte.
pub fn fix_cr(chunk: &[u8], out: &mut Vec<u8>, last: &mut u8) {
    for &c in chunk {
        if c == b'\n' && *last != b'\r' {
            out.push(b'\r');
        }
        out.push(c);
        *last = c;
    }
}

pub fn addcr() -> Result<()> {
    filter(add_cr)
}

pub fn delcr() -> Result<()> {
    let mut held = false;
    filter(move |c, o| del_cr(c, o, &mut held))
}

/// `argv0 realname program [ arg ... ]`
pub fn argv0(args: &[OsString]) -> Result<()> {
    if args.len() < 2 {
        return Err(Error::usage("argv0 realname program [ arg ... ]"));
    }
    let e = exec(&args[0], &args[1..]);
    Err(Error::sys(
        format!("unable to run {}", args[0].to_string_lossy()),
        e,
    ))
}

/// execvp `file` with `argv`; returns only on failure.
pub fn exec(file: &OsString, argv: &[OsString]) -> Errno {
    let cs = |s: &OsString| CString::new(s.clone().into_vec()).ok();
    let (Some(f), Some(a)) = (cs(file), argv.iter().map(cs).collect::<Option<Vec<_>>>()) else {
        return Errno(libc::EINVAL);
    };
    let mut ptrs: Vec<*const libc::c_char> = a.iter().map(|s| s.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    common::sig::reset_for_exec();
    // SAFETY: NULL-terminated argv of valid C strings.
    unsafe { libc::execvp(f.as_ptr(), ptrs.as_ptr()) };
    Errno::last()
}

/// Run `prog` with pipes on its stdin and stdout; the forked child relays
/// between them and the real stdin/stdout through `relay`.
fn with_relay(prog: &[OsString], relay: impl FnOnce(i32, i32, libc::pid_t) -> i32) -> Result<()> {
    let (to_prog, from_prog) = (pipe()?, pipe()?);
    let prog_pid = std::process::id() as libc::pid_t;
    // SAFETY: single-threaded; the child only relays and exits.
    match unsafe { libc::fork() } {
        -1 => Err(Error::sys("unable to fork", Errno::last())),
        0 => {
            // SAFETY: closing the program's ends in the relay.
            unsafe {
                libc::close(to_prog[0]);
                libc::close(from_prog[1]);
            }
            let code = relay(to_prog[1], from_prog[0], prog_pid);
            // SAFETY: leave without running the parent's cleanup.
            unsafe { libc::_exit(code) }
        }
        _ => {
            // SAFETY: moving the pipe ends onto 0 and 1 before exec.
            unsafe {
                if libc::dup2(to_prog[0], 0) == -1 || libc::dup2(from_prog[1], 1) == -1 {
                    return Err(Error::sys("unable to set up descriptors", Errno::last()));
                }
                for fd in [to_prog[0], to_prog[1], from_prog[0], from_prog[1]] {
                    libc::close(fd);
                }
            }
            let e = exec(&prog[0], prog);
            Err(Error::sys(
                format!("unable to run {}", prog[0].to_string_lossy()),
                e,
            ))
        }
    }
}

fn pipe() -> Result<[i32; 2]> {
    let mut fds = [0; 2];
    // SAFETY: room for two descriptors.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } == -1 {
        return Err(Error::sys("unable to create pipe", Errno::last()));
    }
    Ok(fds)
}

/// Copy between (stdin -> to_prog) and (from_prog -> stdout) until the
/// program's output ends; `seen(dir, data)` is told of every packet
/// (dir `<` input, `>` output; empty data = end) and may rewrite it.
pub fn relay(to_prog: i32, from_prog: i32, mut seen: impl FnMut(u8, &[u8], &mut Vec<u8>)) -> i32 {
    let mut input_open = true;
    let mut to_prog = Some(to_prog);
    let mut buf = vec![0u8; 8192];
    let mut out = Vec::with_capacity(16384);
    loop {
        let mut fds = [
            libc::pollfd {
                fd: if input_open { 0 } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: from_prog,
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: two valid pollfds.
        if unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) } == -1 {
            continue;
        }
        if fds[1].revents != 0 {
            let n = read_fd(from_prog, &mut buf);
            out.clear();
            seen(b'>', &buf[..n], &mut out);
            if n == 0 {
                return 0;
            }
            if !write_all(1, &out) {
                return 111;
            }
        }
        if input_open && fds[0].revents != 0 {
            let n = read_fd(0, &mut buf);
            out.clear();
            seen(b'<', &buf[..n], &mut out);
            let ok = to_prog.is_some_and(|fd| write_all(fd, &out));
            if n == 0 || !ok {
                input_open = false;
                if let Some(fd) = to_prog.take() {
                    // SAFETY: closing our pipe end signals EOF to the program.
                    unsafe { libc::close(fd) };
                }
            }
        }
    }
}

fn read_fd(fd: i32, buf: &mut [u8]) -> usize {
    loop {
        // SAFETY: reading into a valid buffer.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return n as usize;
        }
        if Errno::last().0 != libc::EINTR {
            return 0;
        }
    }
}

fn write_all(fd: i32, mut buf: &[u8]) -> bool {
    while !buf.is_empty() {
        // SAFETY: writing from a valid buffer.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            if Errno::last().0 == libc::EINTR {
                continue;
            }
            return false;
        }
        buf = &buf[n as usize..];
    }
    true
}

/// Copy the connection `fd` to stdout until it ends; with `talk`, also
/// send stdin to it with CR added before each LF (mconnect's input side),
/// half-closing it when stdin ends.
pub fn relay_socket(fd: i32, talk: bool) -> Result<()> {
    let mut input_open = talk;
    let mut buf = vec![0u8; 8192];
    let mut out = Vec::with_capacity(16384);
    loop {
        let mut fds = [
            libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: if input_open { 0 } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: two valid pollfds.
        if unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) } == -1 {
            continue;
        }
        if fds[0].revents != 0 {
            let n = read_fd(fd, &mut buf);
            if n == 0 {
                return Ok(());
            }
            if !write_all(1, &buf[..n]) {
                return Err(Error::sys("unable to write output", Errno::last()));
            }
        }
        if input_open && fds[1].revents != 0 {
            let n = read_fd(0, &mut buf);
            out.clear();
            add_cr(&buf[..n], &mut out);
            if n == 0 || !write_all(fd, &out) {
                input_open = false;
                // SAFETY: half-close: the server sees the end of our input.
                unsafe { libc::shutdown(fd, libc::SHUT_WR) };
            }
        }
    }
}

/// `fixcrio program [ arg ... ]`
pub fn fixcrio(args: &[OsString]) -> Result<()> {
    if args.is_empty() {
        return Err(Error::usage("fixcrio program [ arg ... ]"));
    }
    // SAFETY: SIGPIPE must kill neither side silently mid-relay.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    with_relay(args, |to, from, _| {
        let (mut last_in, mut last_out) = (b'\n', b'\n');
        relay(to, from, |dir, data, out| {
            let last = if dir == b'<' {
                &mut last_in
            } else {
                &mut last_out
            };
            fix_cr(data, out, last);
        })
    })
}

/// `recordio program [ arg ... ]`
pub fn recordio(args: &[OsString]) -> Result<()> {
    if args.is_empty() {
        return Err(Error::usage("recordio program [ arg ... ]"));
    }
    // SAFETY: as in fixcrio.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    with_relay(args, |to, from, pid| {
        let mut log = Vec::new();
        relay(to, from, |dir, data, out| {
            out.extend_from_slice(data);
            log.clear();
            record(pid, dir, data, &mut log);
            write_all(2, &log);
        })
    })
}

/// recordio's lines for one packet: `PID < text` then a space (line ended),
/// `+` (packet ended mid-line) or `[EOF]` for an empty packet.
pub fn record(pid: libc::pid_t, dir: u8, data: &[u8], out: &mut Vec<u8>) {
    let head = format!("{pid} {} ", dir as char);
    if data.is_empty() {
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(b"[EOF]\n");
        return;
    }
    let mut rest = data;
    while !rest.is_empty() {
        out.extend_from_slice(head.as_bytes());
        match rest.iter().position(|&c| c == b'\n') {
            Some(i) => {
                out.extend_from_slice(&rest[..i]);
                out.extend_from_slice(b" \n");
                rest = &rest[i + 1..];
            }
            None => {
                out.extend_from_slice(rest);
                out.extend_from_slice(b"+\n");
                rest = &[];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cr_filters() {
        let mut o = Vec::new();
        add_cr(b"a\nb\r\nc", &mut o);
        assert_eq!(o, b"a\r\nb\r\r\nc");
        o.clear();
        let mut held = false;
        del_cr(b"a\r\rb\r", &mut o, &mut held);
        del_cr(b"\nc\r", &mut o, &mut held);
        del_cr(b"", &mut o, &mut held);
        assert_eq!(o, b"a\r\rb\nc\r");
        o.clear();
        let mut last = b'\n';
        fix_cr(b"a\nb\r\n\n", &mut o, &mut last);
        assert_eq!(o, b"a\r\nb\r\n\r\n");
    }

    #[test]
    fn record_lines() {
        let mut o = Vec::new();
        record(5, b'>', b"cat: x\nabc", &mut o);
        record(5, b'>', b"", &mut o);
        assert_eq!(o, b"5 > cat: x \n5 > abc+\n5 > [EOF]\n");
    }
}

//! tcpserver as a client sees it: the environment, the -v lines (compared
//! with Debian's tcpserver), rules, the -c limit, descriptors and memory
//! over 10,000 connections, and bad situations.

mod support;
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;
use support::*;

const DEBIAN: &str = "/usr/bin/tcpserver";

fn ours() -> std::path::PathBuf {
    bin("tcpserver")
}

fn env_script(dir: &TempDir) -> String {
    script(dir, "env.sh", "env | grep -E '^(PROTO|TCP)' | sort")
}

/// The environment lines with the two port numbers replaced by names.
fn normalise(out: &[u8], lport: u16) -> Vec<String> {
    String::from_utf8_lossy(out)
        .lines()
        .map(|l| {
            if l.starts_with("TCPREMOTEPORT=") || l.starts_with("TCP6REMOTEPORT=") {
                format!("{}=R", l.split('=').next().unwrap())
            } else {
                l.replace(&lport.to_string(), "L")
            }
        })
        .collect()
}

#[test]
fn ipv4_environment_as_debian() {
    let dir = TempDir::new("env4");
    let prog = env_script(&dir);
    let args = ["-1", "-H", "-R", "-l0", "127.0.0.1", "0", prog.as_str()];
    let s = start(&ours(), &args, &[]);
    let got = normalise(&talk(v4(s.port), b""), s.port);
    assert_eq!(
        got,
        [
            "PROTO=TCP",
            "TCPLOCALHOST=0",
            "TCPLOCALIP=127.0.0.1",
            "TCPLOCALPORT=L",
            "TCPREMOTEIP=127.0.0.1",
            "TCPREMOTEPORT=R"
        ]
    );
    if !have(DEBIAN) {
        eprintln!("skipping the comparison: Debian's ucspi-tcp is not installed");
        return;
    }
    let d = start(Path::new(DEBIAN), &args, &[]);
    assert_eq!(got, normalise(&talk(v4(d.port), b""), d.port));
}

#[test]
fn keep_with_a_program_that_does_not_ask_for_more() {
    // -k hands connections only to programs that ask for them; any other
    // runs once per connection, with the same environment, and its end is
    // logged as without -k.
    let dir = TempDir::new("keep");
    let prog = env_script(&dir);
    let args = ["-1", "-k", "-v", "-HRl0", "127.0.0.1", "0", prog.as_str()];
    let s = start(&ours(), &args, &[]);
    for n in 1..=2 {
        let got = normalise(&talk(v4(s.port), b""), s.port);
        assert_eq!(got[0], "PROTO=TCP");
        assert_eq!(got[4], "TCPREMOTEIP=127.0.0.1");
        s.wait_log(|l| {
            l.contains(" end ") && s.lines().iter().filter(|x| x.contains(" end ")).count() >= n
        });
    }
    let lines = s.lines();
    let pids: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("tcpserver: pid ")?.split(' ').next())
        .collect();
    assert_eq!(pids.len(), 2);
    assert_ne!(pids[0], pids[1]);
    for p in pids {
        assert!(
            lines.contains(&format!("tcpserver: end {p} status 0")),
            "{lines:#?}"
        );
    }
}

#[test]
fn ipv6_peer_environment() {
    let dir = TempDir::new("env6");
    let prog = env_script(&dir);
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("skipping: no IPv6 loopback here");
        return;
    }
    let s = start(&ours(), &["-1", "-HRl0", "::1", "0", prog.as_str()], &[]);
    let got = normalise(
        &talk(SocketAddr::from(([0u16, 0, 0, 0, 0, 0, 0, 1], s.port)), b""),
        s.port,
    );
    assert_eq!(
        got,
        [
            "PROTO=TCP6",
            "TCP6LOCALHOST=0",
            "TCP6LOCALIP=::1",
            "TCP6LOCALPORT=L",
            "TCP6REMOTEIP=::1",
            "TCP6REMOTEPORT=R",
            "TCPLOCALHOST=0",
            "TCPLOCALIP=::1",
            "TCPLOCALPORT=L",
            "TCPREMOTEIP=::1",
            "TCPREMOTEPORT=R"
        ]
    );
}

#[test]
fn ipv4_peer_on_ipv6_socket_looks_like_ipv4() {
    let dir = TempDir::new("mapped");
    let prog = env_script(&dir);
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("skipping: no IPv6 here");
        return;
    }
    // An IPv6 socket bound to the mapped loopback address takes IPv4 peers.
    let s = start(
        &ours(),
        &["-1", "-HRl0", "::ffff:127.0.0.1", "0", prog.as_str()],
        &[],
    );
    let got = normalise(&talk(v4(s.port), b""), s.port);
    assert_eq!(
        got,
        [
            "PROTO=TCP",
            "TCPLOCALHOST=0",
            "TCPLOCALIP=127.0.0.1",
            "TCPLOCALPORT=L",
            "TCPREMOTEIP=127.0.0.1",
            "TCPREMOTEPORT=R"
        ]
    );
}

/// Wait until the log holds at least `n` lines.
fn wait_lines(s: &Server, n: usize) -> Vec<String> {
    let end = std::time::Instant::now() + DEADLINE;
    loop {
        let l = s.lines();
        if l.len() >= n {
            return l;
        }
        assert!(std::time::Instant::now() < end, "only {l:#?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One connection's -v lines with pid and ports replaced by P, L, R.
fn verbose_run(exe: &Path, rules: &Path, banner: &str) -> (Vec<String>, Vec<u8>) {
    let rules = rules.to_string_lossy().into_owned();
    let s = start(
        exe,
        &[
            "-1",
            "-v",
            "-H",
            "-R",
            "-l0",
            "-B",
            banner,
            "-x",
            rules.as_str(),
            "127.0.0.1",
            "0",
            "/bin/echo",
            "hello",
        ],
        &[],
    );
    let mut c = TcpStream::connect(v4(s.port)).unwrap();
    c.set_read_timeout(Some(DEADLINE)).unwrap();
    let rport = c.local_addr().unwrap().port();
    let mut out = Vec::new();
    c.read_to_end(&mut out).unwrap();
    // "end" and the status line after it are two writes: wait for both.
    s.wait_log(|l| l.contains(" end "));
    let lines = wait_lines(&s, 6);
    let pid = lines
        .iter()
        .find_map(|l| {
            l.strip_prefix("tcpserver: pid ")
                .map(|r| r.split(' ').next().unwrap().to_string())
        })
        .expect("pid line");
    let norm = lines
        .iter()
        .map(|l| {
            l.replace(&format!(" {pid} "), " P ")
                .replace(&format!(" {pid}"), " P")
                .replace(&format!(":{}", s.port), ":L")
                .replace(&format!(":{rport}"), ":R")
        })
        .collect();
    (norm, out)
}

#[test]
fn verbose_lines_and_banner_as_debian() {
    let dir = TempDir::new("verbose");
    let allow = dir.path("allow.cdb");
    let deny = dir.path("deny.cdb");
    assert!(
        tcprules(&bin("tcprules"), &dir, "allow", "127.0.0.1:allow,X=\"1\"\n")
            .status
            .success()
    );
    assert!(tcprules(&bin("tcprules"), &dir, "deny", "127.:deny\n")
        .status
        .success());
    let (lines, out) = verbose_run(&ours(), &allow, "hi ");
    assert_eq!(out, b"hi hello\n");
    assert_eq!(
        lines,
        [
            "tcpserver: status: 0/40",
            "tcpserver: status: 1/40",
            "tcpserver: pid P from 127.0.0.1",
            "tcpserver: ok P 0:127.0.0.1:L :127.0.0.1::R",
            "tcpserver: end P status 0",
            "tcpserver: status: 0/40"
        ]
    );
    let (dlines, dout) = verbose_run(&ours(), &deny, "banner\r\n");
    assert_eq!(dout, b"banner\r\n", "the banner goes to denied clients too");
    assert_eq!(dlines[3], "tcpserver: deny P 0:127.0.0.1:L :127.0.0.1::R");
    assert_eq!(dlines[4], "tcpserver: end P status 25600");
    if !have(DEBIAN) {
        eprintln!("skipping the comparison: Debian's ucspi-tcp is not installed");
        return;
    }
    assert_eq!(verbose_run(Path::new(DEBIAN), &allow, "hi "), (lines, out));
    assert_eq!(
        verbose_run(Path::new(DEBIAN), &deny, "banner\r\n"),
        (dlines, dout)
    );
}

#[test]
fn rules_variables_and_rebuild_seen_next_connection() {
    let dir = TempDir::new("rules");
    let prog = script(&dir, "p.sh", "echo \"R=${RELAYCLIENT-unset} B=${B-unset}\"");
    let cdb = dir.path("r.cdb").to_string_lossy().into_owned();
    let rules = |text: &str| assert!(tcprules(&bin("tcprules"), &dir, "r", text).status.success());
    rules("127.0.0.1:allow,RELAYCLIENT=\"\",B='x y'\n127.:allow,RELAYCLIENT=\"@fixme\"\n:deny\n");
    let s = start(
        &ours(),
        &[
            "-1",
            "-HRl0",
            "-x",
            cdb.as_str(),
            "127.0.0.1",
            "0",
            prog.as_str(),
        ],
        &[],
    );
    assert_eq!(talk(v4(s.port), b""), b"R= B=x y\n");
    rules("127.0.0.:allow,RELAYCLIENT=\"@fixme\"\n127.:deny\n");
    assert_eq!(
        talk(v4(s.port), b""),
        b"R=@fixme B=unset\n",
        "longest prefix wins"
    );
    rules("127.0.0.1:deny\n:allow\n");
    assert_eq!(talk(v4(s.port), b""), b"", "a denied client gets nothing");
    std::fs::remove_file(&cdb).unwrap();
    assert_eq!(
        talk(v4(s.port), b""),
        b"",
        "a missing cdb drops the connection"
    );
    let lines = s.wait_log(|l| l.contains("unable to read"));
    assert!(lines.iter().any(|l| l
        == &format!(
            "tcpserver: warning: dropping connection, unable to read {cdb}: file does not exist"
        )));
    let x = start(
        &ours(),
        &[
            "-1",
            "-X",
            "-HRl0",
            "-x",
            cdb.as_str(),
            "127.0.0.1",
            "0",
            prog.as_str(),
        ],
        &[],
    );
    assert_eq!(
        talk(v4(x.port), b""),
        b"R=unset B=unset\n",
        "-X: no cdb, no rules"
    );
}

#[test]
fn cidr_rules_are_opt_in_extras() {
    let dir = TempDir::new("cidr");
    let prog = script(&dir, "p.sh", "echo \"N=${N-unset}\"");
    assert!(tcprules(
        &bin("tcprules"),
        &dir,
        "r",
        "127.0.0.0/8:allow,N=\"8\"\n127.0.0.0/30:allow,N=\"30\"\n:deny\n"
    )
    .status
    .success());
    let cdb = dir.path("r.cdb").to_string_lossy().into_owned();
    let s = start(
        &ours(),
        &[
            "-1",
            "-HRl0",
            "-x",
            cdb.as_str(),
            "127.0.0.1",
            "0",
            prog.as_str(),
        ],
        &[],
    );
    assert_eq!(talk(v4(s.port), b""), b"N=30\n");
    if have(DEBIAN) {
        let d = start(
            Path::new(DEBIAN),
            &[
                "-1",
                "-HRl0",
                "-x",
                cdb.as_str(),
                "127.0.0.1",
                "0",
                prog.as_str(),
            ],
            &[],
        );
        assert_eq!(
            talk(v4(d.port), b""),
            b"N=30\n",
            "the original reads our CIDR keys"
        );
    }
}

#[test]
fn cdb_interop_both_ways() {
    if !have(DEBIAN) || !have("/usr/bin/tcprules") {
        eprintln!("skipping: Debian's ucspi-tcp is not installed");
        return;
    }
    let dir = TempDir::new("interop");
    let text = "# guide rules\n127.0.0.2:allow,RELAYCLIENT=\"@fixme\"\n127.0.0.1:allow,RELAYCLIENT=\"\",RBLSMTPD=\" \"\n1.2.3.4-9:deny\n=.example.com:allow\n:deny\n";
    assert!(tcprules(&bin("tcprules"), &dir, "ours", text)
        .status
        .success());
    assert!(
        tcprules(Path::new("/usr/bin/tcprules"), &dir, "theirs", text)
            .status
            .success()
    );
    let a = std::fs::read(dir.path("ours.cdb")).unwrap();
    let b = std::fs::read(dir.path("theirs.cdb")).unwrap();
    assert_eq!(a, b, "byte-identical cdb");
    let prog = script(
        &dir,
        "p.sh",
        "echo \"[${RELAYCLIENT-unset}][${RBLSMTPD-unset}]\"",
    );
    for (exe, cdb) in [(DEBIAN.into(), "ours.cdb"), (ours(), "theirs.cdb")] {
        let cdb = dir.path(cdb).to_string_lossy().into_owned();
        let s = start(
            &exe,
            &[
                "-1",
                "-HRl0",
                "-x",
                cdb.as_str(),
                "127.0.0.1",
                "0",
                prog.as_str(),
            ],
            &[],
        );
        assert_eq!(talk(v4(s.port), b""), b"[][ ]\n", "{exe:?} with {cdb}");
    }
}

#[test]
fn forty_first_client_waits_for_a_slot() {
    let dir = TempDir::new("limit");
    let prog = script(&dir, "p.sh", "echo hi; exec cat >/dev/null");
    let s = start(
        &ours(),
        &["-1", "-v", "-HRl0", "127.0.0.1", "0", prog.as_str()],
        &[],
    );
    let mut held = Vec::new();
    for _ in 0..40 {
        let mut c = TcpStream::connect(v4(s.port)).unwrap();
        c.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut b = [0u8; 3];
        c.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"hi\n");
        held.push(c);
    }
    s.wait_log(|l| l == "tcpserver: status: 40/40");
    let mut last = TcpStream::connect(v4(s.port)).unwrap();
    last.set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    let mut b = [0u8; 3];
    assert!(last.read(&mut b).is_err(), "the 41st client must wait");
    drop(held.remove(0));
    last.set_read_timeout(Some(DEADLINE)).unwrap();
    last.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"hi\n");
}

#[test]
fn per_address_limit_when_asked() {
    let dir = TempDir::new("maxconnip");
    let prog = script(&dir, "p.sh", "echo hi; exec cat >/dev/null");
    assert!(tcprules(
        &bin("tcprules"),
        &dir,
        "r",
        ":allow,MAXCONNIP=\"2\",DIEMSG=\"421 too many\"\n"
    )
    .status
    .success());
    let cdb = dir.path("r.cdb").to_string_lossy().into_owned();
    let s = start(
        &ours(),
        &[
            "-1",
            "-v",
            "-HRl0",
            "-x",
            cdb.as_str(),
            "127.0.0.1",
            "0",
            prog.as_str(),
        ],
        &[],
    );
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut c = TcpStream::connect(v4(s.port)).unwrap();
        c.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut b = [0u8; 3];
        c.read_exact(&mut b).unwrap();
        held.push(c);
    }
    assert_eq!(talk(v4(s.port), b""), b"421 too many\r\n");
    s.wait_log(|l| l.starts_with("tcpserver: deny ") && l.ends_with(" MAXCONNIP:"));
}

fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

fn rss_kb(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn ten_thousand_connections_without_growth() {
    let dir = TempDir::new("many");
    assert!(
        tcprules(&bin("tcprules"), &dir, "r", "127.:allow,A=\"b\"\n:deny\n")
            .status
            .success()
    );
    let cdb = dir.path("r.cdb").to_string_lossy().into_owned();
    let s = start(
        &ours(),
        &[
            "-1",
            "-HRl0",
            "-x",
            cdb.as_str(),
            "-B",
            "x",
            "127.0.0.1",
            "0",
            "/bin/true",
        ],
        &[],
    );
    for _ in 0..500 {
        assert_eq!(talk(v4(s.port), b""), b"x");
    }
    let (fds, rss) = (fd_count(s.pid()), rss_kb(s.pid()));
    for _ in 0..9500 {
        assert_eq!(talk(v4(s.port), b""), b"x");
    }
    assert_eq!(fd_count(s.pid()), fds, "open descriptors grew");
    assert!(
        rss_kb(s.pid()) <= rss + 64,
        "VmRSS grew from {rss} kB to {} kB",
        rss_kb(s.pid())
    );
}

#[test]
fn port_in_use_and_usage() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port().to_string();
    let c = std::process::Command::new(ours())
        .args(["-HRl0", "127.0.0.1", port.as_str(), "/bin/true"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_output(c);
    assert_eq!(out.status.code(), Some(111));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "tcpserver: fatal: unable to bind: address already used\n"
    );
    let c = std::process::Command::new(ours())
        .args(["0", "25"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_output(c);
    assert_eq!(out.status.code(), Some(100));
    assert!(String::from_utf8_lossy(&out.stderr)
        .starts_with("tcpserver: usage: tcpserver [ -461UXpPhHrRoOdDqQvk ]"));
    let c = std::process::Command::new(ours())
        .args(["-HRl0", "127.0.0.1", "no-such-service", "/bin/true"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_output(c);
    assert_eq!(out.status.code(), Some(111));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "tcpserver: fatal: unable to figure out port number for no-such-service\n"
    );
}

#[test]
fn missing_program_and_resets_do_not_hurt_the_server() {
    let s = start(
        &ours(),
        &["-1", "-v", "-HRl0", "127.0.0.1", "0", "/nonexistent/prog"],
        &[],
    );
    assert_eq!(talk(v4(s.port), b""), b"");
    let lines = s.wait_log(|l| l.contains(" end "));
    assert!(lines.contains(&"tcpserver: warning: dropping connection, unable to run /nonexistent/prog: file does not exist".to_string()), "{lines:#?}");
    assert!(lines.iter().any(|l| l.ends_with(" status 28416")));

    let t = start(
        &ours(),
        &["-1", "-HRl0", "127.0.0.1", "0", "/bin/echo", "ok"],
        &[],
    );
    for _ in 0..20 {
        let c = TcpStream::connect(v4(t.port)).unwrap();
        // SO_LINGER 0: close sends RST at once.
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        unsafe {
            use std::os::fd::AsRawFd;
            libc::setsockopt(
                c.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                &linger as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            );
        }
        drop(c);
    }
    assert_eq!(talk(v4(t.port), b""), b"ok\n");
}

/// The ids a child of tcpserver run with `args` and `envs` has, as
/// /proc/self/status words.
fn ids_seen(tag: &str, args: &[&str], envs: &[(&str, &str)]) -> Vec<Vec<String>> {
    let dir = TempDir::new(tag);
    let prog = script(
        &dir,
        "p.sh",
        "grep -E '^(Uid|Gid|Groups):' /proc/self/status",
    );
    std::fs::set_permissions(
        dir.0.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let mut argv = vec!["-1", "-HRl0"];
    argv.extend_from_slice(args);
    argv.extend(["127.0.0.1", "0", prog.as_str()]);
    let s = start(&ours(), &argv, envs);
    let out = String::from_utf8(talk(v4(s.port), b"")).unwrap();
    out.lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

#[test]
fn gid_then_uid_when_root() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipping: needs root to change uid and gid");
        return;
    }
    // -u and -g, then -U taking $UID and $GID as envuidgid leaves them.
    let given = ids_seen("privs", &["-u", "65534", "-g", "65533"], &[]);
    let from_env = ids_seen("privs-env", &["-U"], &[("UID", "65534"), ("GID", "65533")]);
    for words in [given, from_env] {
        assert_eq!(words[0], ["Uid:", "65534", "65534", "65534", "65534"]);
        assert_eq!(words[1], ["Gid:", "65533", "65533", "65533", "65533"]);
        assert_eq!(words[2], ["Groups:", "65533"]);
    }
}

/// -I names the interface of a link-local address; a peer on it gets
/// TCP6INTERFACE. Run in a network namespace of its own, where lo carries
/// fe80::1, so the machine's interfaces are not touched.
#[test]
fn link_local_address_needs_its_interface() {
    if !testkit::is_root()
        || !["unshare", "ip", "python3"]
            .iter()
            .all(|p| testkit::have_program(p))
    {
        eprintln!("skipping: needs root, unshare, ip and python3 for a private network namespace");
        return;
    }
    let dir = TempDir::new("iface");
    let prog = env_script(&dir);
    let port_file = dir.path("port");
    let sh = format!(
        r#"ip link set lo up && ip -6 addr add fe80::1/64 dev lo nodad || exit 1
"$1" -1 -HRl0 -I lo fe80::1 0 {prog} > {port} &
pid=$!
trap 'kill $pid' EXIT
i=0; while [ ! -s {port} ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
python3 -c '
import socket, sys
s = socket.create_connection(("fe80::1%lo", int(sys.argv[1])), timeout=10)
s.settimeout(10)
b = b""
while True:
    d = s.recv(4096)
    if not d: break
    b += d
sys.stdout.write(b.decode())
' "$(cat {port})" || exit 1
echo ---
"$1" -1 -HRl0 fe80::1 0 true
echo "exit $?"
"#,
        port = port_file.display()
    );
    let out = testkit::run_bounded(
        std::process::Command::new("unshare")
            .args(["-n", "sh", "-c", &sh, "sh"])
            .arg(ours()),
        Duration::from_secs(60),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let (env, rest) = text
        .split_once("---\n")
        .unwrap_or_else(|| panic!("{out:?}"));
    let lport: u16 = std::fs::read_to_string(&port_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let got = normalise(env.as_bytes(), lport);
    assert_eq!(
        got,
        [
            "PROTO=TCP6",
            "TCP6INTERFACE=lo",
            "TCP6LOCALHOST=0",
            "TCP6LOCALIP=fe80::1",
            "TCP6LOCALPORT=L",
            "TCP6REMOTEIP=fe80::1",
            "TCP6REMOTEPORT=R",
            "TCPLOCALHOST=0",
            "TCPLOCALIP=fe80::1",
            "TCPLOCALPORT=L",
            "TCPREMOTEIP=fe80::1",
            "TCPREMOTEPORT=R"
        ]
    );
    // Without -I a link-local address cannot be bound.
    assert_eq!(rest, "exit 111\n");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "tcpserver: fatal: unable to bind: invalid argument\n"
    );
}

#[test]
fn hostname_rules_and_paranoia_with_nsd() {
    let zone = format!("$ORIGIN 127.in-addr.arpa.\n{SOA}1.0.0 IN PTR client.example.test.\n");
    let fwd = format!("$ORIGIN test.\n{SOA}ns IN A 127.0.0.1\n");
    let Some(ns) = nsd(&[("127.in-addr.arpa", &zone), ("test", &fwd)]) else {
        return;
    };
    let dns = format!("127.0.0.1:{}", ns.port);
    let dir = TempDir::new("hostrules");
    let prog = script(
        &dir,
        "p.sh",
        "echo \"H=${TCPREMOTEHOST-unset} V=${V-unset}\"",
    );
    assert!(tcprules(
        &bin("tcprules"),
        &dir,
        "r",
        "=.example.test:allow,V=\"suffix\"\n=:allow,V=\"anyhost\"\n:deny\n"
    )
    .status
    .success());
    let cdb = dir.path("r.cdb").to_string_lossy().into_owned();
    let env = [("DNSCACHEIP", dns.as_str())];
    let s = start(
        &ours(),
        &[
            "-1",
            "-Rl0",
            "-x",
            cdb.as_str(),
            "127.0.0.1",
            "0",
            prog.as_str(),
        ],
        &env,
    );
    assert_eq!(talk(v4(s.port), b""), b"H=client.example.test V=suffix\n");
    // -p: the name has no address that matches, so it is not believed.
    let p = start(
        &ours(),
        &[
            "-1",
            "-p",
            "-Rl0",
            "-x",
            cdb.as_str(),
            "127.0.0.1",
            "0",
            prog.as_str(),
        ],
        &env,
    );
    assert_eq!(talk(v4(p.port), b""), b"");
}

/// A one-shot-per-connection identd on 127.0.0.1:113 answering `user`.
fn fake_identd(user: &'static str) -> Option<std::net::TcpListener> {
    let l = std::net::TcpListener::bind("127.0.0.1:113").ok()?;
    let l2 = l.try_clone().unwrap();
    std::thread::spawn(move || {
        for c in l2.incoming() {
            let Ok(mut c) = c else { break };
            c.set_read_timeout(Some(DEADLINE)).unwrap();
            let mut q = [0u8; 100];
            let n = c.read(&mut q).unwrap_or(0);
            let q = String::from_utf8_lossy(&q[..n]).trim().to_string();
            let _ = std::io::Write::write_all(
                &mut c,
                format!("{q} : USERID : UNIX : {user}\r\n").as_bytes(),
            );
        }
    });
    Some(l)
}

#[test]
fn remote_info_from_identd_and_its_place_in_the_log() {
    let Some(_identd) = fake_identd("joe") else {
        eprintln!("skipping: cannot listen on 127.0.0.1:113 (needs root, or it is taken)");
        return;
    };
    let dir = TempDir::new("ident");
    let prog = script(
        &dir,
        "p.sh",
        "echo \"I=${TCPREMOTEINFO-unset} V=${V-unset}\"",
    );
    assert!(tcprules(
        &bin("tcprules"),
        &dir,
        "r",
        "joe@127.0.0.1:allow,V=\"joe\"\n:allow\n"
    )
    .status
    .success());
    let cdb = dir.path("r.cdb").to_string_lossy().into_owned();
    let run = |exe: &Path| {
        let s = start(
            exe,
            &[
                "-1",
                "-v",
                "-H",
                "-l0",
                "-x",
                cdb.as_str(),
                "127.0.0.1",
                "0",
                prog.as_str(),
            ],
            &[],
        );
        let out = talk(v4(s.port), b"");
        let lines = s.wait_log(|l| l.contains(" end "));
        let ok = lines
            .iter()
            .find(|l| l.starts_with("tcpserver: ok "))
            .unwrap()
            .clone();
        // "ok PID 0:127.0.0.1:LPORT :127.0.0.1:joe:RPORT"
        let fields: Vec<&str> = ok.split(' ').collect();
        let remote: Vec<&str> = fields[4].split(':').collect();
        (out, remote[..3].join(":"))
    };
    let ours = run(&bin("tcpserver"));
    assert_eq!(
        ours,
        (b"I=joe V=joe\n".to_vec(), ":127.0.0.1:joe".to_string())
    );
    if have(DEBIAN) {
        assert_eq!(run(Path::new(DEBIAN)), ours);
    }
}

#[test]
fn sigterm_ends_the_server_with_exit_0() {
    let mut s = start(
        &ours(),
        &["-1", "-HRl0", "127.0.0.1", "0", "/bin/true"],
        &[],
    );
    assert_eq!(talk(v4(s.port), b""), b"");
    // SAFETY: signalling our own child by its pid.
    unsafe { libc::kill(s.pid() as i32, libc::SIGTERM) };
    let end = std::time::Instant::now() + DEADLINE;
    let status = loop {
        if let Some(st) = s.guard.0.try_wait().unwrap() {
            break st;
        }
        assert!(std::time::Instant::now() < end, "tcpserver ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
}

//! dnscache-conf: create a dnscache service directory as djbdns 1.05 does
//! (run, log/run with multilog, log/main and log/status owned by the log
//! account, env/ with IP, IPSEND, CACHESIZE, DATALIMIT and ROOT, root/ip
//! allowing 127.0.0.1, root/servers/@ with the root servers, a 128-byte
//! seed), with the same modes and the same messages.
//!
//! The run script names the dnscache that sits beside this dnscache-conf
//! (the original used its compiled-in home). The root servers come from
//! /etc/dnsroots.local, else /etc/dnsroots.global; where neither exists (a
//! system without the djbdns package) the well-known root server addresses
//! are written instead of failing.

use common::error::Errno;
use common::Error;
use std::ffi::OsString;
use std::fs::{self, File, Permissions};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{chown, DirBuilderExt, PermissionsExt};
use std::path::PathBuf;

const USAGE: &str = "dnscache-conf acct logacct /dnscache [ myip ]";

/// The root servers' IPv4 addresses, a.root-servers.net to m.
const ROOT_SERVERS: &str = "198.41.0.4\n170.247.170.2\n192.33.4.12\n199.7.91.13\n\
192.203.230.10\n192.5.5.241\n192.112.36.4\n198.97.190.53\n192.36.148.17\n\
192.58.128.30\n193.0.14.129\n199.7.83.42\n202.12.27.33\n";

/// The original's defaults.
const CACHESIZE: &str = "1000000";
const DATALIMIT: &str = "3000000";

pub fn run(args: &[OsString]) -> common::Result<()> {
    if args.len() < 3 || args[2].as_bytes().first() != Some(&b'/') {
        return Err(Error::usage(USAGE));
    }
    let acct = args[0].to_string_lossy().into_owned();
    let logacct = args[1].to_string_lossy().into_owned();
    let dir = args[2].to_string_lossy().into_owned();
    let myip = args.get(3).map_or("127.0.0.1".to_string(), |s| {
        s.to_string_lossy().into_owned()
    });
    let log = common::privs::account(&logacct)
        .ok_or_else(|| Error::temp(format!("unknown account {logacct}")))?;
    let roots = root_servers()?;
    let dnscache = dnscache_path();
    let mut m = Maker::init(&dir)?;
    m.dir("log", 0o2755)?;
    m.dir("log/main", 0o2755)?;
    m.chown("log/main", log)?;
    m.file("log/status", b"", 0o644)?;
    m.chown("log/status", log)?;
    m.dir("env", 0o2755)?;
    m.file("env/ROOT", format!("{dir}/root\n").as_bytes(), 0o644)?;
    m.file("env/IP", format!("{myip}\n").as_bytes(), 0o644)?;
    m.file("env/IPSEND", b"0.0.0.0\n", 0o644)?;
    m.file("env/CACHESIZE", format!("{CACHESIZE}\n").as_bytes(), 0o644)?;
    m.file("env/DATALIMIT", format!("{DATALIMIT}\n").as_bytes(), 0o644)?;
    let run = format!(
        "#!/bin/sh\nexec 2>&1\nexec <seed\nexec envdir ./env sh -c '\n  exec envuidgid {acct} softlimit -o250 -d \"$DATALIMIT\" {dnscache}\n'\n"
    );
    m.file("run", run.as_bytes(), 0o755)?;
    let logrun = format!("#!/bin/sh\nexec setuidgid {logacct} multilog t ./main\n");
    m.file("log/run", logrun.as_bytes(), 0o755)?;
    m.dir("root", 0o2755)?;
    m.dir("root/ip", 0o2755)?;
    m.file("root/ip/127.0.0.1", b"", 0o600)?;
    m.dir("root/servers", 0o2755)?;
    m.file("root/servers/@", &roots, 0o644)?;
    let mut seed = [0u8; 128];
    crate::stub::random_bytes(&mut seed);
    m.file("seed", &seed, 0o600)
}

/// The root server list to install.
fn root_servers() -> common::Result<Vec<u8>> {
    for path in ["/etc/dnsroots.local", "/etc/dnsroots.global"] {
        match fs::read(path) {
            Ok(data) => return Ok(data),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::sys(format!("unable to open {path}"), e)),
        }
    }
    Ok(ROOT_SERVERS.as_bytes().to_vec())
}

/// The dnscache program installed beside this one.
fn dnscache_path() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("dnscache")))
        .unwrap_or_else(|| PathBuf::from("/usr/local/bin/dnscache"))
        .display()
        .to_string()
}

/// Creates the entries of one service directory, reporting failures as
/// `unable to create DIR/NAME: why` like the original.
struct Maker {
    dir: PathBuf,
    shown: String,
}

impl Maker {
    /// Create the directory itself (mode 03755: setgid, and sticky as old
    /// svscan's sign that the service has a log).
    fn init(dir: &str) -> common::Result<Maker> {
        // SAFETY: umask only sets the process's file mode mask.
        unsafe { libc::umask(0o022) };
        fs::DirBuilder::new()
            .mode(0o700)
            .create(dir)
            .map_err(|e| Error::sys(format!("unable to create {dir}"), e))?;
        fs::set_permissions(dir, Permissions::from_mode(0o3755))
            .map_err(|e| Error::sys(format!("unable to set mode of {dir}"), e))?;
        Ok(Maker {
            dir: PathBuf::from(dir),
            shown: dir.to_string(),
        })
    }

    fn fail(&self, name: &str, e: impl Into<Errno>) -> Error {
        Error::sys(format!("unable to create {}/{name}", self.shown), e)
    }

    fn dir(&mut self, name: &str, mode: u32) -> common::Result<()> {
        let p = self.dir.join(name);
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&p)
            .and_then(|()| fs::set_permissions(&p, Permissions::from_mode(mode)))
            .map_err(|e| self.fail(name, e))
    }

    /// Write `data` to a new file, fsync it, then set its mode.
    fn file(&mut self, name: &str, data: &[u8], mode: u32) -> common::Result<()> {
        let p = self.dir.join(name);
        let write = || -> io::Result<()> {
            let mut f = File::create(&p)?;
            f.write_all(data)?;
            f.sync_all()?;
            fs::set_permissions(&p, Permissions::from_mode(mode))
        };
        write().map_err(|e| self.fail(name, e))
    }

    fn chown(&mut self, name: &str, acct: common::privs::Account) -> common::Result<()> {
        chown(self.dir.join(name), Some(acct.uid), Some(acct.gid)).map_err(|e| self.fail(name, e))
    }
}

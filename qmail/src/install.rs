//! qmail-install and qmail-instcheck: lay out QMAILHOME with the original
//! owners and modes (hier.c's table: queue directories split conf-split
//! ways, lock/trigger fifo, lock/sendmutex, lock/tcpto, bin/ with the
//! programs) and check an existing home against the same table.
//!
//! Run by root (without -p) the installer creates the qmail users and groups
//! when missing (useradd/groupadd) and sets owners. Run by anyone else, or
//! with -p, it builds a private home owned by the invoking user, with bin/
//! linking to the programs beside the installer: that home works for the
//! invoking user alone (qmail-start then runs every daemon as that user).

use crate::ids::{self, Ids};
use common::Error;
use std::ffi::OsString;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Who owns an entry: a qmail user or group by role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    Root,
    /// The alias user: hier.c gives it alias/ (mode 02755).
    Alias,
    Q,
    S,
    R,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    Fifo,
    File(u64),
}

struct Entry {
    path: String,
    kind: Kind,
    owner: Owner,
    mode: u32,
}

/// The programs installed into bin/ (mode 0711 except where hier.c differs).
pub const PROGRAMS: &[(&str, u32)] = &[
    ("qmail-queue", 0o4711),
    ("qmail-queued", 0o711),
    ("qmail-lspawn", 0o700),
    ("qmail-start", 0o700),
    ("qmail-getpw", 0o711),
    ("qmail-local", 0o711),
    ("qmail-remote", 0o711),
    ("qmail-rspawn", 0o711),
    ("qmail-clean", 0o711),
    ("qmail-send", 0o711),
    ("splogger", 0o711),
    ("qmail-newu", 0o700),
    ("qmail-newmrh", 0o700),
    ("qmail-pw2u", 0o711),
    ("qmail-inject", 0o755),
    ("predate", 0o755),
    ("datemail", 0o755),
    ("mailsubj", 0o755),
    ("qmail-showctl", 0o755),
    ("qmail-qread", 0o755),
    ("qmail-qstat", 0o755),
    ("qmail-tcpto", 0o755),
    ("qmail-tcpok", 0o755),
    ("qmail-pop3d", 0o755),
    ("qmail-popup", 0o711),
    ("qmail-qmqpc", 0o755),
    ("qmail-qmqpd", 0o755),
    ("qmail-qmtpd", 0o755),
    ("qmail-smtpd", 0o755),
    ("sendmail", 0o755),
    ("forward", 0o755),
    ("preline", 0o755),
    ("condredirect", 0o755),
    ("bouncesaying", 0o755),
    ("except", 0o755),
    ("maildirmake", 0o755),
    ("maildir2mbox", 0o755),
    ("maildirwatch", 0o755),
    ("checkpassword", 0o755),
];

fn e(path: &str, kind: Kind, owner: Owner, mode: u32) -> Entry {
    Entry {
        path: path.to_string(),
        kind,
        owner,
        mode,
    }
}

/// hier.c's directories and queue files, in creation order.
fn table() -> Vec<Entry> {
    let mut t = vec![
        e("control", Kind::Dir, Owner::Root, 0o755),
        e("users", Kind::Dir, Owner::Root, 0o755),
        e("bin", Kind::Dir, Owner::Root, 0o755),
        e("alias", Kind::Dir, Owner::Alias, 0o2755),
        e("queue", Kind::Dir, Owner::Q, 0o750),
        e("queue/pid", Kind::Dir, Owner::Q, 0o700),
        e("queue/intd", Kind::Dir, Owner::Q, 0o700),
        e("queue/todo", Kind::Dir, Owner::Q, 0o750),
        e("queue/bounce", Kind::Dir, Owner::S, 0o700),
    ];
    for (dir, owner, mode) in [
        ("mess", Owner::Q, 0o750),
        ("info", Owner::S, 0o700),
        ("local", Owner::S, 0o700),
        ("remote", Owner::S, 0o700),
    ] {
        t.push(e(&format!("queue/{dir}"), Kind::Dir, owner, mode));
        for i in 0..crate::queue::SPLIT {
            t.push(e(&format!("queue/{dir}/{i}"), Kind::Dir, owner, mode));
        }
    }
    t.push(e("queue/lock", Kind::Dir, Owner::Q, 0o750));
    t.push(e("queue/lock/tcpto", Kind::File(1024), Owner::R, 0o644));
    t.push(e("queue/lock/sendmutex", Kind::File(0), Owner::S, 0o600));
    t.push(e("queue/lock/trigger", Kind::Fifo, Owner::S, 0o622));
    t
}

/// The uid and gid an entry should have.
fn ids_of(owner: Owner, ids: &Ids) -> (u32, u32) {
    if !ids.privileged {
        return (ids.qmailq, ids.gid_qmail);
    }
    let uid = match owner {
        Owner::Root => 0,
        // make_users created alias before any entry is made.
        Owner::Alias => ids::user("alias").unwrap_or(0),
        Owner::Q => ids.qmailq,
        Owner::S => ids.qmails,
        Owner::R => ids.qmailr,
    };
    (uid, ids.gid_qmail)
}

fn sys(what: &str, p: &Path, e: std::io::Error) -> Error {
    Error::sys(format!("unable to {what} {}", p.display()), e)
}

fn make(home: &Path, ent: &Entry, ids: &Ids) -> Result<(), Error> {
    let p = home.join(&ent.path);
    match ent.kind {
        Kind::Dir => match std::fs::create_dir(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(sys("mkdir", &p, e)),
        },
        Kind::Fifo => {
            if std::fs::symlink_metadata(&p).is_err() {
                nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o600))
                    .map_err(|e| Error::sys(format!("unable to mkfifo {}", p.display()), e))?;
            }
        }
        Kind::File(len) => {
            if std::fs::symlink_metadata(&p).is_err() {
                std::fs::write(&p, vec![0u8; len as usize]).map_err(|e| sys("create", &p, e))?;
            }
        }
    }
    set_owner_mode(&p, ent.owner, ent.mode, ids)
}

fn set_owner_mode(p: &Path, owner: Owner, mode: u32, ids: &Ids) -> Result<(), Error> {
    if ids.privileged {
        let (uid, gid) = ids_of(owner, ids);
        std::os::unix::fs::chown(p, Some(uid), Some(gid)).map_err(|e| sys("chown", p, e))?;
    }
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        .map_err(|e| sys("chmod", p, e))
}

/// Create the qmail users and groups that are missing (root only).
fn make_users() -> Result<(), Error> {
    for g in ["qmail", "nofiles"] {
        if ids::group(g).is_none() {
            command("groupadd", &["-r", g])?;
        }
    }
    let users = [
        ("alias", "nofiles"),
        ("qmaild", "nofiles"),
        ("qmaill", "nofiles"),
        ("qmailp", "nofiles"),
        ("qmailq", "qmail"),
        ("qmailr", "qmail"),
        ("qmails", "qmail"),
    ];
    let home = crate::home::home();
    for (u, g) in users {
        if ids::user(u).is_none() {
            let h = if u == "alias" {
                home.join("alias")
            } else {
                home.clone()
            };
            let h = h.to_string_lossy().into_owned();
            command(
                "useradd",
                &["-r", "-g", g, "-d", &h, "-s", "/usr/sbin/nologin", "-M", u],
            )?;
        }
    }
    Ok(())
}

fn command(prog: &str, args: &[&str]) -> Result<(), Error> {
    let st = common::sig::default_signals(&mut std::process::Command::new(prog))
        .args(args)
        .status()
        .map_err(|e| Error::sys(format!("unable to run {prog}"), e))?;
    if st.success() {
        Ok(())
    } else {
        Err(Error::temp(format!("{prog} {} failed", args.join(" "))))
    }
}

/// The directory holding the programs to install: the installer's own.
fn source_dir() -> Result<PathBuf, Error> {
    let exe = std::env::current_exe().map_err(|e| Error::sys("unable to find myself", e))?;
    Ok(exe.parent().unwrap_or(Path::new("/")).to_path_buf())
}

/// Put the programs into bin/: copies (with hier.c's modes) when
/// privileged, symbolic links in a private home.
fn install_programs(home: &Path, ids: &Ids) -> Result<(), Error> {
    let src = source_dir()?;
    for (name, mode) in PROGRAMS {
        let from = src.join(name);
        if !from.exists() {
            continue;
        }
        let to = home.join("bin").join(name);
        // Run from QMAILHOME/bin itself (a staged install): already in place.
        let in_place = std::fs::canonicalize(&from).ok() == std::fs::canonicalize(&to).ok();
        if !in_place {
            let _ = std::fs::remove_file(&to);
        }
        if ids.privileged {
            if !in_place {
                std::fs::copy(&from, &to).map_err(|e| sys("copy to", &to, e))?;
            }
            let owner = if *name == "qmail-queue" {
                Owner::Q
            } else {
                Owner::Root
            };
            set_owner_mode(&to, owner, *mode, ids)?;
        } else if !in_place {
            std::os::unix::fs::symlink(&from, &to).map_err(|e| sys("link", &to, e))?;
        }
    }
    Ok(())
}

/// Control files a fresh home needs: me (the host name) and locals.
fn default_controls(home: &Path) -> Result<(), Error> {
    let me_file = home.join("control/me");
    if me_file.exists() {
        return Ok(());
    }
    let host = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "localhost".into());
    let write = |name: &str, text: String| {
        let p = home.join("control").join(name);
        std::fs::write(&p, text).map_err(|e| sys("create", &p, e))
    };
    write("me", format!("{host}\n"))?;
    if !home.join("control/locals").exists() {
        write("locals", format!("{host}\nlocalhost\n"))?;
    }
    if !home.join("control/rcpthosts").exists() {
        write("rcpthosts", format!("{host}\nlocalhost\n"))?;
    }
    Ok(())
}

/// qmail-install [-p]: build QMAILHOME.
pub fn install(args: &[OsString]) -> Result<(), Error> {
    let p = common::getopt::getopt("qmail-install", args, "p")
        .ok_or_else(|| Error::usage("qmail-install [ -p ]"))?;
    let private = p.opts.iter().any(|o| o.flag == b'p');
    let root = nix::unistd::geteuid().is_root();
    if root && !private {
        make_users()?;
    }
    let mut ids = ids::install_ids();
    if private {
        ids.privileged = false;
    }
    let home = crate::home::home();
    std::fs::create_dir_all(&home).map_err(|e| sys("mkdir", &home, e))?;
    set_owner_mode(&home, Owner::Root, 0o755, &ids)?;
    for ent in table() {
        make(&home, &ent, &ids)?;
    }
    install_programs(&home, &ids)?;
    default_controls(&home)
}

/// qmail-instcheck: warn about every entry that differs from the table.
pub fn instcheck(out: &mut impl std::io::Write) -> Result<(), Error> {
    let home = crate::home::home();
    let ids = ids::ids();
    for ent in table() {
        let p = home.join(&ent.path);
        if let Some(w) = check_one(&p, &ent, &ids) {
            let _ = writeln!(out, "instcheck: warning: {} {w}", p.display());
        }
    }
    Ok(())
}

fn check_one(p: &Path, ent: &Entry, ids: &Ids) -> Option<&'static str> {
    let md = match std::fs::symlink_metadata(p) {
        Ok(m) => m,
        Err(_) => return Some("does not exist"),
    };
    let ft = md.file_type();
    let type_ok = match ent.kind {
        Kind::Dir => ft.is_dir(),
        Kind::Fifo => std::os::unix::fs::FileTypeExt::is_fifo(&ft),
        Kind::File(_) => ft.is_file(),
    };
    if !type_ok {
        return Some("has wrong type");
    }
    let (uid, gid) = ids_of(ent.owner, ids);
    if ids.privileged && md.uid() != uid {
        return Some("has wrong owner");
    }
    if ids.privileged && md.gid() != gid {
        return Some("has wrong group");
    }
    if md.mode() & 0o7777 != ent.mode {
        return Some("has wrong permissions");
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn table_has_split_dirs_and_fifo() {
        let t = super::table();
        assert!(t.iter().any(|e| e.path == "queue/mess/22"));
        assert!(!t.iter().any(|e| e.path == "queue/mess/23"));
        assert!(t.iter().any(|e| e.path == "queue/lock/trigger"));
    }
}

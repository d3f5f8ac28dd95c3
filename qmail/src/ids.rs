//! The qmail users and groups (alias, qmaild, qmaill, qmailp, qmailq,
//! qmailr, qmails; groups qmail and nofiles) and the two ways the daemons
//! run: privileged (started by root on a system with the qmail users, each
//! daemon under its own id as in qmail) or private (everything as the
//! invoking user, which is how tests and the no-root local stack run).

use common::privs::account;

/// The ids the daemons switch to; in private mode all are the caller's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ids {
    pub privileged: bool,
    pub qmaill: u32,
    pub qmailp: u32,
    pub qmailq: u32,
    pub qmailr: u32,
    pub qmails: u32,
    pub gid_qmail: u32,
    pub gid_nofiles: u32,
}

/// The gid of group `name`, if it exists.
pub fn group(name: &str) -> Option<u32> {
    nix::unistd::Group::from_name(name)
        .ok()
        .flatten()
        .map(|g| g.gid.as_raw())
}

/// The uid of user `name`, if it exists.
pub fn user(name: &str) -> Option<u32> {
    account(name).map(|a| a.uid)
}

/// The ids the daemons of this QMAILHOME run under: privileged when root,
/// the qmail users exist and the home was laid out for them; a home that
/// `qmail-install -p` made for its invoker (its queue not owned by qmailq)
/// stays private even on a machine that has the qmail users.
pub fn ids() -> Ids {
    let ids = install_ids();
    if ids.privileged && private_home(ids.qmailq) {
        return private();
    }
    ids
}

/// Whether QMAILHOME's queue exists and belongs to someone else than qmailq.
fn private_home(qmailq: u32) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(crate::home::path("queue")).is_ok_and(|m| m.uid() != qmailq)
}

/// The ids a new installation gets: privileged when root and the qmail
/// users exist, whatever is on disk yet.
pub fn install_ids() -> Ids {
    let root = nix::unistd::geteuid().is_root();
    let all = [
        user("qmaill"),
        user("qmailp"),
        user("qmailq"),
        user("qmailr"),
        user("qmails"),
        group("qmail"),
        group("nofiles"),
    ];
    if root && all.iter().all(Option::is_some) {
        let v: Vec<u32> = all.iter().map(|x| x.unwrap_or(0)).collect();
        return Ids {
            privileged: true,
            qmaill: v[0],
            qmailp: v[1],
            qmailq: v[2],
            qmailr: v[3],
            qmails: v[4],
            gid_qmail: v[5],
            gid_nofiles: v[6],
        };
    }
    private()
}

/// Every daemon as the caller.
fn private() -> Ids {
    let uid = nix::unistd::getuid().as_raw();
    let gid = nix::unistd::getgid().as_raw();
    Ids {
        privileged: false,
        qmaill: uid,
        qmailp: uid,
        qmailq: uid,
        qmailr: uid,
        qmails: uid,
        gid_qmail: gid,
        gid_nofiles: gid,
    }
}

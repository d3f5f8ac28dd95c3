//! qmail-newu: compile QMAILHOME/users/assign into users/cdb, atomically
//! (write users/cdb.tmp, fsync, rename), so qmail-lspawn never sees half a
//! database.

use crate::users::{self, AssignError};
use common::Error;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;

fn fatal(msg: &str) -> Error {
    Error::temp(msg)
}

/// Run qmail-newu (it takes no arguments).
pub fn run() -> Result<(), Error> {
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o033));
    std::env::set_current_dir(crate::home::home()).map_err(|_| fatal("unable to chdir"))?;
    let mut assign =
        File::open("users/assign").map_err(|_| fatal("unable to open users/assign"))?;
    let tmp = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open("users/cdb.tmp")
        .map_err(|_| fatal("unable to open users/cdb.tmp"))?;
    let mut text = Vec::new();
    assign
        .read_to_end(&mut text)
        .map_err(|_| fatal("unable to read users/assign"))?;
    let entries = users::parse_assign(&text).map_err(|e| match e {
        AssignError::Read => fatal("unable to read users/assign"),
        AssignError::Format => fatal("bad format in users/assign"),
    })?;
    let writer = tmp
        .try_clone()
        .map_err(|_| fatal("unable to write users/cdb.tmp"))?;
    users::write_cdb(writer, &entries).map_err(|_| fatal("unable to write users/cdb.tmp"))?;
    tmp.sync_all()
        .map_err(|_| fatal("unable to write users/cdb.tmp"))?;
    drop(tmp);
    std::fs::rename("users/cdb.tmp", "users/cdb")
        .map_err(|_| fatal("unable to move users/cdb.tmp to users/cdb"))?;
    // The rename must survive a crash too (ext4 and XFS do not make
    // directory updates synchronous).
    if let Ok(d) = File::open("users") {
        let _ = d.sync_all();
    }
    Ok(())
}

//! svok: exit 0 when a supervise runs for the service (its supervise/ok fifo
//! has a reader), 100 when none does, 111 when that cannot be found out.

use common::error::{Error, Result, EXIT_PERM};
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;

/// `svok dir`: `args` is the whole argv; extra arguments are ignored as by the original.
pub fn run(args: &[OsString]) -> Result<()> {
    let Some(dir) = args.get(1) else {
        return Err(Error::usage("svok dir"));
    };
    let name = dir.to_string_lossy();
    nix::unistd::chdir(dir.as_bytes())
        .map_err(|e| Error::sys(format!("unable to chdir to {name}"), e))?;
    // Opening a fifo for writing without blocking fails (ENXIO) unless someone reads it.
    let r = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("supervise/ok");
    match r {
        Ok(_) => Ok(()),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENXIO)) => {
            Err(Error::silent(EXIT_PERM))
        }
        Err(e) => Err(Error::sys(format!("unable to open {name}/supervise/ok"), e)),
    }
}

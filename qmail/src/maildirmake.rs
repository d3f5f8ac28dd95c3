//! maildirmake: create a maildir (the directory and its tmp, new and cur),
//! private to the user (maildirmake(1)).

use common::Error;
use std::ffi::OsString;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

fn mkdir(p: &Path, shown: &str) -> Result<(), Error> {
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(p)
        .map_err(|e| Error::sys(format!("unable to mkdir {shown}"), e))
}

/// Run maildirmake with `args` (without argv[0]).
pub fn run(args: &[OsString]) -> Result<(), Error> {
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let Some(name) = args.first() else {
        return Err(crate::local::bare(
            100,
            "maildirmake: usage: maildirmake name",
        ));
    };
    let shown = name.to_string_lossy();
    let dir = Path::new(name);
    mkdir(dir, &shown)?;
    for sub in ["tmp", "new", "cur"] {
        mkdir(&dir.join(sub), &format!("{shown}/{sub}"))?;
    }
    Ok(())
}

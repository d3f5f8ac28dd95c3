//! condredirect: when a program exits 0, forward the message to a new
//! address and stop further delivery (exit 99); otherwise do nothing
//! (condredirect(1)).

use crate::forward::{open_for_helper, queue_fatal};
use common::Error;
use std::ffi::OsString;
use std::io::{Seek, SeekFrom};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;

/// Run condredirect with `args` (without argv[0]).
pub fn run(args: &[OsString]) -> Result<(), Error> {
    if args.len() < 2 {
        return Err(crate::local::bare(
            100,
            "condredirect: usage: condredirect newaddress program [ arg ... ]",
        ));
    }
    if crate::bouncesaying::run_child(&args[1..])? != 0 {
        return Ok(());
    }
    let mut msg = std::fs::File::from(
        std::io::stdin()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| Error::sys("unable to rewind", e))?,
    );
    msg.seek(SeekFrom::Start(0))
        .map_err(|e| Error::sys("unable to rewind", e))?;
    let sender = std::env::var_os("SENDER").ok_or_else(|| Error::perm("SENDER not set"))?;
    let dtline = std::env::var_os("DTLINE").ok_or_else(|| Error::perm("DTLINE not set"))?;
    let mut job = open_for_helper()?;
    job.put(dtline.as_bytes());
    job.copy_from(&mut msg)
        .map_err(|e| Error::sys("unable to read message", e))?;
    let qp = job.pid();
    job.close(sender.as_bytes(), &[args[0].as_bytes()])
        .map_err(queue_fatal)?;
    Err(crate::local::bare(99, format!("condredirect: qp {qp}")))
}

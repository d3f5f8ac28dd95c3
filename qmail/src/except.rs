//! except: run a program and turn its exit code around (except(1)): 0
//! becomes 100 (bounce), any other code but 111 becomes 0.

use common::Error;
use std::ffi::OsString;

/// Run except with `args` (without argv[0]).
pub fn run(args: &[OsString]) -> Result<(), Error> {
    if args.is_empty() {
        return Err(crate::local::bare(
            100,
            "except: usage: except program [ arg ... ]",
        ));
    }
    match crate::bouncesaying::run_child(args)? {
        0 => Err(Error::silent(100)),
        _ => Ok(()),
    }
}

//! dnstxt: the TXT records of each name, all of them on one line.

use crate::stub::Resolver;
use std::ffi::OsString;

pub fn run(args: &[OsString]) -> common::Result<()> {
    let resolver = Resolver::from_env();
    let mut out = String::new();
    for arg in args {
        let name = super::text(arg);
        let texts = resolver
            .txt(&name)
            .map_err(|e| super::lookup_failed("TXT records", &name, &e))?;
        out.push_str(&texts.concat());
        out.push('\n');
    }
    super::emit(out.as_bytes());
    Ok(())
}

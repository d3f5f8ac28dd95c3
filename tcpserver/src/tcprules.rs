//! tcprules and tcprulescheck: compile a rules file into a cdb atomically
//! (write the temporary file, fsync, rename over the cdb, so a running
//! tcpserver sees either the old rules or the new ones), and show which rule
//! a connection would follow.

use crate::{cdb, rules};
use common::{Error, Result};
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// `tcprules rules.cdb rules.tmp < rules`
pub fn run(args: &[OsString]) -> Result<()> {
    let (Some(cdb_path), Some(tmp_path)) = (args.first(), args.get(1)) else {
        return Err(Error::usage("tcprules rules.cdb rules.tmp"));
    };
    let tmp_name = tmp_path.to_string_lossy();
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(tmp_path)
        .map_err(|e| Error::sys(format!("unable to create {tmp_name}"), e))?;
    let write_err = |e: io::Error| Error::sys(format!("unable to write to {tmp_name}"), e);
    let mut w = cdb::Writer::new(file).map_err(write_err)?;
    let stdin = io::stdin();
    let mut input = io::BufReader::with_capacity(64 * 1024, stdin.lock());
    match rules::compile(&mut input, &mut w) {
        Ok(()) => {}
        Err(rules::CompileError::Read(e)) => return Err(Error::sys("unable to read input", e)),
        Err(rules::CompileError::Write(e)) => return Err(write_err(e)),
        Err(rules::CompileError::Bad(line)) => {
            return Err(Error::perm(format!(
                "unable to parse this line: {}",
                String::from_utf8_lossy(&line.0)
            )))
        }
    }
    drop(w.finish().map_err(write_err)?);
    std::fs::rename(tmp_path, cdb_path).map_err(|e| {
        Error::sys(
            format!(
                "unable to move {tmp_name} to {}",
                cdb_path.to_string_lossy()
            ),
            e,
        )
    })
}

/// `tcprulescheck rules.cdb`, with the connection in TCPREMOTEIP,
/// TCPREMOTEHOST and TCPREMOTEINFO.
pub fn check(args: &[OsString]) -> Result<()> {
    let Some(path) = args.first() else {
        return Err(Error::usage("tcprulescheck rules.cdb"));
    };
    let ip = std::env::var("TCPREMOTEIP").unwrap_or_else(|_| "0.0.0.0".to_string());
    let host = std::env::var_os("TCPREMOTEHOST");
    let info = std::env::var_os("TCPREMOTEINFO");
    let peer = rules::Peer {
        ip: &ip,
        host: host.as_deref().map(|h| h.as_bytes()),
        info: info.as_deref().map(|i| i.as_bytes()),
    };
    let read_err =
        |e: io::Error| Error::sys(format!("unable to read {}", path.to_string_lossy()), e);
    let file = File::open(Path::new(path)).map_err(read_err)?;
    let (mut key, mut data) = (Vec::new(), Vec::new());
    let found = rules::lookup(&file, &peer, &mut key, &mut data).map_err(read_err)?;
    let mut out = Vec::new();
    if found {
        describe(&key, &data, &mut out);
    } else {
        out.extend_from_slice(b"default:\nallow connection\n");
    }
    io::stdout()
        .write_all(&out)
        .map_err(|e| Error::sys("unable to write output", e))
}

/// The original's report of one rule: its key, the variables it sets, and
/// the verdict (a deny ends the report at once).
fn describe(key: &[u8], data: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b"rule ");
    out.extend_from_slice(key);
    out.extend_from_slice(b":\n");
    for (ins, rec) in rules::instructions(data) {
        match ins {
            rules::Instruction::Deny => {
                out.extend_from_slice(b"deny connection\n");
                return;
            }
            _ if rec.first() == Some(&b'+') => {
                out.extend_from_slice(b"set environment variable ");
                out.extend_from_slice(&rec[1..]);
                out.push(b'\n');
            }
            _ => {}
        }
    }
    out.extend_from_slice(b"allow connection\n");
}

#[cfg(test)]
mod tests {
    #[test]
    fn describe_like_the_original() {
        let mut out = Vec::new();
        super::describe(b"127.", b"+RELAYCLIENT=\0", &mut out);
        assert_eq!(
            out,
            b"rule 127.:\nset environment variable RELAYCLIENT=\nallow connection\n"
        );
        out.clear();
        super::describe(b"", b"+A=b\0D\0", &mut out);
        assert_eq!(
            out,
            b"rule :\nset environment variable A=b\ndeny connection\n"
        );
    }
}

//! qmail-newmrh: compile control/morercpthosts into control/morercpthosts.cdb
//! (lowercased hosts as keys, empty values) through morercpthosts.tmp, so
//! qmail-smtpd always sees either the old or the new database whole.

use common::Error;
use std::io::{BufRead, BufReader};

fn die_read(e: std::io::Error) -> Error {
    Error::sys("unable to read control/morercpthosts", e)
}

fn die_write(e: std::io::Error) -> Error {
    Error::sys("unable to write to control/morercpthosts.tmp", e)
}

/// One line of morercpthosts as a key: surrounding blanks dropped, lowercased.
fn key(line: &[u8]) -> Vec<u8> {
    let blank = |b: &u8| b" \t\r\n".contains(b);
    let start = line.iter().position(|b| !blank(b)).unwrap_or(line.len());
    let end = line
        .iter()
        .rposition(|b| !blank(b))
        .map_or(start, |p| p + 1);
    line[start..end.max(start)].to_ascii_lowercase()
}

pub fn run() -> Result<(), Error> {
    let home = crate::home::home();
    std::env::set_current_dir(&home)
        .map_err(|e| Error::sys(format!("unable to chdir to {}", home.display()), e))?;
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o033));
    let input = std::fs::File::open("control/morercpthosts").map_err(die_read)?;
    let tmp = std::fs::File::create("control/morercpthosts.tmp").map_err(die_write)?;
    let sync = tmp.try_clone().map_err(die_write)?;
    let mut mk = cdb::CDBMake::new(tmp).map_err(die_write)?;
    let mut r = BufReader::new(input);
    let mut line = Vec::new();
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line).map_err(die_read)? == 0 {
            break;
        }
        mk.add(&key(&line), b"").map_err(die_write)?;
    }
    mk.finish().map_err(die_write)?;
    sync.sync_all().map_err(die_write)?;
    std::fs::rename("control/morercpthosts.tmp", "control/morercpthosts.cdb").map_err(|e| {
        Error::sys(
            "unable to move control/morercpthosts.tmp to control/morercpthosts.cdb",
            e,
        )
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_are_trimmed_and_lowercased() {
        assert_eq!(super::key(b"  Example.ORG \t\n"), b"example.org");
        assert_eq!(super::key(b"\n"), b"");
    }
}

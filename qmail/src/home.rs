//! Where QMAILHOME is: the build-time default (/var/qmail unless the build sets
//! QMAILHOME), overridden at run time by the QMAILHOME variable only for a
//! process that is not setuid or setgid, so a setuid qmail-queue can never be
//! pointed at a queue of the caller's choosing while tests and the no-root
//! local stack can still use a private home.

use std::path::PathBuf;

/// The home compiled into the programs.
pub const DEFAULT_HOME: &str = match option_env!("QMAILHOME") {
    Some(h) => h,
    None => "/var/qmail",
};

/// Whether the process runs with the ids it was started with.
fn unprivileged_caller() -> bool {
    nix::unistd::getuid() == nix::unistd::geteuid()
        && nix::unistd::getgid() == nix::unistd::getegid()
}

/// QMAILHOME for this process.
pub fn home() -> PathBuf {
    if unprivileged_caller() {
        if let Some(h) = std::env::var_os("QMAILHOME") {
            if !h.is_empty() {
                return PathBuf::from(h);
            }
        }
    }
    PathBuf::from(DEFAULT_HOME)
}

/// A path below QMAILHOME, e.g. `path("control/me")`.
pub fn path(rel: &str) -> PathBuf {
    home().join(rel)
}

#[cfg(test)]
mod tests {
    #[test]
    fn default_is_var_qmail_unless_built_otherwise() {
        if option_env!("QMAILHOME").is_none() {
            assert_eq!(super::DEFAULT_HOME, "/var/qmail");
        }
    }
}

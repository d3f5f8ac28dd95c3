//! daemontools service supervision.

pub mod control;
pub mod envdir;
pub mod envuidgid;
pub mod fghack;
pub mod pgrphack;
pub mod readiness;
pub mod readproctitle;
pub mod setlock;
pub mod setuidgid;
pub mod softlimit;
pub mod status;
pub mod supervise;
pub mod svc;
pub mod svok;
pub mod svscan;
pub mod svscanboot;
pub mod svstat;
